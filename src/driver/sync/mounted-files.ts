// The files visible in a mounted volume, read for the secretObjects syncer.
import { lstat, readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { MountedFile } from "../../shared/secrets/secret-data.ts";
import { DATA_DIR_NAME, readVolumeFiles } from "../volume/atomic-writer.ts";

async function walkPlain(dir: string, prefix: string, out: Map<string, MountedFile>): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    // Only top-level entries starting with ".." belong to the atomic writer.
    if (prefix === "" && entry.name.startsWith("..")) continue;
    const full = join(dir, entry.name);
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    // Top-level symlinks are followed, as upstream does.
    const st = entry.isSymbolicLink() && prefix === "" ? await stat(full) : await lstat(full);
    if (st.isDirectory()) await walkPlain(full, rel, out);
    else if (st.isFile()) out.set(rel, { path: rel, contents: await readFile(full) });
  }
}

/**
 * Reads the files visible in a mounted volume. The driver's own volumes use
 * the atomic-writer layout (<target>/..data); a volume written some other way
 * is read as a plain tree, skipping top-level `..` entries.
 */
export async function readMountedFiles(targetPath: string): Promise<Map<string, MountedFile>> {
  let hasDataDir = false;
  try {
    hasDataDir = (await lstat(join(targetPath, DATA_DIR_NAME))).isSymbolicLink();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const out = new Map<string, MountedFile>();
  if (hasDataDir) {
    for (const [path, file] of await readVolumeFiles(targetPath)) out.set(path, { path, contents: file.contents });
    return out;
  }
  await walkPlain(targetPath, "", out);
  return out;
}
