// What is at a target path, and whether it is the driver's: the one place that
// decides which mounts and files the driver may touch.
//
// A tmpfs is the driver's only when it is the very mount (id, device and root
// creation time) the driver recorded for that target. A tmpfs the driver has
// no record of (after a restart, or one of upstream's driver before an
// upgrade) is foreign here, whatever its source name says: anyone privileged
// on the node can mount a tmpfs named like the driver's. VolumeTarget.inspect
// may then prove it the driver's (volume-proof.ts) and record it. Anything
// else (a bind mount, another tmpfs, a symlink, files the driver did not
// write) is foreign and left alone.
//
// The file system calls here are synchronous: they ask about metadata of
// kubelet's local directory and of tmpfs, which the kernel answers in
// microseconds. An inspection makes a dozen of them; through the thread pool
// each costs a round trip, and on a loaded node each waits for a pool thread
// to be scheduled (a single close() was seen taking 7 ms that way).
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, realpathSync } from "node:fs";
import { status } from "@grpc/grpc-js";
import { DATA_DIR_NAME } from "./atomic-writer.ts";
import { DriverError, ErrorType } from "../errors.ts";
import { deviceOf, mountById, mountIdOf, mountsAt, type MountEntry } from "./mounter.ts";
import { checkTargetPath, walkTarget, type TargetEntry } from "./target-path.ts";

/**
 * The identity of a tmpfs the driver mounted. The kernel reuses mount ids and
 * device numbers as soon as a mount is gone, so the creation time of the
 * tmpfs' root directory (which nobody can set) tells a new mount from the old.
 */
export interface VolumeMount {
  id: number;
  dev: string;
  source: string;
  birthtimeNs: bigint;
}

export interface ResolvedTarget {
  /** The path as kubelet sent it (clean, under <kubelet-dir>/pods). */
  path: string;
  /** The same directory as mountinfo names it (the kubelet dir may itself be a symlink). */
  realPath: string;
  kubeletDir: string;
  /** Elements below <kubelet-dir>/pods. */
  relative: string[];
}

/** Checks the path as a string and finds its real location. Throws InvalidArgument or FailedPrecondition. */
export async function resolveTarget(target: string, kubeletDir: string): Promise<ResolvedTarget> {
  const relative = checkTargetPath(target, kubeletDir);
  const podsDir = `${kubeletDir === "/" ? "" : kubeletDir}/pods`;
  let realPods: string;
  try {
    realPods = realpathSync(podsDir);
  } catch (err) {
    throw new DriverError(status.FAILED_PRECONDITION, ErrorType.FailedToEnsureMountPoint, `kubelet's pods directory ${podsDir} is not usable: ${(err as Error).message}`);
  }
  return { path: target, realPath: `${realPods}/${relative.join("/")}`, kubeletDir, relative };
}

export type TargetState =
  | { kind: "absent" }
  | { kind: "empty-directory" }
  | { kind: "not-a-directory"; what: string }
  | { kind: "foreign-content"; entries: string[] }
  | {
      kind: "driver-tmpfs";
      mount: VolumeMount;
      complete: boolean;
      /** The group its root says the files have (the fsGroup they were written with), when known. */
      group?: number;
    }
  | {
      kind: "foreign-mount";
      /** The top mount at the target, as mountinfo shows it. */
      mount: MountEntry;
      birthtimeNs: bigint;
      /** The recorded mount, or a tmpfs with the driver's source name, lies beneath the top one. */
      driverMountBelow: boolean;
      /** The top mount is what the target directory opens onto (not hidden by a mount made elsewhere). */
      onTarget: boolean;
    };

const ENTRY_WORDS: Record<Exclude<TargetEntry, "absent" | "directory">, string> = {
  symlink: "a symlink",
  file: "a regular file",
  other: "a special file (socket, device or FIFO)",
};

/**
 * Reads what is at the target now: lstat for every element, then the
 * directory itself through a descriptor. A tmpfs is the driver's when it is
 * exactly the mount recorded for this target; any other mount is foreign
 * (see VolumeTarget.inspect for one the driver can prove its own). The whole
 * mount table is read only when the target is a mount point the record does
 * not explain.
 */
