// The benchmark's own network and mount namespace (`unshare --net --mount`):
// inside it, 127.0.0.1 belongs to the benchmark alone (the emulator takes port
// 443, the API server and the programs any port), /etc/hosts is a bind-mounted
// file that sends the vault and login host names to the emulator, and every
// tmpfs the drivers mount is private to it. The machine's network, files and
// mount table stay untouched, and all of it disappears with the last process.
import { spawn, execFileSync } from "node:child_process";
import { readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** This process's network and mount namespaces ("net:[4026531840] mnt:[4026531841]"). */
export function namespaces(): string {
  return ["net", "mnt"].map((ns) => `${ns}:${readlinkSync(`/proc/self/ns/${ns}`)}`).join(" ");
}

/** Whether this process runs in network and mount namespaces that both differ from the ones the benchmark was started in. */
export function inPrivateNamespaces(): boolean {
  const outer = process.env.SSCSI_BENCH_OUTER_NAMESPACES?.split(" ") ?? [];
  const own = namespaces().split(" ");
  return outer.length === 2 && own.every((ns) => !outer.includes(ns));
}

/** Runs `node <script> <args>` in new network and mount namespaces and resolves with its exit code. */
export function runInPrivateNamespaces(script: string, args: readonly string[]): Promise<number> {
  const child = spawn("unshare", ["--net", "--mount", "--propagation", "private", "--", process.execPath, script, ...args], {
    stdio: "inherit",
    env: { ...process.env, SSCSI_BENCH_OUTER_NAMESPACES: namespaces() },
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      process.off("SIGINT", forward);
      process.off("SIGTERM", forward);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

/**
 * Inside the namespaces: brings loopback up and points `hostNames` at
 * 127.0.0.1 through a hosts file of our own bind-mounted over /etc/hosts.
 * Refuses to run in the machine's namespaces.
 */
export function setUpPrivateNetwork(dir: string, hostNames: readonly string[]): void {
  if (!inPrivateNamespaces()) throw new Error("refusing to change /etc/hosts or loopback outside the benchmark's own namespaces");
  execFileSync("ip", ["link", "set", "lo", "up"]);
  const hosts = join(dir, "hosts");
  writeFileSync(hosts, `127.0.0.1 localhost\n::1 localhost\n127.0.0.1 ${hostNames.join(" ")}\n`);
  execFileSync("mount", ["--bind", hosts, "/etc/hosts"]);
}
