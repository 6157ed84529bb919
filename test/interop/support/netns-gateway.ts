// Runs inside a private network and mount namespace (started by netns.ts
// through `unshare --net --mount`): brings loopback up, adds the addresses the
// program expects (such as IMDS's 169.254.169.254), bind-mounts the given
// hosts file over /etc/hosts, puts files where the program expects them on a
// tmpfs of this namespace only (a pod's service-account CA, say), listens on
// each forwarded address and relays
// every connection to a unix socket that the test process serves outside the
// namespace, then runs the program. Unix sockets are files, so they cross the
// network namespace boundary; TLS passes through untouched.
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { connect, createServer, type Server } from "node:net";
import { relay } from "./relay.ts";

export interface GatewayConfig {
  /** Bind-mounted over /etc/hosts in this mount namespace only. */
  hostsFile: string;
  /** Addresses added to lo (127.0.0.0/8 is there once lo is up). */
  addresses: string[];
  /** A tmpfs mounted over `target` in this mount namespace only, holding `files` (path under target -> content). */
  tmpfs?: Array<{ target: string; files: Record<string, string> }>;
  /** Listen on host:port here; relay to the unix socket outside. */
  forwards: Array<{ host: string; port: number; socket: string }>;
  command: string;
  args: string[];
  env: Record<string, string>;
}

const config = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as GatewayConfig;

execFileSync("ip", ["link", "set", "lo", "up"]);
for (const address of config.addresses) execFileSync("ip", ["addr", "add", `${address}/32`, "dev", "lo"]);
execFileSync("mount", ["--bind", config.hostsFile, "/etc/hosts"]);
for (const fs of config.tmpfs ?? []) {
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", fs.target]);
  for (const [path, content] of Object.entries(fs.files)) {
    const file = join(fs.target, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
  }
}

function listen(forward: GatewayConfig["forwards"][number]): Promise<Server> {
  const server = createServer((inbound) => relay(inbound, connect(forward.socket)));
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(forward.port, forward.host, () => resolve(server));
  });
}

await Promise.all(config.forwards.map(listen));

const child = spawn(config.command, config.args, { env: config.env, stdio: ["ignore", "inherit", "inherit"] });
const stop = () => {
  if (child.exitCode === null) child.kill("SIGTERM");
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// The test process holds our stdin: if it goes away, so does the program.
process.stdin.on("end", stop);
process.stdin.resume();
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
