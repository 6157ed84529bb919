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
import { randomInt } from "node:crypto";
import { chmod, lstat, mkdir, readFile, readdir, readlink, rename, rmdir, stat, symlink, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { assertSafeFilePaths } from "./file-paths.ts";

export const DATA_DIR_NAME = "..data";
const DATA_DIR_TMP_NAME = "..data_tmp";

export interface VolumeFile {
  path: string;
  mode: number;
  contents: Buffer;
}

/** The names timestampedDirName makes; ..data is only followed to one of these. */
const DATA_DIR_PATTERN = /^\.\.\d{4}(_\d{2}){5}\.\d+$/;

function timestampedDirName(now = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  const stamp = `${now.getUTCFullYear()}_${pad(now.getUTCMonth() + 1)}_${pad(now.getUTCDate())}_${pad(now.getUTCHours())}_${pad(
    now.getUTCMinutes(),
  )}_${pad(now.getUTCSeconds())}`;
  return `..${stamp}.${randomInt(1e9)}`;
}

/** Lists the files under dir as relative paths; with dirs, also the directories (parents after children). */
async function walk(dir: string, prefix = "", dirs?: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      out.push(...(await walk(join(dir, entry.name), rel, dirs)));
      dirs?.push(rel);
    } else out.push(rel);
  }
  return out;
}

/** Removes a data directory the writer made: its files one by one, then its directories once empty. */
async function removeDataDir(dir: string): Promise<void> {
  const dirs: string[] = [];
  const files = await walk(dir, "", dirs).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (!files) return;
  for (const f of files) await unlink(join(dir, f));
  for (const d of dirs) await rmdir(join(dir, d));
  await rmdir(dir);
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
}

export class VolumeTooLargeError extends Error {}

async function currentDataDir(target: string): Promise<string | undefined> {
  try {
    const dir = await readlink(join(target, DATA_DIR_NAME));
    if (!DATA_DIR_PATTERN.test(dir)) throw new Error(`${DATA_DIR_NAME} points at ${JSON.stringify(dir)}, not a data directory the driver wrote`);
    return dir;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Reads the visible files of a volume (path -> contents), following ..data. */
export async function readVolumeFiles(target: string): Promise<Map<string, VolumeFile>> {
  const files = new Map<string, VolumeFile>();
  const dataDir = await currentDataDir(target);
  if (!dataDir) return files;
  const base = join(target, dataDir);
  for (const path of await walk(base)) {
    const full = join(base, path);
    const [contents, st] = await Promise.all([readFile(full), stat(full)]);
    files.set(path, { path, mode: st.mode & 0o777, contents });
  }
  return files;
}

function sameContent(old: Map<string, VolumeFile>, next: readonly VolumeFile[]): boolean {
  if (old.size !== next.length) return false;
  return next.every((f) => {
    const o = old.get(f.path);
    return o !== undefined && o.mode === (f.mode & 0o777) && o.contents.equals(f.contents);
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
  const oldDir = await currentDataDir(target);
  const oldFiles = await readVolumeFiles(target);
  if (oldDir && sameContent(oldFiles, files)) return false;

  const newDirName = timestampedDirName();
  const newDir = join(target, newDirName);
  await mkdir(newDir, { mode: 0o755 });
  await chmod(newDir, 0o755);
  try {
    for (const file of files) {
      const full = join(newDir, file.path);
      const parent = full.slice(0, full.lastIndexOf("/"));
      if (parent !== newDir) await mkdir(parent, { recursive: true, mode: 0o755 });
      await writeFile(full, file.contents, { mode: file.mode & 0o777 });
      // writeFile's mode is filtered by the umask; set it exactly.
      await chmod(full, file.mode & 0o777);
    }
  } catch (err) {
    await removeDataDir(newDir).catch(() => undefined);
    throw err;
  }

  const newNames = new Set(files.map((f) => topLevel(f.path)));
  for (const name of newNames) {
    const link = join(target, name);
    let existing: Awaited<ReturnType<typeof lstat>> | undefined;
    try {
      existing = await lstat(link);
    } catch {
      existing = undefined;
    }
    // A plain file here was written by a legacy provider itself; a directory
    // is not the writer's to remove.
    if (existing?.isDirectory()) throw new Error(`"${name}" is a directory the driver did not write; refusing to replace it`);
    if (existing && !existing.isSymbolicLink()) await unlink(link);
    if (!existing || !existing.isSymbolicLink()) await symlink(join(DATA_DIR_NAME, name), link);
  }

  const tmpLink = join(target, DATA_DIR_TMP_NAME);
  await unlink(tmpLink).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
  await symlink(newDirName, tmpLink);
  await rename(tmpLink, join(target, DATA_DIR_NAME));

  for (const path of oldFiles.keys()) {
    const name = topLevel(path);
    if (!newNames.has(name)) await unlinkOwnLink(join(target, name));
  }
  if (oldDir && oldDir !== newDirName && DATA_DIR_PATTERN.test(oldDir)) await removeDataDir(join(target, oldDir));
  return true;
}

/** Removes a top-level symlink the writer made; anything else there is left alone. */
async function unlinkOwnLink(path: string): Promise<void> {
  try {
    if ((await lstat(path)).isSymbolicLink()) await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

const kib = (bytes: number) => Math.ceil(bytes / 1024);
