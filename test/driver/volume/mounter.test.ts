// The driver's ways to mount and unmount its tmpfs: the system calls through
// the Perl helper (the default where it runs: the mount API, or mount(2) on a
// kernel without it) and mount(8) / umount(8) through the shell. All must
// leave the very same mount on the node, act on the directory an open
// descriptor names, and report failures with the kernel's reason. Real tmpfs
// mounts: run as root.
import { closeSync, constants, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mountsAt, TmpfsMounter } from "../../../src/driver/volume/mounter.ts";
import { identityOf } from "../../../src/driver/volume/target-state.ts";
import { MountSyscalls, mountSyscallsAvailable, SyscallError } from "../../../src/driver/volume/mount-syscalls.ts";
import { removeTestTree, requireRoot } from "../../support/driver-process.ts";

const SOURCE = "secrets-store.csi.k8s.io";

/** The mountinfo line of the top mount at path, without the fields that differ between two mounts (ids, device, path). */
function mountLine(path: string): string {
  const line = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.split(" ")[4] === path)
    .at(-1);
  if (!line) throw new Error(`nothing mounted at ${path}`);
  const fields = line.split(" ");
  return [fields[3], ...fields.slice(5)].join(" ");
}

function openDir(path: string): { fd: number; close(): void } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  return { fd, close: () => closeSync(fd) };
}

