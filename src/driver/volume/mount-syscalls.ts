// mount(2) and umount2(2) for the driver, made by one long-lived Perl process
// (perl-base is an essential package of Debian, so it is in the image, as
// /bin/sh and mount(8) are). Node cannot make these system calls itself, and
// mount(8) and umount(8) cost a fork, an exec and libmount reading the whole
// mount table: about 2-3 ms of CPU each on the benchmark machine, with 250
// volumes mounted, against well under 0.1 ms for the system call. The calls
// are the ones mount(8) makes for the same options (the mount table shows
// the same line).
//
// A new tmpfs is made with the kernel's mount API (fsopen, fsconfig, fsmount,
// move_mount; Linux 5.2): the helper holds the new mount before it attaches
// it, so it can say which mount it made (its id and device, from statx). The
// driver then knows the tmpfs it finds at the target is that very mount
// without reading the node's whole mount table, which grows with every pod
// (about 2 µs of CPU a line: 1.5 ms a publish on a node with 1,000 mounts).
// A kernel without that API (or a filter refusing it) gets mount(2), and the
// driver reads the table.
//
// Commands run one at a time, in order. A line carries the call's arguments
// separated by NUL; the answer is "0" (with what the call found, after a
// space), or the errno and its text.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import { constants } from "node:os";

const COMMAND_TIMEOUT_MS = 30_000;

/** System call numbers the helper uses. */
export interface SyscallNumbers {
  mount: number;
  umount2: number;
  close: number;
  statx: number;
  fsopen: number;
  fsconfig: number;
  fsmount: number;
  move_mount: number;
}

/**
 * By Node's name for the architecture; elsewhere the driver runs mount(8) and
 * umount(8). The calls added since Linux 5.1 have one number everywhere.
 */
const SYSCALLS: Readonly<Record<string, SyscallNumbers>> = {
  x64: { mount: 165, umount2: 166, close: 3, statx: 332, fsopen: 430, fsconfig: 431, fsmount: 432, move_mount: 429 },
  // The kernel's generic table (asm-generic/unistd.h).
  arm64: { mount: 40, umount2: 39, close: 57, statx: 291, fsopen: 430, fsconfig: 431, fsmount: 432, move_mount: 429 },
};

/** The order the numbers are handed to the helper in. */
const NUMBER_ORDER = ["mount", "umount2", "close", "statx", "fsopen", "fsconfig", "fsmount", "move_mount"] as const;

export const PERL = "/usr/bin/perl";

/** Whether this node can use the system calls: a known architecture and Perl at its Debian path. */
export function mountSyscallsAvailable(arch: string = process.arch): boolean {
  return SYSCALLS[arch] !== undefined && existsSync(PERL);
}

