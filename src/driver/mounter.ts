// tmpfs mounts at the pod's target path. Mount state is read from
// /proc/self/mountinfo, so a directory that merely exists is never mistaken for
// a live volume (upstream's ordering bug, reference driver-spec §2.5 notes).
import { execFile } from "node:child_process";
import { readFile, readdir, realpath } from "node:fs/promises";
import { promisify } from "node:util";

const exec = promisify(execFile);

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
}

/** Decodes the octal escapes mountinfo uses for spaces, tabs and newlines. */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

export async function listMounts(): Promise<MountEntry[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const mounts: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const [left, right] = line.split(" - ");
    const fields = left!.split(" ");
    const tail = (right ?? "").split(" ");
    mounts.push({ mountPoint: unescapeMountPath(fields[4]!), fsType: tail[0] ?? "", source: tail[1] ?? "" });
  }
  return mounts;
}

export type MountState = "absent" | "not-mounted" | "mounted" | "broken";

export interface Mounter {
  /** What is at the target: nothing, a plain directory, a live tmpfs, or a mount that cannot be read or is not ours. */
  state(target: string): Promise<MountState>;
  mountTmpfs(target: string, sizeBytes: number): Promise<void>;
  /** Unmounts every mount stacked on target; lazily if the mount is busy. */
  unmount(target: string): Promise<void>;
}

async function mountsAt(target: string): Promise<MountEntry[]> {
  let resolved: string;
  try {
    resolved = await realpath(target);
  } catch {
    resolved = target;
  }
  return (await listMounts()).filter((m) => m.mountPoint === resolved);
}

export class TmpfsMounter implements Mounter {
  async state(target: string): Promise<MountState> {
    try {
      await readdir(target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return "absent";
      if ((await mountsAt(target)).length > 0) return "broken";
      throw err;
    }
    const mounts = await mountsAt(target);
    if (mounts.length === 0) return "not-mounted";
    // Only our own tmpfs is a live volume; anything else mounted here is
    // unmounted and replaced, never reported as mounted content.
    return mounts.at(-1)!.fsType === "tmpfs" ? "mounted" : "broken";
  }

  async mountTmpfs(target: string, sizeBytes: number): Promise<void> {
    // mode=0755: readable by non-root pods, not world-writable as tmpfs' default
    // 1777 is. nosuid,nodev: no secret file needs either. Not noexec: upstream
    // allows executable objects (filePermission 0755), so we do too.
    const options = [`size=${sizeBytes}`, "mode=0755", "nosuid", "nodev"];
    await run("mount", ["-t", "tmpfs", "-o", options.join(","), "tmpfs", target]);
  }

  async unmount(target: string): Promise<void> {
    for (let i = 0; i < 8 && (await mountsAt(target)).length > 0; i++) {
      try {
        await run("umount", [target]);
      } catch (err) {
        if (!String((err as Error).message).includes("busy")) throw err;
        await run("umount", ["-l", target]);
      }
    }
    if ((await mountsAt(target)).length > 0) throw new Error(`target path ${target} is still mounted after unmount`);
  }
}

async function run(command: string, args: string[]): Promise<void> {
  try {
    await exec(command, args, { timeout: 30_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${command} ${args.join(" ")} failed: ${(e.stderr ?? e.message).trim()}`);
  }
}
