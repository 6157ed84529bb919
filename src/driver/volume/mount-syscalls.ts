// mount(2) and umount2(2) for the driver, made by one long-lived Perl process
// (perl-base is an essential package of Debian, so it is in the image, as
// /bin/sh and mount(8) are). Node cannot make these system calls itself, and
// mount(8) and umount(8) cost a fork, an exec and libmount reading the whole
// mount table: about 2-3 ms of CPU each on the benchmark machine, with 250
// volumes mounted, against well under 0.1 ms for the system call. The calls
// are the ones mount(8) makes for the same options (the mount table shows
// the same line).
//
// Commands run one at a time, in order. A line carries the call's arguments
// separated by NUL; the answer is "0", or the errno and its text.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import { constants } from "node:os";

const COMMAND_TIMEOUT_MS = 30_000;

/**
 * System call numbers of mount and umount2, by Node's name for the
 * architecture; elsewhere the driver runs mount(8) and umount(8).
 */
const SYSCALLS: Readonly<Record<string, { mount: number; umount2: number }>> = {
  x64: { mount: 165, umount2: 166 },
  // The kernel's generic table (asm-generic/unistd.h).
  arm64: { mount: 40, umount2: 39 },
};

export const PERL = "/usr/bin/perl";

/** Whether this node can use the system calls: a known architecture and Perl at its Debian path. */
export function mountSyscallsAvailable(arch: string = process.arch): boolean {
  return SYSCALLS[arch] !== undefined && existsSync(PERL);
}

// $ARGV[0], $ARGV[1]: the numbers of mount and umount2. Numeric arguments are
// passed to the kernel as integers, strings as pointers to their bytes.
const SCRIPT = `
use strict;
$| = 1;
my ($MOUNT, $UMOUNT2) = map { $_ + 0 } @ARGV;
while (my $line = <STDIN>) {
  chomp $line;
  my ($call, @args) = split /\\0/, $line, -1;
  my $rc = -1;
  if ($call eq "mount" && @args == 5) {
    my ($source, $target, $fstype, $flags, $data) = @args;
    $rc = syscall($MOUNT, $source, $target, $fstype, $flags + 0, $data);
  } elsif ($call eq "umount2" && @args == 2) {
    my ($target, $flags) = @args;
    $rc = syscall($UMOUNT2, $target, $flags + 0);
  } else {
    $! = 22;
  }
  print $rc == 0 ? "0\\n" : sprintf("%d %s\\n", $! + 0, $!);
}
`;

/** A failed system call: its errno code (EPERM, EINVAL, ...) and the kernel's text for it. */
export class SyscallError extends Error {
  readonly code: string;
  constructor(call: string, errno: number, text: string) {
    const code = errnoName(errno);
    super(`${call} failed: ${code} (${text})`);
    this.code = code;
  }
}

function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(constants.errno)) if (value === errno) return name;
  return `errno ${errno}`;
}

interface Pending {
  call: string;
  resolve: () => void;
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
  private readonly numbers: { mount: number; umount2: number };
  private helper: Helper | undefined;

  constructor(arch: string = process.arch) {
    const numbers = SYSCALLS[arch];
    if (!numbers) throw new Error(`no mount system call numbers for architecture ${arch}`);
    this.numbers = numbers;
  }

  /** mount(2): source, target, file system type, MS_* flags, file system options. */
  mount(source: string, target: string, fstype: string, flags: number, data: string): Promise<void> {
    return this.send(`mount ${fstype} at ${target}`, ["mount", source, target, fstype, String(flags), data]);
  }

  /** umount2(2) with MNT_* flags. */
  umount2(target: string, flags: number): Promise<void> {
    return this.send(`umount2 of ${target}`, ["umount2", target, String(flags)]);
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

  private send(call: string, args: string[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
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
    const child = spawn(PERL, ["-e", SCRIPT, String(this.numbers.mount), String(this.numbers.umount2)], {
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
    if (answer === "0") {
      p.resolve();
      continue;
    }
    const space = answer.indexOf(" ");
    p.reject(new SyscallError(p.call, Number(answer.slice(0, space)), answer.slice(space + 1)));
  }
}
