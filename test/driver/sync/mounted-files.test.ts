// The files the secretObjects syncer reads from a mounted volume.
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeVolumeFiles } from "../../../src/driver/volume/atomic-writer.ts";
import { readMountedFiles } from "../../../src/driver/sync/mounted-files.ts";

describe("readMountedFiles", () => {
  let base: string;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "mounted-"));
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it("reads the atomic-writer layout by relative path", async () => {
    const target = join(base, "atomic");
    await mkdir(target);
    const binary = randomBytes(64);
    await writeVolumeFiles(target, [
      { path: "alias", mode: 0o644, contents: Buffer.from("one") },
      { path: "multi/0", mode: 0o600, contents: binary },
    ]);
    const read = await readMountedFiles(target);
    expect([...read.keys()].sort()).toEqual(["alias", "multi/0"]);
    expect(read.get("alias")!.contents.toString()).toBe("one");
    expect(read.get("multi/0")!.contents.equals(binary)).toBe(true);
  });

  it("reads a plain tree, skipping top-level .. entries and following top-level symlinks", async () => {
    const target = join(base, "plain");
    await mkdir(join(target, "..hidden"), { recursive: true });
    await mkdir(join(target, "dir"));
    await writeFile(join(target, "..hidden", "x"), "hidden");
    await writeFile(join(target, "a"), "A");
    await writeFile(join(target, "dir", "b"), "B");
    await writeFile(join(base, "outside"), "L");
    await symlink(join(base, "outside"), join(target, "link"));
    const read = await readMountedFiles(target);
    expect(Object.fromEntries([...read].map(([k, v]) => [k, v.contents.toString()]))).toEqual({ a: "A", "dir/b": "B", link: "L" });
  });

  it("fails for a missing target", async () => {
    await expect(readMountedFiles(join(base, "absent"))).rejects.toThrow(/ENOENT/);
  });
});
