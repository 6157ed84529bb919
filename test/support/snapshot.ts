// Every file, directory and symlink below a directory, with modes, contents
// and link targets: compared before and after, to show nothing was touched.
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";

export async function snapshotTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (path: string, rel: string): Promise<void> => {
    for (const name of (await readdir(path)).sort()) {
      const full = join(path, name);
      const key = rel ? `${rel}/${name}` : name;
      const st = await lstat(full);
      if (st.isSymbolicLink()) out[key] = `-> ${await readlink(full)}`;
      else if (st.isDirectory()) {
        out[key] = `dir ${(st.mode & 0o7777).toString(8)}`;
        await walk(full, key);
      } else out[key] = `file ${(st.mode & 0o7777).toString(8)} ${(await readFile(full)).toString("base64")}`;
    }
  };
  await walk(dir, "");
  return out;
}