export async function inspectTarget(target: ResolvedTarget, driverSource: string, recorded?: VolumeMount): Promise<TargetState> {
  const entry = walkTarget(target.path, target.kubeletDir, target.relative);
  if (entry === "absent") return { kind: "absent" };
  if (entry !== "directory") return { kind: "not-a-directory", what: ENTRY_WORDS[entry] };
  const dir = openTargetDirectory(target);
  let seen: Omit<VolumeMount, "source">;
  let mountPoint: boolean;
  try {
    seen = identityOf(dir);
    if (recorded && seen.id === recorded.id && seen.dev === recorded.dev && seen.birthtimeNs === recorded.birthtimeNs) {
      return { kind: "driver-tmpfs", mount: recorded, complete: hasData(target), group: groupOfRoot(dir) };
    }
    mountPoint = seen.id !== parentMountId(target);
  } finally {
    dir.close();
  }
  if (mountPoint) {
    const mounts = await mountsAt(target.realPath);
    const top = mounts.at(-1);
    if (top) {
      const driversOwn = (m: MountEntry) => (recorded ? m.id === recorded.id && m.dev === recorded.dev : m.fsType === "tmpfs" && m.source === driverSource);
      return { kind: "foreign-mount", mount: top, birthtimeNs: seen.birthtimeNs, driverMountBelow: mounts.slice(0, -1).some(driversOwn), onTarget: top.id === seen.id };
    }
  }
  const entries = readdirSync(target.path);
  if (entries.length === 0) return { kind: "empty-directory" };
  return { kind: "foreign-content", entries: entries.sort() };
}

/** The group of a volume root with the setgid bit (atomic-writer.ts gives it one with a group), through its open descriptor. */
function groupOfRoot(dir: OpenDirectory): number | undefined {
  const st = fstatSync(dir.fd);
  return st.mode & 0o2000 ? st.gid : undefined;
}

function hasData(target: ResolvedTarget): boolean {
  try {
    return lstatSync(`${target.path}/${DATA_DIR_NAME}`).isSymbolicLink();
  } catch {
    return false;
  }
}

/** A directory the driver holds open by descriptor, so later steps act on exactly it. */
export interface OpenDirectory {
  readonly fd: number;
  close(): void;
}

const DIRECTORY_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

