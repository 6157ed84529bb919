// Writes a volume's files so readers never see a half-written set, using the
// kubelet atomic-writer layout:
//
//   <target>/<name>  ->  ..data/<name>        (one symlink per top-level name)
//   <target>/..data  ->  ..2026_11_23_21_00_00.123456789   (swapped by rename)
//
// A new set is written into a fresh timestamped directory; only when it is
// complete is ..data renamed over to point at it. If anything fails, the old
// directory and link stay untouched, so a failed refresh never loses content.
//
// Nothing is ever deleted recursively: the writer removes only the files and
// directories it lists as its own, one by one, and a directory only once empty.
// Callers pass the volume's root as /proc/self/fd/<n> of a descriptor open on
// the checked tmpfs (volume-target.ts), so every write lands in that tmpfs.
//
// With a group (the pod's fsGroup, which kubelet delegates to the driver
// through VOLUME_MOUNT_GROUP), everything the writer makes is root:<group>:
// files with the group read bit added to their mode, directories (the
// volume's root and the data directories) 2750. The owner is set on each new
// file before the swap makes it visible, so no reader ever sees a file of the
// set root:root or world-readable. Without a group nothing is chowned, as
// upstream writes.
//
// The calls are synchronous: they touch only memory (a tmpfs), take
// microseconds each, and a publish makes about forty of them; through the
// thread pool each would cost a round trip and a promise.
import { randomInt } from "node:crypto";
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  fstatSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { assertSafeFilePaths } from "../../shared/provider-api/file-paths.ts";

export const DATA_DIR_NAME = "..data";
const DATA_DIR_TMP_NAME = "..data_tmp";

export interface VolumeFile {
  path: string;
  mode: number;
  contents: Buffer;
  /** The file's group, as read back from the volume. */
  gid?: number;
}

/** Mode of the volume's root and data directories with a group: setgid, group read, no world access. */
export const GROUP_DIRECTORY_MODE = 0o2750;
/** The mode the driver mounts its tmpfs with (mounter.ts), which the root gets back when a group is removed. */
const ROOT_MODE = 0o755;
/** chown's "leave the owner as it is" (the driver writes as root). */
const KEEP_OWNER = -1;
const SETGID_BIT = 0o2000;
/** The group files get without a group asked for: the driver's own (root's). */
const driverGroup = (): number => process.getegid?.() ?? 0;

/** The mode a file gets: what was asked, plus group read when the volume has a group. */
export function fileModeFor(mode: number, group: number | undefined): number {
  return group === undefined ? mode & 0o777 : (mode & 0o777) | 0o040;
}

/** The group the volume's files belong to, read from its root: undefined when it has none. */
export function volumeGroup(target: string): number | undefined {
  const st = statSync(target);
  return st.mode & SETGID_BIT ? st.gid : undefined;
}

/**
 * Gives the volume's root the group (root:<group>, 2750) before any file of
 * the set is written, or, when a group was applied before and none is asked
 * now, the driver's own again (root:root, 0755). Without a group, a root that
 * never had one is not touched.
 */
function ownRoot(target: string, group: number | undefined): void {
  const st = statSync(target);
  if (group !== undefined) {
    if (st.gid !== group) chownSync(target, KEEP_OWNER, group);
    if ((st.mode & 0o7777) !== GROUP_DIRECTORY_MODE) chmodSync(target, GROUP_DIRECTORY_MODE);
  } else if (st.mode & SETGID_BIT) {
    chownSync(target, KEEP_OWNER, driverGroup());
    chmodSync(target, ROOT_MODE);
  }
}

/** A directory of the data set: 0755 as upstream makes it, or root:<group> 2750 (never more open, not even for a moment). */
function makeDataDirectory(path: string, group: number | undefined): void {
  if (group === undefined) {
    mkdirSync(path, { mode: 0o755 });
    chmodSync(path, 0o755);
    return;
  }
  mkdirSync(path, { mode: 0o700 });
  chownSync(path, KEEP_OWNER, group);
  chmodSync(path, GROUP_DIRECTORY_MODE);
}

