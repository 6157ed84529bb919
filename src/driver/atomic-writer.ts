// Writes a volume's files so readers never see a half-written set, using the
// kubelet atomic-writer layout:
//
//   <target>/<name>  ->  ..data/<name>        (one symlink per top-level name)
//   <target>/..data  ->  ..2026_11_23_21_00_00.123456789   (swapped by rename)
//
// A new set is written into a fresh timestamped directory; only when it is
// complete is ..data renamed over to point at it. If anything fails, the old
// directory and link stay untouched, so a failed refresh never loses content.
import { randomInt } from "node:crypto";
import { chmod, lstat, mkdir, readFile, readdir, readlink, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { assertSafeFilePaths } from "./file-paths.ts";

export const DATA_DIR_NAME = "..data";
const DATA_DIR_TMP_NAME = "..data_tmp";

export interface VolumeFile {
  path: string;
  mode: number;
  contents: Buffer;
}

function timestampedDirName(now = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  const stamp = `${now.getUTCFullYear()}_${pad(now.getUTCMonth() + 1)}_${pad(now.getUTCDate())}_${pad(now.getUTCHours())}_${pad(
    now.getUTCMinutes(),
  )}_${pad(now.getUTCSeconds())}`;
  return `..${stamp}.${randomInt(1e9)}`;
}

/** Lists the files under dir as relative paths. */
async function walk(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await walk(join(dir, entry.name), rel)));
    else out.push(rel);
  }
  return out;
}

async function currentDataDir(target: string): Promise<string | undefined> {
  try {
    return await readlink(join(target, DATA_DIR_NAME));
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
export async function writeVolumeFiles(target: string, files: readonly VolumeFile[]): Promise<boolean> {
  assertSafeFilePaths(files.map((f) => f.path));
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
    await rm(newDir, { recursive: true, force: true });
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
    // A plain file or directory here was written by a legacy provider itself.
    if (existing && !existing.isSymbolicLink()) await rm(link, { recursive: true, force: true });
    if (!existing || !existing.isSymbolicLink()) await symlink(join(DATA_DIR_NAME, name), link);
  }

  const tmpLink = join(target, DATA_DIR_TMP_NAME);
  await rm(tmpLink, { force: true });
  await symlink(newDirName, tmpLink);
  await rename(tmpLink, join(target, DATA_DIR_NAME));

  for (const path of oldFiles.keys()) {
    const name = topLevel(path);
    if (!newNames.has(name)) await rm(join(target, name), { force: true });
  }
  if (oldDir && oldDir !== newDirName) await rm(join(target, oldDir), { recursive: true, force: true });
  return true;
}
