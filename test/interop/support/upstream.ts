// The upstream Go programs the interop tests run against ours, built by
// test/harness/install-upstream.sh: the Azure provider v1.8.2 (in a private
// network namespace whose /etc/hosts sends the vault, login and in-cluster
// API server hosts to the emulator, with the emulator's CA as the pod's
// service-account CA), the secrets-store-csi-driver v1.6.0 and the driver
// module's mock provider. Missing Go or a failed build fails the tests loudly.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { access, constants, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import type { Emulator } from "../../../src/emulator/index.ts";
import { API_SERVER_HOST } from "../../../src/shared/identity-binding.ts";
import { ProviderClient } from "../../provider/client.ts";
import { waitForProvider } from "../../provider/env.ts";
import { startInNetworkNamespace, type NamespacedProcess } from "./netns.ts";

const INSTALL = resolve(import.meta.dirname, "../../harness/install-upstream.sh");
export const UPSTREAM_BINARIES = ["upstream-secrets-store-csi-driver", "upstream-provider-azure", "upstream-fake-provider"] as const;

let binDir: Promise<string> | undefined;

/** Runs install-upstream.sh (milliseconds when cached) and returns the bin directory. */
export function upstreamBinDir(): Promise<string> {
  binDir ??= (async () => {
    const env = { ...process.env };
    if (existsSync("/usr/local/go/bin/go")) env.PATH = `${env.PATH ?? ""}:/usr/local/go/bin`;
    let stdout: string;
    try {
      ({ stdout } = await promisify(execFile)("bash", [INSTALL], { env, maxBuffer: 64 * 1024 * 1024 }));
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`interop: ${INSTALL} failed, so the upstream binaries are not available:\n${(e.stderr ?? e.message).trim().split("\n").slice(-30).join("\n")}`);
    }
    const dir = stdout.trim().split("\n").pop() ?? "";
    for (const name of UPSTREAM_BINARIES) {
      await access(join(dir, name), constants.X_OK).catch(() => {
        throw new Error(`interop: ${name} is missing from ${dir} after ${INSTALL}`);
      });
    }
    return dir;
  })();
  return binDir;
}

/** Entra ID hosts of the public and US Government clouds (both served by the emulator). */
const LOGIN_HOSTS = ["login.microsoftonline.com", "login.microsoftonline.us"];

export interface UpstreamProvider {
  socket: string;
  client: ProviderClient;
  output(): string;
  stop(): Promise<void>;
}

/**
 * The upstream Azure provider with the given flags, listening on
 * <dir>/azure.sock. Inside its namespace the vault hosts, the Entra ID
 * login hosts and kubernetes.default.svc.cluster.local (identity binding's
 * API server and token proxy) resolve to the emulator's address, IMDS's
 * 169.254.169.254:80 reaches the emulator's IMDS port, SSL_CERT_FILE trusts
 * the emulator's CA, and so does the service-account CA file at the path a
 * pod has it (/var/run/secrets/kubernetes.io/serviceaccount/ca.crt), which
 * upstream reads to derive the token proxy's server name.
 */
export async function startUpstreamProvider(emulator: Emulator, options: { vaultHosts: string[]; flags?: string[]; dir?: string }): Promise<UpstreamProvider> {
  const bin = await upstreamBinDir();
  const socketDir = options.dir ?? (await mkdtemp(join(tmpdir(), "upstream-provider-")));
  const socket = join(socketDir, "azure.sock");
  const hosts: Record<string, string> = {};
  for (const name of [...LOGIN_HOSTS, API_SERVER_HOST, ...options.vaultHosts]) hosts[name] = emulator.host;
  const ns: NamespacedProcess = await startInNetworkNamespace({
    hosts,
    addresses: ["169.254.169.254"],
    tmpfs: [{ target: "/var/run", files: { "secrets/kubernetes.io/serviceaccount/ca.crt": emulator.caCertPem } }],
    forwards: [
      { listen: { host: emulator.host, port: 443 }, to: { host: emulator.host, port: emulator.port } },
      { listen: { host: "169.254.169.254", port: 80 }, to: { host: emulator.host, port: emulator.imdsPort } },
    ],
    command: join(bin, "upstream-provider-azure"),
    args: [`--endpoint=unix://${socket}`, "-v=2", ...(options.flags ?? [])],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SSL_CERT_FILE: emulator.caCertPath },
  });
  const client = new ProviderClient(`unix:${socket}`);
  try {
    await waitForProvider(client, ns.exited, ns.output, "upstream-provider-azure");
  } catch (err) {
    client.close();
    await ns.stop();
    if (!options.dir) await rm(socketDir, { recursive: true, force: true });
    throw err;
  }
  return {
    socket,
    client,
    output: ns.output,
    stop: async () => {
      client.close();
      await ns.stop();
      // a directory the caller gave is the caller's to remove
      if (!options.dir) await rm(socketDir, { recursive: true, force: true });
    },
  };
}

export interface FakeMountResult {
  files?: Array<{ path: string; mode: number; contents: string }>;
  objects?: Record<string, string>;
  errorCode?: string;
  returnError?: { code: string; message: string };
}

export interface UpstreamFakeProvider {
  socket: string;
  output(): string;
  stop(): Promise<void>;
}

/** The upstream driver module's MockCSIProviderServer on <dir>/<name>.sock, answering Mount with `result`. */
export async function startUpstreamFakeProvider(dir: string, name: string, result: FakeMountResult): Promise<UpstreamFakeProvider> {
  const bin = await upstreamBinDir();
  const socket = join(dir, `${name}.sock`);
  const resultFile = join(dir, `${name}.mount-result.json`);
  await writeFile(resultFile, JSON.stringify(result));
  const child: ChildProcess = spawn(join(bin, "upstream-fake-provider"), [`--endpoint=unix://${socket}`, `--mount-result=${resultFile}`], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const client = new ProviderClient(`unix:${socket}`);
  try {
    await waitForProvider(client, () => child.exitCode !== null, () => out, "upstream-fake-provider");
  } finally {
    client.close();
  }
  return { socket, output: () => out, stop: () => stopChild(child) };
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(timer);
      done();
    });
    child.kill("SIGTERM");
  });
}

export interface UpstreamDriver {
  socketPath: string;
  output(): string;
  stop(): Promise<void>;
}

/** The upstream secrets-store-csi-driver on <socketPath>, reading the cluster through `kubeconfig`. */
export async function startUpstreamDriver(socketPath: string, options: { kubeconfig: string; nodeId: string; providerDir: string; extraArgs?: string[] }): Promise<UpstreamDriver> {
  const bin = await upstreamBinDir();
  const child = spawn(
    join(bin, "upstream-secrets-store-csi-driver"),
    [
      `--endpoint=unix://${socketPath}`,
      `--nodeid=${options.nodeId}`,
      `--kubeconfig=${options.kubeconfig}`,
      `--provider-volume=${options.providerDir}`,
      `--additional-provider-volume-paths=${options.providerDir}`,
      // controller-runtime's "0" turns the metrics listener off (the default binds :8095 on all interfaces)
      "--metrics-addr=0",
      "-v=5",
      ...(options.extraArgs ?? []),
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 60_000;
  while (!existsSync(socketPath)) {
    if (child.exitCode !== null) throw new Error(`upstream driver exited with ${child.exitCode}:\n${out}`);
    if (Date.now() > deadline) throw new Error(`upstream driver did not create ${socketPath} within 60s:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { socketPath, output: () => out, stop: () => stopChild(child) };
}