// @ARGV: the system call numbers, in NUMBER_ORDER. Numeric arguments are
// passed to the kernel as integers, strings as pointers to their bytes (so
// no string argument may ever be used as a number, which would make it one,
// and each is a variable: Perl refuses a literal there).
//
// "tmpfs": fsopen, fsconfig for the source and each option, the superblock
// created, fsmount with the mount attributes, statx of the new mount (its id
// and device), then move_mount onto the target (following the target's
// /proc/<pid>/fd link to exactly the directory the driver holds, as mount(2)
// does). An error names the call that failed ("fsopen: ..." on a kernel
// without it); MountSyscalls.tmpfs then decides whether to use mount(2).
const SCRIPT = `
use strict;
$| = 1;
my ($MOUNT, $UMOUNT2, $CLOSE, $STATX, $FSOPEN, $FSCONFIG, $FSMOUNT, $MOVE_MOUNT) = map { $_ + 0 } @ARGV;
my ($FSOPEN_CLOEXEC, $FSCONFIG_SET_STRING, $FSCONFIG_CMD_CREATE, $FSMOUNT_CLOEXEC) = (1, 1, 6, 1);
my ($AT_FDCWD, $AT_EMPTY_PATH, $STATX_MNT_ID) = (-100, 0x1000, 0x1000);
my ($MOVE_MOUNT_F_EMPTY_PATH, $MOVE_MOUNT_T_SYMLINKS) = (0x4, 0x10);
my ($err, $where);
sub failed { ($err, $where) = ($! + 0, $_[0]); return -1; }
sub tmpfs {
  my ($source, $target, $attrs, @options) = @_;
  my ($type, $source_key, $empty) = ("tmpfs", "source", "");
  my $fs = syscall($FSOPEN, $type, $FSOPEN_CLOEXEC);
  return failed("fsopen") if $fs < 0;
  my $rc = syscall($FSCONFIG, $fs, $FSCONFIG_SET_STRING, $source_key, $source, 0) < 0 ? failed("fsconfig source") : 0;
  for my $option (@options) {
    last if $rc < 0;
    my ($key, $value) = split /=/, $option, 2;
    $rc = failed("fsconfig $key") if syscall($FSCONFIG, $fs, $FSCONFIG_SET_STRING, $key, $value, 0) < 0;
  }
  $rc = failed("fsconfig create") if $rc == 0 && syscall($FSCONFIG, $fs, $FSCONFIG_CMD_CREATE, 0, 0, 0) < 0;
  my $mnt = $rc == 0 ? syscall($FSMOUNT, $fs, $FSMOUNT_CLOEXEC, $attrs + 0) : -1;
  $rc = failed("fsmount") if $rc == 0 && $mnt < 0;
  syscall($CLOSE, $fs);
  return $rc if $rc < 0;
  my $stx = "\\0" x 256;
  my $found = "";
  if (syscall($STATX, $mnt, $empty, $AT_EMPTY_PATH, $STATX_MNT_ID, $stx) == 0) {
    my ($mask) = unpack("L<", $stx);
    my ($major, $minor, $id) = unpack("x136 L< L< Q<", $stx);
    $found = "$id $major:$minor" if $mask & $STATX_MNT_ID;
  }
  $rc = syscall($MOVE_MOUNT, $mnt, $empty, $AT_FDCWD, $target, $MOVE_MOUNT_F_EMPTY_PATH | $MOVE_MOUNT_T_SYMLINKS) < 0 ? failed("move_mount") : 0;
  syscall($CLOSE, $mnt);
  return $rc < 0 ? $rc : $found;
}
while (my $line = <STDIN>) {
  chomp $line;
  my ($call, @args) = split /\\0/, $line, -1;
  my $rc = -1;
  ($err, $where) = (0, "");
  if ($call eq "mount" && @args == 5) {
    my ($source, $target, $fstype, $flags, $data) = @args;
    $rc = syscall($MOUNT, $source, $target, $fstype, $flags + 0, $data);
    failed("") if $rc < 0;
  } elsif ($call eq "umount2" && @args == 2) {
    my ($target, $flags) = @args;
    $rc = syscall($UMOUNT2, $target, $flags + 0);
    failed("") if $rc < 0;
  } elsif ($call eq "tmpfs" && @args >= 3) {
    $rc = tmpfs(@args);
  } else {
    ($err, $where) = (22, "");
  }
  if ($rc ne "-1") {
    print $rc eq "0" || $rc eq "" ? "0\\n" : "0 $rc\\n";
  } else {
    $! = $err;
    print $where eq "" ? sprintf("%d %s\\n", $err, $!) : sprintf("%d %s: %s\\n", $err, $where, $!);
  }
}
`;

/** A failed system call: its errno code (EPERM, EINVAL, ...), the kernel's text for it, and which call of several failed. */
export class SyscallError extends Error {
  readonly code: string;
  /** The system call that failed, when a command makes several ("fsopen", "fsconfig size", "move_mount"). */
  readonly step: string | undefined;
  constructor(call: string, errno: number, text: string) {
    const code = errnoName(errno);
    super(`${call} failed: ${code} (${text})`);
    this.code = code;
    this.step = /^([a-z_ ]+): /.exec(text)?.[1];
  }
}

/** The mount a "tmpfs" command made: its id and device ("major:minor"), as /proc/self/fdinfo and stat show them. */
export interface NewMount {
  id: number;
  dev: string;
}

function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(constants.errno)) if (value === errno) return name;
  return `errno ${errno}`;
}

interface Pending {
  call: string;
  /** Called with what the call found ("" when nothing). */
  resolve: (found: string) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** One helper process and the calls it has been sent, answered in order. */
interface Helper {
  process: ChildProcessWithoutNullStreams;
  pending: Pending[];
  output: string;
}

function field(arg: string): string {
  if (/[\n\0]/.test(arg)) throw new Error(`refusing to pass ${JSON.stringify(arg)} to a system call: it contains a line break or NUL`);
  return arg;
}

export class MountSyscalls {
  private readonly numbers: SyscallNumbers;
  private helper: Helper | undefined;
  /** Whether this kernel has the mount API (fsopen and the rest); unknown until the first tmpfs. */
  private mountApi: boolean | undefined;

  /** `numbers` replaces the architecture's (a test's kernel without the mount API). */
  constructor(arch: string = process.arch, numbers: Partial<SyscallNumbers> = {}) {
    const known = SYSCALLS[arch];
    if (!known) throw new Error(`no mount system call numbers for architecture ${arch}`);
    this.numbers = { ...known, ...numbers };
  }

  /** mount(2): source, target, file system type, MS_* flags, file system options. */
  async mount(source: string, target: string, fstype: string, flags: number, data: string): Promise<void> {
    await this.send(`mount ${fstype} at ${target}`, ["mount", source, target, fstype, String(flags), data]);
  }