function openDirectory(path: string): OpenDirectory {
  const fd = openSync(path, DIRECTORY_FLAGS);
  let open = true;
  return {
    fd,
    close: () => {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/** Mount id (fdinfo), device and root creation time of the directory open as dir. */
export function identityOf(dir: OpenDirectory): Omit<VolumeMount, "source"> {
  const id = mountIdOf(dir.fd);
  const st = fstatSync(dir.fd, { bigint: true });
  return { id, dev: deviceOf(st.dev), birthtimeNs: st.birthtimeNs };
}

function parentMountId(target: ResolvedTarget): number {
  const parent = openDirectory(target.path.slice(0, target.path.lastIndexOf("/")));
  try {
    return mountIdOf(parent.fd);
  } finally {
    parent.close();
  }
}

/** "a bind mount of ext4 (source /dev/vda)" style words for messages. */
export function describeMount(mount: MountEntry): string {
  return `a ${mount.fsType} mount (source ${JSON.stringify(mount.source)}) the driver did not make`;
}

export function describeEntries(entries: readonly string[]): string {
  const shown = entries.slice(0, 3).map((e) => JSON.stringify(e));
  return `${entries.length} ${entries.length === 1 ? "entry" : "entries"} (${shown.join(", ")}${entries.length > 3 ? ", ..." : ""})`;
}

/** Opens the directory at the target without following a symlink, and checks it is where mountinfo says. */
export function openTargetDirectory(target: ResolvedTarget): OpenDirectory {
  const dir = openDirectory(target.path);
  try {
    const opened = readlinkSync(`/proc/self/fd/${dir.fd}`);
    if (opened !== target.realPath) throw new Error(`target path ${target.path} resolved to ${opened}, not ${target.realPath}`);
    return dir;
  } catch (err) {
    dir.close();
    throw err;
  }
}

/**
 * Opens the directory that holds the target (kubelet's volume directory),
 * checked to be where it should be: nothing along the path was swapped for a
 * symlink. Creating or removing the target through it (at
 * /proc/self/fd/<n>/<name>) then acts on exactly that directory, whatever
 * happens to the path meanwhile: Node has no mkdirat or unlinkat, and the
 * /proc link is how the kernel lets a path name an open directory.
 */
export function openTargetParent(target: ResolvedTarget): OpenDirectory & { entry: string } {
  const cut = target.path.lastIndexOf("/");
  const realParent = target.realPath.slice(0, target.realPath.lastIndexOf("/"));
  let dir: OpenDirectory;
  try {
    dir = openDirectory(target.path.slice(0, cut));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ELOOP" || code === "ENOTDIR") throw new TargetMovedError(`the directory of target path ${target.path} is no longer a directory (${code}); refusing to act on it`);
    throw err;
  }
  try {
    const opened = readlinkSync(`/proc/self/fd/${dir.fd}`);
    if (opened !== realParent) throw new TargetMovedError(`the directory of target path ${target.path} resolved to ${opened}, not ${realParent}; refusing to act on it`);
    return { ...dir, entry: `/proc/self/fd/${dir.fd}/${target.path.slice(cut + 1)}` };
  } catch (err) {
    dir.close();
    throw err;
  }
}

/** A path element changed between the check and the act (a symlink swapped in): nothing was done. */
export class TargetMovedError extends DriverError {
  constructor(message: string) {
    super(status.FAILED_PRECONDITION, ErrorType.FailedToEnsureMountPoint, message);
  }
}

/**
 * The target directory open by descriptor, checked to show exactly the tmpfs
 * `expected` (id, device, root creation time): what an unmount acts on, so it
 * detaches that very mount whatever happens to the path afterwards.
 */
export function openMountedVolume(target: ResolvedTarget, expected: VolumeMount): OpenDirectory {
  const dir = openTargetDirectory(target);
  try {
    const seen = identityOf(dir);
    if (seen.id !== expected.id || seen.dev !== expected.dev || seen.birthtimeNs !== expected.birthtimeNs) {
      throw new TargetMovedError(`target path ${target.path} no longer shows the tmpfs the driver inspected; nothing was unmounted`);
    }
    return dir;
  } catch (err) {
    dir.close();
    throw err;
  }
}

/**
 * Where the tmpfs `expected` is still mounted, seen from anywhere on the node
 * (its mount point may have been moved away from the target), or undefined
 * when it is gone. The kernel hands a freed mount id and device number to the
 * next mount, so a mount with both is taken for a different one only when it
 * can be opened and shows another root creation time; when it cannot be
 * checked it counts as still mounted.
 */
export async function stillMountedAt(expected: VolumeMount): Promise<string | undefined> {
  const entry = await mountById(expected.id);
  if (!entry || entry.dev !== expected.dev) return undefined;
  let dir: OpenDirectory;
  try {
    dir = openDirectory(entry.mountPoint);
  } catch {
    return entry.mountPoint;
  }
  try {
    const seen = identityOf(dir);
    if (seen.id === expected.id && seen.birthtimeNs !== expected.birthtimeNs) return undefined;
    return entry.mountPoint;
  } catch {
    return entry.mountPoint;
  } finally {
    dir.close();
  }
}

/** The volume's root open on its tmpfs; write under `path` (/proc/self/fd/<n>), then close. */
export interface VolumeRoot {
  path: string;
  close(): void;
}

/**
 * Opens the volume for writing after checking it is still exactly the tmpfs
 * the driver mounted there. Writes go through the open descriptor, so even if
 * the tmpfs is unmounted meanwhile they land in the (detached) tmpfs, never on
 * the node's disk. Returns why not when the check fails; `gone` means the
 * driver's mount is no longer at the target at all.
 */
export async function openVolumeRoot(target: ResolvedTarget, expected: VolumeMount): Promise<VolumeRoot | { problem: string; gone: boolean }> {
  let entry: TargetEntry;
  try {
    entry = walkTarget(target.path, target.kubeletDir, target.relative);
  } catch (err) {
    return { problem: (err as Error).message, gone: true };
  }
  if (entry !== "directory") return { problem: `target path ${target.path} is ${entry === "absent" ? "gone" : ENTRY_WORDS[entry]}`, gone: true };
  let dir: OpenDirectory;
  try {
    dir = openTargetDirectory(target);
  } catch (err) {
    return { problem: (err as Error).message, gone: false };
  }
  let seen: Omit<VolumeMount, "source"> | undefined;
  try {
    seen = identityOf(dir);
  } catch {
    seen = undefined;
  }
  if (seen && seen.id === expected.id && seen.dev === expected.dev && seen.birthtimeNs === expected.birthtimeNs) {
    // The top mount at the target is the very tmpfs the driver mounted.
    return { path: `/proc/self/fd/${dir.fd}`, close: () => dir.close() };
  }
  dir.close();
  // Not the volume's tmpfs: covered by another mount, or gone.
  const mounts = await mountsAt(target.realPath);
  const ours = mounts.find((m) => m.id === expected.id && m.source === expected.source && m.dev === expected.dev);
  if (!ours) return { problem: `the volume's tmpfs at ${target.path} is no longer mounted; nothing was written`, gone: true };
  const top = mounts.at(-1)!;
  return { problem: `${target.path} now shows ${describeMount(top)} on top of the volume's tmpfs; nothing was written`, gone: false };
}
