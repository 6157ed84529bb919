import { lstat, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readVolumeFiles, tmpfsFootprint, volumeGroup, writeVolumeFiles, type VolumeFile } from "../../../src/driver/volume/atomic-writer.ts";

const file = (path: string, contents: string, mode = 0o644): VolumeFile => ({ path, mode, contents: Buffer.from(contents) });

describe("atomic writer", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "aw-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes files behind ..data with the given modes, ignoring the umask", async () => {
    expect(await writeVolumeFiles(dir, [file("a", "alpha", 0o640), file("sub/b", "bravo", 0o777)])).toBe(true);
    expect(await readFile(join(dir, "a"), "utf8")).toBe("alpha");
    expect(await readFile(join(dir, "sub/b"), "utf8")).toBe("bravo");
    expect((await lstat(join(dir, "a"))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(dir, "a"))).toBe("..data/a");
    expect(await readlink(join(dir, "sub"))).toBe("..data/sub");
    const data = await readlink(join(dir, "..data"));
    expect(data).toMatch(/^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+$/);
    expect((await stat(join(dir, data, "a"))).mode & 0o777).toBe(0o640);
    expect((await stat(join(dir, data, "sub/b"))).mode & 0o777).toBe(0o777);
    expect((await stat(join(dir, data))).mode & 0o777).toBe(0o755);
  });

  it("touches nothing when the content is unchanged", async () => {
    await writeVolumeFiles(dir, [file("a", "alpha")]);
    const before = await readlink(join(dir, "..data"));
    const mtime = (await stat(dir)).mtimeMs;
    expect(await writeVolumeFiles(dir, [file("a", "alpha")])).toBe(false);
    expect(await readlink(join(dir, "..data"))).toBe(before);
    expect((await stat(dir)).mtimeMs).toBe(mtime);
  });

  it("swaps to a new set, removing files no longer returned and the old directory", async () => {
    await writeVolumeFiles(dir, [file("a", "alpha"), file("old", "x")]);
    const first = await readlink(join(dir, "..data"));
    expect(await writeVolumeFiles(dir, [file("a", "alpha-2"), file("new", "y")])).toBe(true);
    expect(await readFile(join(dir, "a"), "utf8")).toBe("alpha-2");
    expect(await readFile(join(dir, "new"), "utf8")).toBe("y");
    await expect(lstat(join(dir, "old"))).rejects.toThrow();
    const entries = await readdir(dir);
    expect(entries).not.toContain(first);
    expect(entries.filter((e) => e.startsWith("..")).sort()).toEqual(["..data", await readlink(join(dir, "..data"))].sort());
  });

  it("a mode change alone is a change", async () => {
    await writeVolumeFiles(dir, [file("a", "alpha", 0o644)]);
    expect(await writeVolumeFiles(dir, [file("a", "alpha", 0o600)])).toBe(true);
    expect((await readVolumeFiles(dir)).get("a")!.mode).toBe(0o600);
  });

  it("refuses unsafe paths before writing anything, keeping the old content", async () => {
    await writeVolumeFiles(dir, [file("a", "alpha")]);
    const before = await readdir(dir);
    for (const bad of ["../x", "/etc/passwd", "a/../../x", "./a", "a//b", "..hidden", ""]) {
      await expect(writeVolumeFiles(dir, [file("a", "changed"), file(bad, "x")])).rejects.toThrow(/invalid file paths/);
    }
    expect(await readdir(dir)).toEqual(before);
    expect(await readFile(join(dir, "a"), "utf8")).toBe("alpha");
  });

  it("replaces a file a legacy provider wrote directly", async () => {
    await writeFile(join(dir, "a"), "written by provider");
    await writeVolumeFiles(dir, [file("a", "alpha")]);
    expect((await lstat(join(dir, "a"))).isSymbolicLink()).toBe(true);
    expect(await readFile(join(dir, "a"), "utf8")).toBe("alpha");
  });

  it("never removes a directory it did not write, and leaves the old set in place", async () => {
    await writeVolumeFiles(dir, [file("a", "alpha")]);
    const before = await readlink(join(dir, "..data"));
    await mkdir(join(dir, "d"));
    await writeFile(join(dir, "d", "x"), "y");
    await expect(writeVolumeFiles(dir, [file("a", "alpha-2"), file("d/x", "new")])).rejects.toThrow(`"d" is a directory the driver did not write; refusing to replace it`);
    expect(await readFile(join(dir, "d", "x"), "utf8")).toBe("y");
    expect(await readlink(join(dir, "..data"))).toBe(before);
    expect(await readFile(join(dir, "a"), "utf8")).toBe("alpha");
  });

  it("refuses a set larger than half the tmpfs before writing, naming the setting to raise", async () => {
    await writeVolumeFiles(dir, [file("a", "alpha")]);
    const big = [file("a", "x".repeat(5000)), file("b", "y")];
    // 5000 bytes take two pages and "b" one: 12 KiB, more than half of 20 KiB.
    await expect(writeVolumeFiles(dir, big, { capacityBytes: 20 * 1024, capacitySetting: "--tmpfs-size (now 20Ki)" })).rejects.toThrow(
      "the 2 files take 12 KiB on tmpfs, more than half of the volume's 20 KiB (a rotation writes the new set beside the old one); raise --tmpfs-size (now 20Ki) to at least 24 KiB",
    );
    expect(await readFile(join(dir, "a"), "utf8")).toBe("alpha");
    expect(await writeVolumeFiles(dir, big, { capacityBytes: 24 * 1024 })).toBe(true);
  });

  it("counts whole pages, and a page for a long top-level symlink", () => {
    expect(tmpfsFootprint([file("a", "")])).toBe(0);
    expect(tmpfsFootprint([file("a", "x")])).toBe(4096);
    expect(tmpfsFootprint([file("a", "x".repeat(4097))])).toBe(8192);
    expect(tmpfsFootprint([file("n".repeat(200), "x")])).toBe(8192);
  });

  it("reads back the visible files", async () => {
    await writeVolumeFiles(dir, [file("a", "alpha"), file("x/y/z", "deep", 0o400)]);
    const files = await readVolumeFiles(dir);
    expect([...files.keys()].sort()).toEqual(["a", "x/y/z"]);
    expect(files.get("x/y/z")!.contents.toString()).toBe("deep");
    expect(files.get("x/y/z")!.mode).toBe(0o400);
  });

  describe("with a group (the pod's fsGroup)", () => {
    const GID = 2345;

    /** Owner, group and mode of everything under dir (symlinks themselves, not followed). */
    async function ownership(): Promise<Record<string, string>> {
      const out: Record<string, string> = {};
      const walk = async (rel: string) => {
        for (const name of await readdir(join(dir, rel))) {
          const path = rel ? `${rel}/${name}` : name;
          const st = await lstat(join(dir, path));
          out[path] = `${st.uid}:${st.gid} ${st.isSymbolicLink() ? "link" : (st.mode & 0o7777).toString(8)}`;
          if (st.isDirectory()) await walk(path);
        }
      };
      const root = await stat(dir);
      out["."] = `${root.uid}:${root.gid} ${(root.mode & 0o7777).toString(8)}`;
      await walk("");
      return out;
    }

    it("makes every file root:<gid> with group read added, and the root and data directories root:<gid> 2750", async () => {
      expect(await writeVolumeFiles(dir, [file("a", "alpha", 0o400), file("sub/deep/b", "bravo", 0o600), file("c", "charlie", 0o644)], { group: GID })).toBe(true);
      const data = await readlink(join(dir, "..data"));
      expect(await ownership()).toEqual({
        ".": `0:${GID} 2750`,
        "..data": `0:${GID} link`,
        a: `0:${GID} link`,
        sub: `0:${GID} link`,
        c: `0:${GID} link`,
        [data]: `0:${GID} 2750`,
        [`${data}/a`]: `0:${GID} 440`,
        [`${data}/c`]: `0:${GID} 644`,
        [`${data}/sub`]: `0:${GID} 2750`,
        [`${data}/sub/deep`]: `0:${GID} 2750`,
        [`${data}/sub/deep/b`]: `0:${GID} 640`,
      });
      expect(volumeGroup(dir)).toBe(GID);
      // the same set with the same group is no change; the group alone is one
      expect(await writeVolumeFiles(dir, [file("a", "alpha", 0o400), file("sub/deep/b", "bravo", 0o600), file("c", "charlie", 0o644)], { group: GID })).toBe(false);
      expect(await writeVolumeFiles(dir, [file("a", "alpha", 0o400), file("sub/deep/b", "bravo", 0o600), file("c", "charlie", 0o644)], { group: GID + 1 })).toBe(true);
      expect((await readVolumeFiles(dir)).get("a")).toMatchObject({ mode: 0o440, gid: GID + 1 });
      expect((await stat(dir)).gid).toBe(GID + 1);
    });

    it("without a group, writes exactly what it wrote before (no chown), and takes a group away again", async () => {
      await writeVolumeFiles(dir, [file("a", "alpha", 0o400)]);
      const plain = await ownership();
      expect(Object.values(plain).every((o) => o.startsWith("0:0 "))).toBe(true);
      expect(plain["."]).toBe("0:0 700"); // mkdtemp's directory: not touched
      expect(volumeGroup(dir)).toBeUndefined();

      await writeVolumeFiles(dir, [file("a", "alpha", 0o400)], { group: GID });
      expect((await readVolumeFiles(dir)).get("a")).toMatchObject({ mode: 0o440, gid: GID });
      expect(await writeVolumeFiles(dir, [file("a", "alpha", 0o400)])).toBe(true);
      const data = await readlink(join(dir, "..data"));
      expect(await ownership()).toEqual({ ".": "0:0 755", "..data": "0:0 link", a: "0:0 link", [data]: "0:0 755", [`${data}/a`]: "0:0 400" });
    });

    it("sets owner and mode of every file before the swap: a swap that cannot happen leaves them as readers would see them", async () => {
      await writeVolumeFiles(dir, [file("a", "alpha", 0o400)], { group: GID });
      const old = await readlink(join(dir, "..data"));
      // a directory where the writer makes its temporary link: the swap fails
      await mkdir(join(dir, "..data_tmp", "x"), { recursive: true });
      await expect(writeVolumeFiles(dir, [file("a", "alpha-2", 0o400), file("d/b", "bravo", 0o600)], { group: GID })).rejects.toThrow();
      expect(await readlink(join(dir, "..data"))).toBe(old);
      const pending = (await readdir(dir)).find((e) => /^\.\.\d{4}_/.test(e) && e !== old)!;
      expect(pending).toBeDefined();
      const seen = await ownership();
      expect(seen[pending]).toBe(`0:${GID} 2750`);
      expect(seen[`${pending}/a`]).toBe(`0:${GID} 440`);
      expect(seen[`${pending}/d`]).toBe(`0:${GID} 2750`);
      expect(seen[`${pending}/d/b`]).toBe(`0:${GID} 640`);
    });
  });
});
