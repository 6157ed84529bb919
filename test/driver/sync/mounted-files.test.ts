// The files the secretObjects syncer reads from a mounted volume: only what
// the driver wrote (the atomic-writer layout) on the very tmpfs it recorded,
// on real tmpfs mounts. A plain tree, a symlink to a file of the node, or a
// volume whose tmpfs is not the recorded one is never read.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readlink, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DriverContext } from "../../../src/driver/context.ts";
import { parseDriverOptions } from "../../../src/driver/options.ts";
import { newVolumeRecord, type MountedVolume } from "../../../src/driver/volume/mounted-volumes.ts";
import { writeVolumeFiles } from "../../../src/driver/volume/atomic-writer.ts";
import type { VolumeMount } from "../../../src/driver/volume/target-state.ts";
import { readMountedFiles } from "../../../src/driver/sync/mounted-files.ts";
import { removeTestTree, requireRoot } from "../../support/driver-process.ts";
import { csiTarget, mountTmpfsVolume } from "../../support/tmpfs-volume.ts";

describe("readMountedFiles", () => {
  let base: string;
  let ctx: DriverContext;
  let n = 0;

  const volumeAt = (targetPath: string, mount: VolumeMount): MountedVolume =>
    newVolumeRecord({
      targetPath,
      volumeId: `v-${n}`,
      mount,
      pod: { name: "p", namespace: "ns", uid: "uid-1" },
      spcName: "spc",
      provider: "fake",
      volumeContext: {},
      secrets: {},
      objectVersions: [],
    });

  async function newVolume(): Promise<{ target: string; mount: VolumeMount }> {
    const target = await csiTarget(base, "uid-1", `v-${++n}`);
    return { target, mount: await mountTmpfsVolume(base, target) };
  }

  beforeAll(async () => {
    requireRoot();
    base = await mkdtemp(join(tmpdir(), "mounted-"));
    ctx = { options: parseDriverOptions(["--nodeid=n", `--kubelet-dir=${base}`]) } as unknown as DriverContext;
  });
  afterAll(async () => {
    await removeTestTree(base);
  });

  it("reads the atomic-writer layout by relative path", async () => {
    const { target, mount } = await newVolume();
    const binary = randomBytes(64);
    await writeVolumeFiles(target, [
      { path: "alias", mode: 0o644, contents: Buffer.from("one") },
      { path: "multi/0", mode: 0o600, contents: binary },
    ]);
    const read = await readMountedFiles(ctx, volumeAt(target, mount));
    expect([...read.keys()].sort()).toEqual(["alias", "multi/0"]);
    expect(read.get("alias")!.contents.toString()).toBe("one");
    expect(read.get("multi/0")!.contents.equals(binary)).toBe(true);
  });

  it("never reads a plain tree, and never follows a symlink to a file of the node", async () => {
    const { target, mount } = await newVolume();
    await mkdir(join(target, "dir"));
    await writeFile(join(target, "a"), "A");
    await writeFile(join(target, "dir", "b"), "B");
    await writeFile(join(base, "outside"), "node file");
    await symlink(join(base, "outside"), join(target, "link"));
    expect(await readMountedFiles(ctx, volumeAt(target, mount))).toEqual(new Map());
  });

  it("skips a symlink inside the data directory instead of following it", async () => {
    const { target, mount } = await newVolume();
    await writeVolumeFiles(target, [{ path: "a", mode: 0o644, contents: Buffer.from("A") }]);
    await writeFile(join(base, "node-secret"), "never copied");
    await symlink(join(base, "node-secret"), join(target, await readlink(join(target, "..data")), "stolen"));
    const read = await readMountedFiles(ctx, volumeAt(target, mount));
    expect([...read.keys()]).toEqual(["a"]);
  });

  it("reads nothing when the target shows another tmpfs than the recorded one, or a plain directory", async () => {
    const { target, mount } = await newVolume();
    await writeVolumeFiles(target, [{ path: "a", mode: 0o644, contents: Buffer.from("A") }]);
    execFileSync("umount", [target]);
    // Kubelet's layout on the node's disk: the atomic writer's files, but not on the driver's tmpfs.
    await writeVolumeFiles(target, [{ path: "a", mode: 0o644, contents: Buffer.from("on disk") }]);
    await expect(readMountedFiles(ctx, volumeAt(target, mount))).rejects.toThrow(`the volume's tmpfs at ${target} is no longer mounted; nothing was read`);
    const other = await mountTmpfsVolume(base, target, "tmpfs");
    await writeVolumeFiles(target, [{ path: "a", mode: 0o644, contents: Buffer.from("someone else's") }]);
    expect(other.birthtimeNs).not.toBe(mount.birthtimeNs);
    await expect(readMountedFiles(ctx, volumeAt(target, mount))).rejects.toThrow(/is no longer mounted|on top of the volume's tmpfs/);
  });

  it("fails for a missing target", async () => {
    const target = await csiTarget(base, "uid-1", `v-${++n}`);
    await expect(readMountedFiles(ctx, volumeAt(target, { id: 1, dev: "0:1", source: "x", birthtimeNs: 1n }))).rejects.toThrow(/is gone/);
  });
});
