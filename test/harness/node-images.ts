// Container images for the node tier without a registry or Docker: a
// single-layer docker-archive tar (the format `docker save` writes) of a
// directory, written with tar and sha256, which `ctr images import` accepts.
// The sandbox image is our static pause program; the test image is Debian's
// busybox-static.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The sandbox image kubelet's containerd runs for every pod (its default sandbox_image). */
export const PAUSE_IMAGE = "registry.k8s.io/pause:3.10";
/** Test pods' image: busybox with its applets (sh, cat, sleep, printenv, kill, ...). */
export const BUSYBOX_IMAGE = "sscsi.local/busybox:test";
/** Where Debian's busybox-static installs the static binary. */
export const BUSYBOX_STATIC = "/bin/busybox";

export interface ImageSpec {
  /** Full reference, e.g. registry.k8s.io/pause:3.10. */
  name: string;
  /** The image's file system. */
  rootDir: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Writes a docker-archive of `spec` to `archivePath` and returns the path. */
export async function writeImageArchive(spec: ImageSpec, archivePath: string): Promise<string> {
  const work = await mkdtemp(`${archivePath}.build-`);
  try {
    const layerTmp = join(work, "layer.tar");
    // Reproducible and owned by root, whoever builds it.
    await run("tar", ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "-C", spec.rootDir, "-cf", layerTmp, "."]);
    const diffId = await sha256File(layerTmp);
    const config = {
      architecture: "amd64",
      os: "linux",
      created: "1970-01-01T00:00:00Z",
      config: {
        Env: spec.env ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
        ...(spec.cmd ? { Cmd: spec.cmd } : {}),
      },
      rootfs: { type: "layers", diff_ids: [`sha256:${diffId}`] },
      history: [{ created: "1970-01-01T00:00:00Z", created_by: "test/harness/node-images.ts" }],
    };
    const configJson = JSON.stringify(config);
    const configId = createHash("sha256").update(configJson).digest("hex");
    const out = join(work, "archive");
    await mkdir(join(out, diffId), { recursive: true });
    await copyFile(layerTmp, join(out, diffId, "layer.tar"));
    await writeFile(join(out, `${configId}.json`), configJson);
    await writeFile(join(out, "manifest.json"), JSON.stringify([{ Config: `${configId}.json`, RepoTags: [spec.name], Layers: [`${diffId}/layer.tar`] }]));
    await run("tar", ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "-C", out, "-cf", archivePath, "."]);
    return archivePath;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The sandbox image: /pause (test/harness/pause, built by install-tools.sh) as the entrypoint. */
export async function writePauseImage(pauseBinary: string, archivePath: string): Promise<string> {
  const root = await mkdtemp(`${archivePath}.root-`);
  try {
    await copyFile(pauseBinary, join(root, "pause"));
    await chmod(join(root, "pause"), 0o755);
    return await writeImageArchive({ name: PAUSE_IMAGE, rootDir: root, entrypoint: ["/pause"] }, archivePath);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** A busybox image: the static binary at /bin/busybox and a link for each applet. */
export async function writeBusyboxImage(archivePath: string): Promise<string> {
  const root = await mkdtemp(`${archivePath}.root-`);
  try {
    for (const dir of ["bin", "tmp", "etc", "mnt", "proc", "sys", "dev"]) await mkdir(join(root, dir));
    await chmod(join(root, "tmp"), 0o1777);
    await copyFile(BUSYBOX_STATIC, join(root, "bin", "busybox"));
    await chmod(join(root, "bin", "busybox"), 0o755);
    const { stdout } = await run(BUSYBOX_STATIC, ["--list"]);
    for (const applet of stdout.split("\n").map((a) => a.trim())) {
      if (applet && applet !== "busybox" && !applet.includes("/")) await symlink("busybox", join(root, "bin", applet));
    }
    await writeFile(join(root, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
    await writeFile(join(root, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n");
    return await writeImageArchive({ name: BUSYBOX_IMAGE, rootDir: root, cmd: ["/bin/sh"] }, archivePath);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** True when the ELF file has no program interpreter (statically linked). */
export async function isStaticElf(path: string): Promise<boolean> {
  const buf = await readFile(path);
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2) return false; // 64-bit ELF only
  const phoff = Number(buf.readBigUInt64LE(0x20));
  const phentsize = buf.readUInt16LE(0x36);
  const phnum = buf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (buf.readUInt32LE(phoff + i * phentsize) === 3) return false; // PT_INTERP
  }
  return true;
}