describe("tmpfs mounter", () => {
  let base: string;
  const mounters: TmpfsMounter[] = [];
  /** A syscall number no kernel has: the helper's fsopen fails with ENOSYS, as on a kernel before Linux 5.2. */
  const WITHOUT_MOUNT_API = { fsopen: 100_000 };
  const mounter = (via: "syscalls" | "commands" | "syscalls without the mount API") => {
    const m = via === "syscalls without the mount API" ? new TmpfsMounter({ via: "syscalls", syscallNumbers: WITHOUT_MOUNT_API }) : new TmpfsMounter({ via });
    mounters.push(m);
    return m;
  };

  beforeAll(async () => {
    requireRoot();
    base = await mkdtemp(join(tmpdir(), "mounter-"));
  });
  afterAll(async () => {
    for (const m of mounters) m.close();
    await removeTestTree(base);
  });

  it("uses the system calls on this machine (x64 or arm64 with /usr/bin/perl)", () => {
    expect(mountSyscallsAvailable()).toBe(true);
    expect(mountSyscallsAvailable("mips")).toBe(false);
  });

  it("mounts the same tmpfs every way, through an open descriptor, and unmounts it lazily", async () => {
    const lines: string[] = [];
    for (const via of ["syscalls", "commands", "syscalls without the mount API"] as const) {
      const m = mounter(via);
      const dir = join(base, via.replaceAll(" ", "-"));
      mkdirSync(dir);
      const held = openDir(dir);
      let made;
      try {
        made = await m.mountTmpfs(held, SOURCE, 1024 * 1024);
      } finally {
        held.close();
      }
      const [mount] = await mountsAt(dir);
      expect(mount, via).toMatchObject({ fsType: "tmpfs", source: SOURCE });
      // Only the mount API says which mount it made: the one the target opens onto.
      const opened = openDir(dir);
      try {
        const seen = identityOf(opened);
        expect(made, via).toEqual(via === "syscalls" ? { id: seen.id, dev: seen.dev } : undefined);
        expect(seen.id).toBe(mount!.id);
        expect(seen.dev).toBe(mount!.dev);
      } finally {
        opened.close();
      }
      lines.push(mountLine(dir));
      // Busy (a file held open inside it): a lazy unmount still detaches it.
      writeFileSync(join(dir, "f"), "x");
      const busy = openSync(join(dir, "f"), "r");
      const root = openDir(dir);
      try {
        await m.unmount(root);
      } finally {
        root.close();
        closeSync(busy);
      }
      expect(await mountsAt(dir), via).toEqual([]);
    }
    expect(lines[0]).toContain("nosuid,nodev");
    expect(lines[0]).toContain(`tmpfs ${SOURCE} rw,size=1024k,mode=755`);
    expect(lines[1]).toBe(lines[0]);
    expect(lines[2]).toBe(lines[0]);
  });

  it("a refused call of the mount API (here move_mount, the last) leaves nothing attached, and mount(2) makes the tmpfs from then on", async () => {
    const m = new TmpfsMounter({ via: "syscalls", syscallNumbers: { move_mount: 100_000 } });
    mounters.push(m);
    for (const name of ["refused-1", "refused-2"]) {
      const dir = join(base, name);
      mkdirSync(dir);
      const held = openDir(dir);
      try {
        expect(await m.mountTmpfs(held, SOURCE, 65536)).toBeUndefined();
      } finally {
        held.close();
      }
      expect(await mountsAt(dir)).toMatchObject([{ fsType: "tmpfs", source: SOURCE }]);
      const root = openDir(dir);
      await m.unmount(root);
      root.close();
      expect(await mountsAt(dir)).toEqual([]);
    }
  });

  it("a mount made either way reaches the peers of a shared mount, as kubelet's pods directory needs", () => {
    // In a mount namespace of its own: a shared mount with a bind mount as its
    // peer; the driver's tmpfs mounted under one must show under the other.
    const script = join(base, "propagation.ts");
    writeFileSync(
      script,
      [
        `import { closeSync, constants, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";`,
        `import { TmpfsMounter } from ${JSON.stringify(join(import.meta.dirname, "../../../src/driver/volume/mounter.ts"))};`,
        `const [dir, via] = process.argv.slice(2);`,
        // The helper does not keep a process alive (the driver's servers do).
        `const alive = setInterval(() => {}, 1000);`,
        `const m = new TmpfsMounter({ via: "syscalls", syscallNumbers: via === "mount(2)" ? WITHOUT_MOUNT_API : {} });`,
        `mkdirSync(dir + "/pods/volume");`,
        `const fd = openSync(dir + "/pods/volume", constants.O_RDONLY | constants.O_DIRECTORY);`,
        `await m.mountTmpfs({ fd }, ${JSON.stringify(SOURCE)}, 65536);`,
        `closeSync(fd);`,
        `m.close();`,
        `clearInterval(alive);`,
        `writeFileSync(dir + "/pods/volume/seen", "x");`,
        `console.log(readFileSync(dir + "/peer/volume/seen", "utf8"));`,
      ].join("\n").replace("WITHOUT_MOUNT_API", JSON.stringify(WITHOUT_MOUNT_API)),
    );
    for (const via of ["the mount API", "mount(2)"]) {
      const dir = join(base, `shared-${via.replace(/\W/g, "")}`);
      mkdirSync(dir);
      const shell = [
        `mount -t tmpfs shared ${dir}`,
        `mkdir ${dir}/pods ${dir}/peer`,
        `mount --bind ${dir}/pods ${dir}/pods`,
        `mount --make-shared ${dir}/pods`,
        `mount --bind ${dir}/pods ${dir}/peer`,
        `exec "$0" "$1" "$2" "$3"`,
      ].join(" && ");
      const run = spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", shell, process.execPath, script, dir, via], { encoding: "utf8" });
      expect(run.stderr, via).toBe("");
      expect(run.stdout.trim(), via).toBe("x");
    }
    // Nothing of it is left in this namespace.
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(`${base}/shared`);
  });

  it("reports the kernel's reason when a call fails, and keeps serving", async () => {
    const dir = join(base, "plain");
    mkdirSync(dir);
    const m = mounter("syscalls");
    const held = openDir(dir);
    try {
      const err = await m.unmount(held).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SyscallError);
      expect((err as SyscallError).code).toBe("EINVAL");
      expect((err as Error).message).toMatch(/^umount2 of \/proc\/\d+\/fd\/\d+ failed: EINVAL \(Invalid argument\)$/);
      await m.mountTmpfs(held, SOURCE, 65536);
      expect(await mountsAt(dir)).toHaveLength(1);
      await m.unmount(openDir(dir));
      expect(await mountsAt(dir)).toEqual([]);
    } finally {
      held.close();
    }
  });

  it("refuses an argument with a line break or NUL before it reaches the helper", async () => {
    const calls = new MountSyscalls();
    try {
      await expect(calls.umount2(`${base}/a\nb`, 2)).rejects.toThrow(/line break or NUL/);
      await expect(calls.mount(SOURCE, `${base}/a\0b`, "tmpfs", 0, "")).rejects.toThrow(/line break or NUL/);
    } finally {
      calls.close();
    }
  });

  it("a helper killed under it fails the calls sent to it, without ending the driver, and the next call starts a new one", async () => {
    const calls = new MountSyscalls();
    const dir = join(base, "killed");
    mkdirSync(dir);
    try {
      calls.start();
      const pid = (calls as unknown as { helper: { process: { pid: number } } }).helper.process.pid;
      process.kill(-pid, "SIGKILL");
      // Sent to the dead helper: its write fails or its exit answers, a rejection either way.
      await expect(calls.umount2(dir, 2)).rejects.toThrow(/the mount helper/);
      await calls.mount(SOURCE, dir, "tmpfs", 0, "size=65536");
      expect(await mountsAt(dir)).toHaveLength(1);
      await calls.umount2(dir, 2);
      expect(await mountsAt(dir)).toEqual([]);
    } finally {
      calls.close();
    }
  });

  it("starts a new helper after close()", async () => {
    const calls = new MountSyscalls();
    const dir = join(base, "again");
    mkdirSync(dir);
    try {
      await expect(calls.umount2(dir, 0)).rejects.toThrow(/EINVAL/);
      calls.close();
      await calls.mount(SOURCE, dir, "tmpfs", 0, "size=65536");
      expect(await mountsAt(dir)).toHaveLength(1);
      await calls.umount2(dir, 2);
      expect(await mountsAt(dir)).toEqual([]);
    } finally {
      calls.close();
    }
  });
});
