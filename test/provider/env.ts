// Integration environment: the Key Vault emulator on port 443 of a private
// loopback address (so the provider's https://<vault>.vault.azure.net/ URLs
// work unchanged) and the provider program itself, started as a child process
// exactly as in production (node src/provider/main.ts) with the emulator's DNS
// hook and CA. Tests talk to it over its unix socket.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startEmulator, type Emulator, type SeedDocument } from "../../src/emulator/index.ts";
import { privateLoopback } from "../support/ports.ts";
import { ProviderClient } from "./client.ts";

const ROOT = resolve(import.meta.dirname, "../..");
export const MAIN = join(ROOT, "src/provider/main.ts");
export const DNS_HOOK = join(ROOT, "src/emulator/dns-hook.ts");

export { privateLoopback };

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolvePort(port));
    });
  });
}

export async function startTestEmulator(seed: SeedDocument, options: { eventTimeScale?: number } = {}): Promise<{ emulator: Emulator; address: string }> {
  for (let attempt = 0; ; attempt++) {
    const address = privateLoopback();
    try {
      const emulator = await startEmulator({ host: address, port: 443, imdsPort: 0, seed, ...(options.eventTimeScale ? { eventTimeScale: options.eventTimeScale } : {}) });
      return { emulator, address };
    } catch (err) {
      if (attempt >= 5 || (err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    }
  }
}

/** Waits until a provider program answers Version on its socket; fails when it exits first or takes over 60 s. */
export async function waitForProvider(client: ProviderClient, exited: () => boolean, output: () => string, what: string): Promise<void> {
  const started = Date.now();
  for (;;) {
    try {
      await client.version();
      return;
    } catch (err) {
      if (exited()) throw new Error(`${what} exited before serving:\n${output()}`);
      if (Date.now() - started > 60_000) throw new Error(`${what} did not serve within 60s: ${String(err)}\n${output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export interface RunningProvider {
  client: ProviderClient;
  pid: number;
  socket: string;
  metricsPort: number;
  healthPort: number;
  /** Everything the provider printed (stdout + stderr). */
  output(): string;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

/** The last lines a child printed, for an error message when it exits early. */
export function lastLines(output: string, count = 20): string {
  return output.trimEnd().split("\n").slice(-count).join("\n");
}

/**
 * Starts the provider program on a socket in a new temp dir, with metrics and
 * health on ports the kernel picks on 127.0.0.1 (read back from its log).
 */
export interface StartOptions {
  /** Wraps the command line (e.g. to start it in a memory cgroup); the wrapper must exec the program. */
  wrap?: (command: string, args: string[]) => [string, string[]];
  /** The DNS hook to --import (a JavaScript build of dns-hook.ts for `node --lite-mode`, which cannot strip types). */
  dnsHook?: string;
  /** More Node flags, e.g. a heap limit. */
  nodeFlags?: string[];
  /** The program to run, a bundle (scripts/bundle.ts); without it $SSCSI_PROVIDER_PROGRAM, else the sources. */
  program?: string;
}

export async function startProvider(emulator: Emulator, address: string, flags: string[] = [], extraEnv: NodeJS.ProcessEnv = {}, options: StartOptions = {}): Promise<RunningProvider> {
  const dir = mkdtempSync(join(tmpdir(), "provider-it-"));
  const socket = join(dir, "azure.sock");
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("AZURE_") && !k.startsWith("IDENTITY_") && !k.startsWith("MSI_")) env[k] = v;
  Object.assign(env, {
    NODE_EXTRA_CA_CERTS: emulator.caCertPath,
    SSCSI_EMULATOR_ADDRESS: address,
    AZURE_POD_IDENTITY_AUTHORITY_HOST: emulator.imdsEndpoint,
    LOG_LEVEL: "debug",
    ...extraEnv,
  });
  // Benchmarks run what the images run: SSCSI_PROVIDER_PROGRAM names a bundle,
  // SSCSI_NODE_FLAGS its Node flags. Tests leave both unset and run the sources.
  const nodeFlags = [...(process.env.SSCSI_NODE_FLAGS ?? "").split(" ").filter(Boolean), ...(options.nodeFlags ?? [])];
  const argv = [...nodeFlags, "--import", options.dnsHook ?? DNS_HOOK, options.program ?? process.env.SSCSI_PROVIDER_PROGRAM ?? MAIN, `--endpoint=unix://${socket}`, "--healthz-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0", "-v=4", ...flags];
  const [command, args] = options.wrap ? options.wrap(process.execPath, argv) : [process.execPath, argv];
  const child: ChildProcess = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const client = new ProviderClient(`unix:${socket}`);
  const started = Date.now();
  let ports: { metricsPort: number; healthPort: number } | undefined;
  while (!ports) {
    ports = startedPorts(output);
    if (ports) break;
    if (child.exitCode !== null || Date.now() - started > 30_000) {
      client.close();
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`provider did not start (exit code ${child.exitCode}); its last lines:\n${lastLines(output)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const { metricsPort, healthPort } = ports;
  return {
    client,
    pid: child.pid!,
    socket,
    metricsPort,
    healthPort,
    output: () => output,
    metrics: async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(),
    stop: async () => {
      client.close();
      // a provider that died (a signal sets signalCode, not exitCode) has nothing to wait for
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The ports of the "provider started" log line, once it is there. */
export function startedPorts(output: string): { metricsPort: number; healthPort: number } | undefined {
  for (const line of output.split("\n")) {
    if (!line.includes('"provider started"')) continue;
    try {
      const entry = JSON.parse(line) as { metricsPort: number; healthPort: number };
      return { metricsPort: entry.metricsPort, healthPort: entry.healthPort };
    } catch {
      // the rest of the line has not arrived yet
    }
  }
  return undefined;
}

/**
 * Reads Key Vault directly over HTTPS (no SDK, no provider code): a client
 * credentials token from the emulated Entra ID, then a GET. Used to learn the
 * version ids the emulator generated.
 */
export async function rawKeyVaultGet(emulator: Emulator, address: string, app: { clientId: string; clientSecret: string }, vault: string, path: string): Promise<unknown> {
  const call = (host: string, method: string, urlPath: string, headers: Record<string, string>, body?: string) =>
    new Promise<{ status: number; body: string }>((resolveCall, reject) => {
      const req = request(
        { host: address, port: 443, servername: host, method, path: urlPath, ca: emulator.caCertPem, headers: { host, ...headers } },
        (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d.toString()));
          res.on("end", () => resolveCall({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  const form = new URLSearchParams({ grant_type: "client_credentials", client_id: app.clientId, client_secret: app.clientSecret, scope: "https://vault.azure.net/.default" });
  const token = await call("login.microsoftonline.com", "POST", `/${emulator.tenantId}/oauth2/v2.0/token`, { "content-type": "application/x-www-form-urlencoded" }, form.toString());
  if (token.status !== 200) throw new Error(`token: ${token.status} ${token.body}`);
  const accessToken = (JSON.parse(token.body) as { access_token: string }).access_token;
  const sep = path.includes("?") ? "&" : "?";
  const res = await call(`${vault}.vault.azure.net`, "GET", `${path}${sep}api-version=7.5`, { authorization: `Bearer ${accessToken}` });
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${res.body}`);
  return JSON.parse(res.body);
}
