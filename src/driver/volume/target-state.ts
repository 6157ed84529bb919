// What is at a target path, and whether it is the driver's: the one place that
// decides which mounts and files the driver may touch.
//
// A tmpfs is the driver's when mountinfo shows the driver's own source name on
// it, or when it is the very mount (id and device) the driver recorded for that
// target, which is how a volume adopted after a restart or an upgrade from
// upstream (source "tmpfs") is recognised. Anything else (a bind mount, another
// tmpfs, a symlink, files the driver did not write) is foreign and left alone.
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
import { deviceOf, mountIdOf, mountsAt, type MountEntry } from "./mounter.ts";
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
  | { kind: "driver-tmpfs"; mount: VolumeMount; complete: boolean }
  | { kind: "foreign-mount"; mount: MountEntry; birthtimeNs: bigint; driverMountBelow: boolean };

const ENTRY_WORDS: Record<Exclude<TargetEntry, "absent" | "directory">, string> = {
  symlink: "a symlink",
  file: "a regular file",
  other: "a special file (socket, device or FIFO)",
};

/**
 * Reads what is at the target now: lstat for every element, then the
 * directory itself through a descriptor. A tmpfs is the driver's when it is
 * exactly the mount recorded for this target, or when it carries the driver's
 * source name. The whole mount table is read only when the target is a mount
 * point the record does not explain.
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
      return { kind: "driver-tmpfs", mount: recorded, complete: hasData(target) };
    }
    mountPoint = seen.id !== parentMountId(target);
  } finally {
    dir.close();
  }
  if (mountPoint) {
    const mounts = await mountsAt(target.realPath);
    const top = mounts.at(-1);
    if (top) {
      const topMount: VolumeMount = { ...seen, source: top.source };
      const bySource = (m: MountEntry) => m.fsType === "tmpfs" && m.source === driverSource;
      if (!bySource(top) || top.id !== seen.id) {
        return { kind: "foreign-mount", mount: top, birthtimeNs: seen.birthtimeNs, driverMountBelow: mounts.slice(0, -1).some(bySource) };
      }
      return { kind: "driver-tmpfs", mount: topMount, complete: hasData(target) };
    }
  }
  const entries = readdirSync(target.path);
  if (entries.length === 0) return { kind: "empty-directory" };
  return { kind: "foreign-content", entries: entries.sort() };
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

export function sameMount(a: VolumeMount, b: VolumeMount): boolean {
  return a.id === b.id && a.dev === b.dev && a.source === b.source && a.birthtimeNs === b.birthtimeNs;
}
