// tmpfs mounts at the pod's target path, and the node's mount table as
// /proc/self/mountinfo shows it. Mount state is always read from mountinfo, so a
// directory that merely exists is never mistaken for a live volume (upstream's
// ordering bug, reference driver-spec §2.5 notes).
//
// The driver names its tmpfs with a source of its own (the driver name), which
// mountinfo shows, and remembers each mount's id and device number: that is how
// it tells its own mounts from anything else mounted on the node.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";

export interface MountEntry {
  /** The kernel's unique id of this mount (mountinfo field 1). */
  id: number;
  /** Device number of the mounted file system, "major:minor" (field 3). */
  dev: string;
  mountPoint: string;
  fsType: string;
  source: string;
}

/** Decodes the octal escapes mountinfo uses for spaces, tabs, newlines and backslashes. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

export function parseMountInfo(text: string): MountEntry[] {
  const mounts: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const separator = line.indexOf(" - ");
    const fields = line.slice(0, separator).split(" ");
    const tail = line.slice(separator + 3).split(" ");
    mounts.push({
      id: Number(fields[0]),
      dev: fields[2] ?? "",
      mountPoint: unescapeMountField(fields[4] ?? ""),
      fsType: tail[0] ?? "",
      source: unescapeMountField(tail[1] ?? ""),
    });
  }
  return mounts;
}

export async function listMounts(): Promise<MountEntry[]> {
  return parseMountInfo(await readFile("/proc/self/mountinfo", "utf8"));
}

/** The mounts whose mount point is exactly path, bottom first (the last one is what a reader sees). */
export async function mountsAt(path: string): Promise<MountEntry[]> {
  return (await listMounts()).filter((m) => m.mountPoint === path);
}

/** "major:minor" of a device number as stat reports it ({ bigint: true }), to compare with mountinfo. */
export function deviceOf(dev: bigint): string {
  // Linux's encoding of dev_t (see makedev(3)).
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn & 0xffffffffn);
  return `${major}:${minor}`;
}

export interface Mounter {
  /**
   * Mounts a size-limited tmpfs on the directory open as dir. Mounting through
   * the open descriptor means the mount lands on exactly the directory that was
   * checked, even if a path element is swapped for a symlink meanwhile.
   */
  mountTmpfs(dir: FileHandle, source: string, sizeBytes: number): Promise<void>;
  /** Unmounts the top mount at path (already checked to be the driver's); lazily if it is busy. */
  unmount(path: string): Promise<void>;
}

export class TmpfsMounter implements Mounter {
  async mountTmpfs(dir: FileHandle, source: string, sizeBytes: number): Promise<void> {
    // mode=0755: readable by non-root pods, not world-writable as tmpfs' default
    // 1777 is. nosuid,nodev: no secret file needs either. Not noexec: upstream
    // allows executable objects (filePermission 0755), so we do too.
    const options = [`size=${sizeBytes}`, "mode=0755", "nosuid", "nodev"];
    // The child sees the directory as its fd 3; --no-canonicalize keeps mount(8)
    // from resolving the path itself, so the kernel follows the descriptor.
    await run("mount", ["--no-canonicalize", "-t", "tmpfs", "-o", options.join(","), source, "/proc/self/fd/3"], dir.fd);
  }

  async unmount(path: string): Promise<void> {
    try {
      await run("umount", ["--no-canonicalize", path]);
    } catch (err) {
      if (!String((err as Error).message).includes("busy")) throw err;
      // Still open somewhere (a container that has not exited yet): detach it
      // now; the kernel frees it when the last user closes it.
      await run("umount", ["--no-canonicalize", "-l", path]);
    }
  }
}

/** Runs mount(8)/umount(8); passFd becomes the child's fd 3. */
function run(command: string, args: string[], passFd?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const stdio: Array<"ignore" | "pipe" | number> = ["ignore", "ignore", "pipe"];
    if (passFd !== undefined) stdio.push(passFd);
    const child = spawn(command, args, { stdio, timeout: 30_000 });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", (err) => reject(new Error(`${command} failed to start: ${err.message}`)));
    child.once("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(" ")} failed: ${stderr.trim() || `exit ${code ?? signal}`}`));
    });
  });
}
