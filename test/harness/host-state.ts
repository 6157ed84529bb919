// What a node (kubelet, containerd, runc, CNI) changes on the machine, recorded
// before it starts and put back after it stops: iptables chains, cgroups,
// network links and namespaces, sysctls kubelet tunes, and the directories it
// creates outside its own. Only what appeared after the snapshot is removed,
// so nothing that was there before is touched.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { lstat, readdir, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Chains kubelet and CNI plugins create; only new ones matching these are removed. */
const OWN_CHAIN = /^(KUBE-|CNI-)/;
const IPTABLES_TABLES = ["filter", "nat", "mangle"];
/** Cgroups kubelet (cgroupfs driver) and containerd create at the top of each hierarchy. */
const OWN_CGROUPS = ["kubepods", "k8s.io"];
/** Links the CNI bridge plugin creates. */
const OWN_LINK = /^(sscsi-cni|veth)/;
/** Network namespaces containerd's CRI creates. */
const NETNS_DIRS = ["/run/netns", "/var/run/netns"];
/** sysctls kubelet sets at start (protectKernelDefaults off), and the forwarding switches. */
const SYSCTLS = [
  "net/ipv4/ip_forward",
  "net/ipv6/conf/all/forwarding",
  "vm/overcommit_memory",
  "vm/panic_on_oom",
  "kernel/panic",
  "kernel/panic_on_oops",
  "kernel/keys/root_maxkeys",
  "kernel/keys/root_maxbytes",
];
/**
 * Paths kubelet, containerd's shims and the CNI plugins use whatever their
 * configuration says (hard-coded in them). Removed after the node stops only if
 * they did not exist before it started.
 */
export const HOST_PATHS = [
  "/var/lib/kubelet",
  "/var/log/containers",
  "/var/log/pods",
  "/run/containerd",
  "/run/netns",
  "/var/lib/cni",
  "/run/cni",
  "/etc/cni",
  "/opt/cni",
  "/opt/containerd",
  // buildah's defaults, should its private configuration ever be bypassed.
  "/var/lib/containers",
  "/run/containers",
];

export interface HostSnapshot {
  chains: Set<string>;
  cgroups: Set<string>;
  links: Set<string>;
  netns: Set<string>;
  sysctls: Map<string, string>;
  paths: Set<string>;
}

async function iptablesChains(): Promise<string[]> {
  const chains: string[] = [];
  for (const cmd of ["iptables", "ip6tables"]) {
    for (const table of IPTABLES_TABLES) {
      let out: string;
      try {
        ({ stdout: out } = await run(cmd, ["-w", "5", "-t", table, "-S"]));
      } catch {
        continue; // table not available in this kernel
      }
      for (const line of out.split("\n")) {
        const m = /^-N (\S+)/.exec(line);
        if (m) chains.push(`${cmd}/${table}/${m[1]}`);
      }
    }
  }
  return chains;
}

async function cgroupDirs(): Promise<string[]> {
  const dirs: string[] = [];
  for (const hierarchy of await readdir("/sys/fs/cgroup").catch(() => [] as string[])) {
    for (const name of OWN_CGROUPS) {
      const dir = join("/sys/fs/cgroup", hierarchy, name);
      if (existsSync(dir)) dirs.push(dir);
    }
  }
  return dirs;
}

async function links(): Promise<string[]> {
  const { stdout } = await run("ip", ["-o", "link", "show"]);
  return stdout
    .split("\n")
    .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined);
}

async function netnsEntries(): Promise<string[]> {
  const entries: string[] = [];
  for (const dir of NETNS_DIRS) for (const name of await readdir(dir).catch(() => [] as string[])) entries.push(join(dir, name));
  return entries;
}

async function sysctls(): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  for (const key of SYSCTLS) {
    const value = await readFile(join("/proc/sys", key), "utf8").catch(() => undefined);
    if (value !== undefined) values.set(key, value.trim());
  }
  return values;
}

async function existingPaths(): Promise<string[]> {
  const found: string[] = [];
  for (const p of HOST_PATHS) if (await lstat(p).then(() => true, () => false)) found.push(p);
  return found;
}

export async function snapshotHost(): Promise<HostSnapshot> {
  return {
    chains: new Set(await iptablesChains()),
    cgroups: new Set(await cgroupDirs()),
    links: new Set(await links()),
    netns: new Set(await netnsEntries()),
    sysctls: await sysctls(),
    paths: new Set(await existingPaths()),
  };
}

/** Mount points (from /proc/self/mountinfo) at or below one of `roots`, deepest first. */
export async function mountsUnder(roots: string[]): Promise<string[]> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  const points = info
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\040/g, " "))
    .filter((p) => roots.some((r) => p === r || p.startsWith(r.endsWith("/") ? r : `${r}/`)));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmounts (lazily, so a busy mount cannot stall teardown) every mount below `roots`. */