/** The names timestampedDirName makes; ..data is only followed to one of these. */
const DATA_DIR_PATTERN = /^\.\.\d{4}(_\d{2}){5}\.\d+$/;
/** The longest name timestampedDirName makes ("..2026_11_23_21_00_00.123456789"). */
export const DATA_DIR_NAME_MAX_BYTES = "..0000_00_00_00_00_00.999999999".length;

function timestampedDirName(now = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  const stamp = `${now.getUTCFullYear()}_${pad(now.getUTCMonth() + 1)}_${pad(now.getUTCDate())}_${pad(now.getUTCHours())}_${pad(
    now.getUTCMinutes(),
  )}_${pad(now.getUTCSeconds())}`;
  return `..${stamp}.${randomInt(1e9)}`;
}

/** Lists the files under dir as relative paths; with dirs, also the directories (parents after children). */
function walk(dir: string, prefix = "", dirs?: string[]): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      out.push(...walk(join(dir, entry.name), rel, dirs));
      dirs?.push(rel);
    } else out.push(rel);
  }
  return out;
}

/** Removes a data directory the writer made: its files one by one, then its directories once empty. */
function removeDataDir(dir: string): void {
  const dirs: string[] = [];
  let files: string[];
  try {
    files = walk(dir, "", dirs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  for (const f of files) unlinkSync(join(dir, f));
  for (const d of dirs) rmdirSync(join(dir, d));
  rmdirSync(dir);
}

const PAGE_BYTES = 4096;
/** tmpfs keeps a symlink target shorter than this inside the inode; longer ones take a page. */
const SHORT_SYMLINK_BYTES = 128;

/**
 * Bytes a set of files takes on a tmpfs: every file rounded up to whole pages,
 * plus a page for each long top-level symlink (directories take none).
 */
export function tmpfsFootprint(files: readonly VolumeFile[]): number {
  let bytes = 0;
  for (const f of files) bytes += Math.ceil(f.contents.length / PAGE_BYTES) * PAGE_BYTES;
  for (const name of new Set(files.map((f) => topLevel(f.path)))) {
    if (Buffer.byteLength(join(DATA_DIR_NAME, name)) >= SHORT_SYMLINK_BYTES) bytes += PAGE_BYTES;
  }
  return bytes;
}

export interface WriteOptions {
  /**
   * The tmpfs size. A set larger than half of it is refused before anything is
   * written: the swap needs the old and the new set side by side, so a set that
   * fits the first mount must also fit every refresh.
   */
  capacityBytes?: number;
  /** Names the setting to raise in the error (e.g. "--tmpfs-size=64Mi"). */
  capacitySetting?: string;
  /** The group every file and directory gets (the pod's fsGroup); none: upstream's ownership. */
  group?: number;
}

export class VolumeTooLargeError extends Error {}

function currentDataDir(target: string): string | undefined {
  try {
    const dir = readlinkSync(join(target, DATA_DIR_NAME));
    if (!DATA_DIR_PATTERN.test(dir)) throw new Error(`${DATA_DIR_NAME} points at ${JSON.stringify(dir)}, not a data directory the driver wrote`);
    return dir;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Reads the files the writer wrote (path -> contents), following ..data to a
 * data directory it named. Only regular files and directories count: a
 * symlink or special file inside is skipped, never followed or opened.
 */
export async function readVolumeFiles(target: string): Promise<Map<string, VolumeFile>> {
  const files = new Map<string, VolumeFile>();
  const dataDir = currentDataDir(target);
  if (!dataDir) return files;
  const base = join(target, dataDir);
  for (const path of walkRegular(base)) {
    const fd = openSync(join(base, path), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) continue;
      files.set(path, { path, mode: st.mode & 0o777, contents: readFileSync(fd), gid: st.gid });
    } finally {
      closeSync(fd);
    }
  }
  return files;
}

/** The regular files under dir as relative paths (entries' own types: nothing is followed). */
function walkRegular(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...walkRegular(join(dir, entry.name), rel));
    else if (entry.isFile()) out.push(rel);
  }
  return out;
}

function sameContent(old: Map<string, VolumeFile>, next: readonly VolumeFile[], group: number | undefined): boolean {
  if (old.size !== next.length) return false;
  const gid = group ?? driverGroup();
  return next.every((f) => {
    const o = old.get(f.path);
    return o !== undefined && o.mode === fileModeFor(f.mode, group) && o.gid === gid && o.contents.equals(f.contents);
  });
}

const topLevel = (path: string) => path.split("/")[0]!;

/**
 * Writes the complete set of files into target. Returns false when the volume
 * already holds exactly these files (nothing on disk is touched).
 */
export async function writeVolumeFiles(target: string, files: readonly VolumeFile[], options: WriteOptions = {}): Promise<boolean> {
  assertSafeFilePaths(files.map((f) => f.path));
  if (options.capacityBytes !== undefined) {
    const needed = tmpfsFootprint(files);
    if (needed * 2 > options.capacityBytes) {
      throw new VolumeTooLargeError(
        `the ${files.length} files take ${kib(needed)} KiB on tmpfs, more than half of the volume's ${kib(options.capacityBytes)} KiB ` +
          `(a rotation writes the new set beside the old one); raise ${options.capacitySetting ?? "the tmpfs size"} to at least ${kib(needed * 2)} KiB`,
      );
    }
  }
  const group = options.group;
  const oldDir = currentDataDir(target);
  const oldFiles = await readVolumeFiles(target);
  ownRoot(target, group);
  if (oldDir && sameContent(oldFiles, files, group)) return false;

  const newDirName = timestampedDirName();
  const newDir = join(target, newDirName);
  makeDataDirectory(newDir, group);
  try {
    for (const file of files) {
      const full = join(newDir, file.path);
      const parent = full.slice(0, full.lastIndexOf("/"));
      if (parent !== newDir) {
        if (group === undefined) mkdirSync(parent, { recursive: true, mode: 0o755 });
        else makeDataDirectories(newDir, file.path, group);
      }
      const mode = fileModeFor(file.mode, group);
      writeFileSync(full, file.contents, { mode });
      // the owner before the mode, both before the swap makes the file visible
      if (group !== undefined) chownSync(full, KEEP_OWNER, group);
      // writeFile's mode is filtered by the umask; set it exactly.
      chmodSync(full, mode);
    }
  } catch (err) {
    try {
      removeDataDir(newDir);
    } catch {
      // the error that stopped the write is the one to report
    }
    throw err;
  }

  const newNames = new Set(files.map((f) => topLevel(f.path)));
  for (const name of newNames) {
    const link = join(target, name);
    let existing: ReturnType<typeof lstatSync> | undefined;
    try {
      existing = lstatSync(link);
    } catch {
      existing = undefined;
    }
    // A plain file here was written by a legacy provider itself; a directory
    // is not the writer's to remove.
    if (existing?.isDirectory()) throw new Error(`"${name}" is a directory the driver did not write; refusing to replace it`);
    if (existing && !existing.isSymbolicLink()) unlinkSync(link);
    if (!existing || !existing.isSymbolicLink()) {
      symlinkSync(join(DATA_DIR_NAME, name), link);
      if (group !== undefined) lchownSync(link, KEEP_OWNER, group);
    } else if (existing.gid !== (group ?? driverGroup())) {
      lchownSync(link, KEEP_OWNER, group ?? driverGroup());
    }
  }

  const tmpLink = join(target, DATA_DIR_TMP_NAME);
  try {
    unlinkSync(tmpLink);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  symlinkSync(newDirName, tmpLink);
  if (group !== undefined) lchownSync(tmpLink, KEEP_OWNER, group);
  renameSync(tmpLink, join(target, DATA_DIR_NAME));

  for (const path of oldFiles.keys()) {
    const name = topLevel(path);
    if (!newNames.has(name)) unlinkOwnLink(join(target, name));
  }
  if (oldDir && oldDir !== newDirName && DATA_DIR_PATTERN.test(oldDir)) removeDataDir(join(target, oldDir));
  return true;
}

/** The directories between newDir and the file at `path` (below it), each root:<group> 2750. */
function makeDataDirectories(newDir: string, path: string, group: number): void {
  const parts = path.split("/").slice(0, -1);
  let dir = newDir;
  for (const part of parts) {
    dir = join(dir, part);
    try {
      makeDataDirectory(dir, group);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}

/** Removes a top-level symlink the writer made; anything else there is left alone. */
function unlinkOwnLink(path: string): void {
  try {
    if (lstatSync(path).isSymbolicLink()) unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

const kib = (bytes: number) => Math.ceil(bytes / 1024);
