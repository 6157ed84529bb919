// tmpfs mounts at the pod's target path, and the node's mount table as
// /proc/self/mountinfo shows it. Mount state is always read from mountinfo, so a
// directory that merely exists is never mistaken for a live volume (upstream's
// ordering bug, reference driver-spec §2.5 notes).
//
// The driver names its tmpfs with a source of its own (the driver name), which
// mountinfo shows, and remembers each mount's id and device number: that is how
// it tells its own mounts from anything else mounted on the node.
import { readFileSync } from "node:fs";
import { MountCommands, openDirectoryPath } from "./mount-commands.ts";
import { MountSyscalls, mountSyscallsAvailable, type NewMount, type SyscallNumbers } from "./mount-syscalls.ts";
import { traceStep } from "../../shared/trace.ts";

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

/** The escaping mountinfo applies to paths: space, tab, newline and backslash as octal. */
function escapeMountField(field: string): string {
  return field.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);
}

function parseMountLine(line: string): MountEntry {
  const separator = line.indexOf(" - ");
  const fields = line.slice(0, separator).split(" ");
  const tail = line.slice(separator + 3).split(" ");
  return {
    id: Number(fields[0]),
    dev: fields[2] ?? "",
    mountPoint: unescapeMountField(fields[4] ?? ""),
    fsType: tail[0] ?? "",
    source: unescapeMountField(tail[1] ?? ""),
  };
}

export function parseMountInfo(text: string, keep: (line: string) => boolean = () => true): MountEntry[] {
  const mounts: MountEntry[] = [];
  // Lines are filtered as text first: a node with hundreds of volumes has
  // hundreds of lines, and only a few are of interest.
  for (const line of text.split("\n")) if (line && keep(line)) mounts.push(parseMountLine(line));
  return mounts;
}

// procfs answers from kernel memory and never waits on a disk, so its files are
// read synchronously: the promise API would take four thread-pool round trips
// (open, fstat, read, close) for each, on every publish and unpublish.
const readMountInfo = () => readFileSync("/proc/self/mountinfo", "utf8");

export async function listMounts(): Promise<MountEntry[]> {
  return parseMountInfo(readMountInfo());
}

/** The mounts whose mount point is exactly path, bottom first (the last one is what a reader sees). */
export async function mountsAt(path: string): Promise<MountEntry[]> {
  const field = ` ${escapeMountField(path)} `;
  return parseMountInfo(readMountInfo(), (line) => line.includes(field)).filter((m) => m.mountPoint === path);
}

/** The mount with this id, if it still exists. */
export async function mountById(id: number): Promise<MountEntry | undefined> {
  const prefix = `${id} `;
  return parseMountInfo(readMountInfo(), (line) => line.startsWith(prefix))[0];
}

/** The id of the mount an open file lives on (/proc/self/fdinfo), without reading the whole mount table. */
export function mountIdOf(fd: number): number {
  const info = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
  const match = /^mnt_id:\s*(\d+)$/m.exec(info);
  if (!match) throw new Error(`no mnt_id in /proc/self/fdinfo/${fd}`);
  return Number(match[1]);
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
   * Resolves with the new mount's id and device when the kernel said which
   * mount it made; else the caller finds it in the mount table.
   */
  mountTmpfs(dir: { readonly fd: number }, source: string, sizeBytes: number): Promise<NewMount | undefined>;
  /**
   * Detaches the tmpfs whose root dir holds open (already checked to be the
   * driver's). Through the open descriptor, so exactly that mount goes, even
   * if a path element is swapped meanwhile.
   */
  unmount(dir: { readonly fd: number }): Promise<void>;
  /** Gets ready for the first mount (starts a helper process) once the driver serves. */
  start?(): void;
  close(): void;
}

// mount(2), fsmount(2) and umount2(2) flags (linux/mount.h).
const MS_NOSUID = 2;
const MS_NODEV = 4;
const MOUNT_ATTR_NOSUID = 2;
const MOUNT_ATTR_NODEV = 4;
const MNT_DETACH = 2;

/**
 * mode=0755: readable by non-root pods, not world-writable as tmpfs' default
 * 1777 is. nosuid,nodev: no secret file needs either. Not noexec: upstream
 * allows executable objects (filePermission 0755), so we do too.
 */
const tmpfsOptions = (sizeBytes: number) => [`size=${sizeBytes}`, "mode=0755"];

/**
 * The driver's mounter: the system calls through the Perl helper
 * (mount-syscalls.ts) where it can, else mount(8) and umount(8) through the
 * long-lived shell (mount-commands.ts). Either way the kernel is handed the
 * open descriptor's /proc path, which it follows to exactly that directory.
 */
export class TmpfsMounter implements Mounter {
  private readonly syscalls: MountSyscalls | undefined;
  private readonly commands: MountCommands | undefined;

  /** `syscallNumbers`: other numbers than the architecture's (a test of a kernel without the mount API). */
  constructor(options: { via?: "syscalls" | "commands"; syscallNumbers?: Partial<SyscallNumbers> } = {}) {
    const via = options.via ?? (mountSyscallsAvailable() ? "syscalls" : "commands");
    if (via === "syscalls") this.syscalls = new MountSyscalls(process.arch, options.syscallNumbers);
    else this.commands = new MountCommands();
  }

  async mountTmpfs(dir: { readonly fd: number }, source: string, sizeBytes: number): Promise<NewMount | undefined> {
    const target = openDirectoryPath(dir.fd);
    const options = tmpfsOptions(sizeBytes);
    if (this.syscalls) {
      const mount = { attributes: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, flags: MS_NOSUID | MS_NODEV, options };
      return traceStep("mount(2)", () => this.syscalls!.tmpfs(source, target, mount));
    }
    // --no-canonicalize keeps mount(8) from resolving the path itself, so the
    // kernel follows the open descriptor.
    const args = ["--no-canonicalize", "-t", "tmpfs", "-o", `${options.join(",")},nosuid,nodev`, source, target];
    await traceStep("mount(8)", () => this.commands!.run("mount", args));
    return undefined;
  }

  unmount(dir: { readonly fd: number }): Promise<void> {
    // Lazily (MNT_DETACH, umount -l): the driver's own descriptor keeps the
    // mount busy, and so may a container that has not exited yet; the kernel
    // frees the tmpfs when the last user closes it.
    const target = openDirectoryPath(dir.fd);
    if (this.syscalls) return traceStep("umount2(2)", () => this.syscalls!.umount2(target, MNT_DETACH));
    return traceStep("umount(8)", () => this.commands!.run("umount", ["--no-canonicalize", "-l", target]));
  }

  start(): void {
    this.syscalls?.start();
  }

  close(): void {
    this.syscalls?.close();
    this.commands?.close();
  }
}