export async function unmountUnder(roots: string[]): Promise<string[]> {
  const done: string[] = [];
  for (const point of await mountsUnder(roots)) {
    try {
      await run("umount", ["-l", point]);
      done.push(point);
    } catch {
      // already gone with its parent
    }
  }
  return done;
}

async function removeCgroupTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory()) await removeCgroupTree(join(dir, entry.name));
  }
  // A cgroup directory holds only kernel files; rmdir removes it once it has no tasks.
  await rmdir(dir);
}

async function removeChain(entry: string): Promise<void> {
  const [cmd, table, chain] = entry.split("/") as [string, string, string];
  const { stdout } = await run(cmd, ["-w", "5", "-t", table, "-S"]);
  // Rules elsewhere that jump to the chain go first, then the chain's own rules.
  for (const line of stdout.split("\n")) {
    if (line.startsWith("-A ") && new RegExp(`-j ${chain}(\\s|$)`).test(line) && !line.startsWith(`-A ${chain} `)) {
      await run(cmd, ["-w", "5", "-t", table, ...splitRule(line.replace(/^-A /, "-D "))]);
    }
  }
  await run(cmd, ["-w", "5", "-t", table, "-F", chain]);
  await run(cmd, ["-w", "5", "-t", table, "-X", chain]);
}

/** Splits an iptables -S line into arguments, keeping "quoted words" together. */
function splitRule(line: string): string[] {
  return (line.match(/"[^"]*"|\S+/g) ?? []).map((a) => a.replace(/^"|"$/g, ""));
}

/**
 * Puts the machine back as `before` found it: removes the chains, cgroups, links,
 * network namespaces and paths that appeared since, and restores the sysctls.
 * Returns what it did (for the log) and throws with every step that failed.
 */
export async function restoreHost(before: HostSnapshot): Promise<string[]> {
  const done: string[] = [];
  const failed: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
      done.push(what);
    } catch (err) {
      failed.push(`${what}: ${(err as Error).message.split("\n")[0]}`);
    }
  };
  for (const entry of await netnsEntries()) {
    if (before.netns.has(entry)) continue;
    await attempt(`netns ${entry}`, async () => {
      await run("umount", ["-l", entry]).catch(() => undefined);
      await rm(entry, { force: true });
    });
  }
  for (const chain of await iptablesChains()) {
    if (before.chains.has(chain) || !OWN_CHAIN.test(chain.split("/")[2] ?? "")) continue;
    await attempt(`iptables chain ${chain}`, () => removeChain(chain));
  }
  for (const link of await links()) {
    if (before.links.has(link) || !OWN_LINK.test(link)) continue;
    await attempt(`link ${link}`, () => run("ip", ["link", "delete", link]));
  }
  for (const dir of await cgroupDirs()) {
    if (before.cgroups.has(dir)) continue;
    await attempt(`cgroup ${dir}`, () => removeCgroupTree(dir));
  }
  for (const [key, value] of before.sysctls) {
    const now = await readFile(join("/proc/sys", key), "utf8").catch(() => undefined);
    if (now !== undefined && now.trim() !== value) await attempt(`sysctl ${key}=${value}`, () => writeFile(join("/proc/sys", key), value));
  }
  for (const path of await existingPaths()) {
    if (before.paths.has(path)) continue;
    // Created by the node's programs after the snapshot: nothing of anyone else's is inside.
    await attempt(`path ${path}`, async () => {
      const mounted = await mountsUnder([path]);
      if (mounted.length > 0) throw new Error(`still mounted below it: ${mounted.join(", ")}`);
      await rm(path, { recursive: true, force: true });
    });
  }
  if (failed.length > 0) throw new Error(`the node's teardown left the machine changed:\n  ${failed.join("\n  ")}`);
  return done;
}

/** What differs from `before` now, as lines ("iptables chain iptables/filter/KUBE-FIREWALL"); empty when restored. */
export async function hostDifferences(before: HostSnapshot): Promise<string[]> {
  const now = await snapshotHost();
  const diff: string[] = [];
  const added = (what: string, a: Set<string>, b: Set<string>) => {
    for (const x of a) if (!b.has(x)) diff.push(`${what} ${x} appeared`);
    for (const x of b) if (!a.has(x)) diff.push(`${what} ${x} disappeared`);
  };
  added("iptables chain", now.chains, before.chains);
  added("cgroup", now.cgroups, before.cgroups);
  added("link", now.links, before.links);
  added("netns", now.netns, before.netns);
  added("path", now.paths, before.paths);
  for (const [key, value] of before.sysctls) if (now.sysctls.get(key) !== value) diff.push(`sysctl ${key} is ${now.sysctls.get(key)}, was ${value}`);
  return diff;
}