  /** umount2(2) with MNT_* flags. */
  async umount2(target: string, flags: number): Promise<void> {
    await this.send(`umount2 of ${target}`, ["umount2", target, String(flags)]);
  }

  /**
   * A new tmpfs at target, through the mount API where the kernel has it
   * (`attributes`: MOUNT_ATTR_* flags; `options`: "key=value" each), and
   * which mount it is; else through mount(2) (`flags`: the same as MS_*
   * flags), and undefined: the caller must find it in the mount table.
   */
  async tmpfs(source: string, target: string, mount: { attributes: number; flags: number; options: string[] }): Promise<NewMount | undefined> {
    const call = `mount tmpfs at ${target}`;
    if (this.mountApi !== false) {
      try {
        const found = await this.send(call, ["tmpfs", source, target, String(mount.attributes), ...mount.options]);
        this.mountApi = true;
        return parseNewMount(found);
      } catch (err) {
        // A kernel without the mount API, or a filter (seccomp, an LSM) that
        // refuses one of its calls, gets mount(2) from then on: nothing was
        // attached, since move_mount is the last call. Any other failure, or
        // one after the API has worked here, is the mount's own.
        if (!(err instanceof SyscallError && err.step !== undefined && API_REFUSED.has(err.code)) || this.mountApi) throw err;
        this.mountApi = false;
      }
    }
    await this.send(call, ["mount", source, target, "tmpfs", String(mount.flags), mount.options.join(",")]);
    return undefined;
  }

  /** Starts the helper now, so that the first mount does not wait for it. */
  start(): void {
    this.helper ??= this.spawnHelper();
  }

  /** Ends the helper once it has answered what it was sent; the next call starts a new one. */
  close(): void {
    this.helper?.process.stdin.end();
    this.helper = undefined;
  }

  private send(call: string, args: string[]): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const line = `${args.map(field).join("\0")}\n`;
      const helper = this.helper ?? this.spawnHelper();
      const timer = setTimeout(() => {
        // Kill it; the next call starts a new helper.
        if (this.helper === helper) this.helper = undefined;
        if (helper.process.pid) process.kill(-helper.process.pid, "SIGKILL");
      }, COMMAND_TIMEOUT_MS);
      timer.unref();
      helper.pending.push({ call, resolve, reject, timer });
      helper.process.stdin.write(line);
    });
  }

  private spawnHelper(): Helper {
    const child = spawn(PERL, ["-e", SCRIPT, ...NUMBER_ORDER.map((name) => String(this.numbers[name]))], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" },
      detached: true,
    });
    const helper: Helper = { process: child, pending: [], output: "" };
    this.helper = helper;
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      helper.output += chunk;
      drain(helper);
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    const failAll = (why: string) => {
      if (this.helper === helper) this.helper = undefined;
      for (const p of helper.pending.splice(0)) {
        clearTimeout(p.timer);
        p.reject(new Error(`${p.call} failed: the mount helper (${PERL}) ${why}${stderr ? `: ${stderr.trim()}` : ""}`));
      }
    };
    child.once("error", (err) => failAll(`could not start (${err.message})`));
    child.once("exit", (code, signal) => failAll(`exited (${code ?? signal})`));
    // A helper killed before its exit is handled: the write fails (EPIPE), and must not end the driver.
    child.stdin.on("error", (err) => failAll(`stopped reading (${err.message})`));
    // The driver may exit with the helper still running; it ends with its stdin.
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as { unref?: () => void }).unref?.();
    return helper;
  }
}

/** Settles the calls whose answers have arrived. */
function drain(helper: Helper): void {
  for (let newline = helper.output.indexOf("\n"); newline >= 0; newline = helper.output.indexOf("\n")) {
    const answer = helper.output.slice(0, newline);
    helper.output = helper.output.slice(newline + 1);
    const p = helper.pending.shift();
    if (!p) continue;
    clearTimeout(p.timer);
    if (answer === "0" || answer.startsWith("0 ")) {
      p.resolve(answer.slice(2));
      continue;
    }
    const space = answer.indexOf(" ");
    p.reject(new SyscallError(p.call, Number(answer.slice(0, space)), answer.slice(space + 1)));
  }
}

/** How a kernel without a call of the mount API, or a filter refusing it, answers. */
const API_REFUSED = new Set(["ENOSYS", "EPERM", "EACCES"]);

/** "<id> <major>:<minor>" from the helper; undefined when statx could not say (the caller reads the mount table). */
function parseNewMount(found: string): NewMount | undefined {
  const match = /^(\d+) (\d+:\d+)$/.exec(found);
  return match ? { id: Number(match[1]), dev: match[2]! } : undefined;
}
