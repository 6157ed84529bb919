// What a pod sees in a mounted volume: every file under the target with its
// mode and bytes, through the `..data` symlinks both drivers write (their
// hidden `..`-entries left out).
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";

export interface SeenFile {
  mode: number;
  contents: Buffer;
}

export async function volumeFiles(target: string): Promise<Map<string, SeenFile>> {
  const out = new Map<string, SeenFile>();
  const walk = async (dir: string, prefix: string) => {
    for (const name of (await readdir(dir)).sort()) {
      if (prefix === "" && name.startsWith("..")) continue;
      const path = join(dir, name);
      const info = await stat(path);
      const rel = prefix ? `${prefix}/${name}` : name;
      if (info.isDirectory()) await walk(path, rel);
      else out.set(rel, { mode: info.mode & 0o7777, contents: await readFile(path) });
    }
  };
  await walk(target, "");
  return out;
}

/** Path → "mode:sha" for comparing volumes in one assertion. */
export function volumeDigest(files: Map<string, SeenFile>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [path, f] of files) out[path] = `0${f.mode.toString(8)} ${f.contents.toString("base64")}`;
  return out;
}
