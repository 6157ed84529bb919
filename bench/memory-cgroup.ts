// Memory cgroups (v1, /sys/fs/cgroup/memory) for the benchmark: each program
// runs in a child group of its own, so its usage counts everything the node
// would charge to its container, the tmpfs pages the driver writes into pods'
// volumes included. The benchmark creates one parent group per run and removes
// every group it made when it ends.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, readdir, rmdir } from "node:fs/promises";
import { join } from "node:path";

const ROOT = "/sys/fs/cgroup/memory";
const MiB = 1024 * 1024;

export interface CgroupMemory {
  /** memory.usage_in_bytes: anonymous memory, page cache and tmpfs charged to the group. */
  usageMiB: number;
  /** Anonymous memory (memory.stat rss). */
  anonMiB: number;
  /** tmpfs pages (memory.stat shmem). */
  tmpfsMiB: number;
  maxUsageMiB: number;
}

export class MemoryCgroup {
  readonly path: string;
  private constructor(path: string) {
    this.path = path;
  }

  /** A new child of `parent` (or of the v1 memory root), optionally with a hard limit. */
  static async create(name: string, options: { parent?: MemoryCgroup; limitBytes?: number } = {}): Promise<MemoryCgroup> {
    if (!existsSync(join(ROOT, "memory.usage_in_bytes"))) {
      throw new Error(`no cgroup v1 memory controller at ${ROOT}: the benchmark measures memory there`);
    }
    const path = join(options.parent?.path ?? ROOT, name);
    await mkdir(path);
    const group = new MemoryCgroup(path);
    if (options.limitBytes !== undefined) group.write("memory.limit_in_bytes", String(options.limitBytes));
    return group;
  }

  /** An argv that starts `command` inside this group: the shell joins it, then execs, so every page is charged here. */
  wrap(command: string, args: readonly string[]): [string, string[]] {
    return ["sh", ["-c", 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', "sh", this.path, command, ...args]];
  }

  memory(): CgroupMemory {
    const stat = this.stat();
    return {
      usageMiB: Number(this.read("memory.usage_in_bytes")) / MiB,
      anonMiB: (stat.rss ?? 0) / MiB,
      tmpfsMiB: (stat.shmem ?? 0) / MiB,
      maxUsageMiB: Number(this.read("memory.max_usage_in_bytes")) / MiB,
    };
  }

  /** How often the limit was hit (memory.failcnt). */
  failCount(): number {
    return Number(this.read("memory.failcnt"));
  }

  /** Processes the kernel's OOM killer ended in this group (memory.oom_control oom_kill). */
  oomKills(): number {
    const line = this.read("memory.oom_control")
      .split("\n")
      .find((l) => l.startsWith("oom_kill "));
    return line ? Number(line.split(" ")[1]) : 0;
  }

  pids(): number[] {
    return this.read("cgroup.procs")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map(Number);
  }

  /** Removes the group once its processes are gone (waits up to 10 s for them to exit). */
  async remove(): Promise<void> {
    if (!existsSync(this.path)) return;
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await rmdir(this.path);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT") return;
        if (code !== "EBUSY" || Date.now() > deadline) throw new Error(`cannot remove memory cgroup ${this.path}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Removes the child groups a failed run left, then this one. */
  async removeTree(): Promise<void> {
    if (!existsSync(this.path)) return;
    for (const entry of await readdir(this.path, { withFileTypes: true })) {
      if (entry.isDirectory()) await new MemoryCgroup(join(this.path, entry.name)).remove();
    }
    await this.remove();
  }

  private stat(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const line of this.read("memory.stat").split("\n")) {
      const [key, value] = line.split(" ");
      if (key && value) out[key] = Number(value);
    }
    return out;
  }

  private read(file: string): string {
    return readFileSync(join(this.path, file), "utf8");
  }

  private write(file: string, value: string): void {
    writeFileSync(join(this.path, file), value);
  }
}
