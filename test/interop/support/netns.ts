// Runs a program in a private network and mount namespace with its own
// /etc/hosts, for programs that resolve names only through the system (the
// upstream Go provider): `unshare --net --mount` starts netns-gateway.ts,
// which relays the forwarded addresses to unix sockets served here, each
// connected to a TCP address outside (the emulator). The program's own
// listeners (upstream binds :8898 and :8989 on all interfaces) stay inside
// the namespace, reachable by nobody else.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { relay } from "./relay.ts";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { GatewayConfig } from "./netns-gateway.ts";

const GATEWAY = resolve(import.meta.dirname, "netns-gateway.ts");

export interface NamespaceOptions {
  /** Name → address lines of the namespace's /etc/hosts (localhost is always there). */
  hosts: Record<string, string>;
  /** Extra addresses for the namespace's lo, e.g. 169.254.169.254. */
  addresses?: string[];
  /** Files on a tmpfs of the namespace's own (see GatewayConfig). */
  tmpfs?: GatewayConfig["tmpfs"];
  /** Addresses inside the namespace relayed to addresses outside. */
  forwards: Array<{ listen: { host: string; port: number }; to: { host: string; port: number } }>;
  command: string;
  args: string[];
  env: Record<string, string>;
}

export interface NamespacedProcess {
  child: ChildProcess;
  /** The program (or unshare itself) has ended. */
  exited(): boolean;
  output(): string;
  stop(): Promise<void>;
}

function serveRelay(socket: string, to: { host: string; port: number }): Promise<Server> {
  const server = createServer((inbound) => relay(inbound, connect(to.port, to.host)));
  return new Promise((resolvePromise, reject) => {
    server.once("error", reject);
    server.listen(socket, () => resolvePromise(server));
  });
}

export async function startInNetworkNamespace(options: NamespaceOptions): Promise<NamespacedProcess> {
  const dir = mkdtempSync(join(tmpdir(), "interop-netns-"));
  const hostsFile = join(dir, "hosts");
  const lines = ["127.0.0.1 localhost", "::1 localhost", ...Object.entries(options.hosts).map(([name, address]) => `${address} ${name}`)];
  writeFileSync(hostsFile, lines.join("\n") + "\n");
  const servers: Server[] = [];
  const forwards: GatewayConfig["forwards"] = [];
  for (const [i, f] of options.forwards.entries()) {
    const socket = join(dir, `relay-${i}.sock`);
    servers.push(await serveRelay(socket, f.to));
    forwards.push({ host: f.listen.host, port: f.listen.port, socket });
  }
  const config: GatewayConfig = { hostsFile, addresses: options.addresses ?? [], tmpfs: options.tmpfs, forwards, command: options.command, args: options.args, env: options.env };
  const configFile = join(dir, "gateway.json");
  writeFileSync(configFile, JSON.stringify(config));

  const child = spawn("unshare", ["--net", "--mount", "--propagation", "private", process.execPath, GATEWAY, configFile], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let failed = false;
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  // unshare(1) (util-linux) missing, for one: say so instead of waiting
  child.once("error", (err) => {
    failed = true;
    out += `\ncannot run unshare --net --mount (util-linux): ${err.message}`;
  });
  const exited = new Promise<void>((done) => child.once("close", () => done()));
  return {
    child,
    exited: () => failed || child.exitCode !== null || child.signalCode !== null,
    output: () => out,
    stop: async () => {
      if (!failed && child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      child.stdin?.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((done) => s.close(() => done()))));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
