// Runs mount(8) and umount(8) for the driver through one long-lived /bin/sh.
// Forking the Node process itself costs milliseconds of blocked event loop per
// command (its page tables are copied), more than the rest of a publish; the
// shell forks each command from a process a fraction of the size. Commands run
// one at a time, in order, each under timeout(1).
//
// A directory the driver holds open is handed over as /proc/<driver pid>/fd/<n>,
// so the kernel resolves exactly that directory, not a path that may have
// changed since it was checked.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";

const COMMAND_TIMEOUT_MS = 30_000;
/** Ends a command's output; mount(8) and umount(8) never print it. */
const END = "\x1e";

// Reads one command per line, runs it (its own stdin closed, its messages on
// stdout), then prints END and the exit code on a line.
const LOOP = `while IFS= read -r line; do eval "$line" </dev/null 2>&1; printf '\\036%s\\n' "$?"; done`;

interface Pending {
  command: string;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** A path naming a directory this process holds open (see mountTmpfs). */
export const openDirectoryPath = (fd: number) => `/proc/${process.pid}/fd/${fd}`;

function quote(arg: string): string {
  if (/[\n\r\0]/.test(arg)) throw new Error(`refusing to pass ${JSON.stringify(arg)} to a command: it contains a line break or NUL`);
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

export class MountCommands {
  private shell: ChildProcessWithoutNullStreams | undefined;
  private readonly pending: Pending[] = [];
  private output = "";

  /** Runs command with args; rejects with the command's own message when it fails. */
  run(command: "mount" | "umount", args: readonly string[]): Promise<void> {
    const line = [command, ...args].map(quote).join(" ");
    return new Promise<void>((resolve, reject) => {
      const shell = this.shell ?? this.start();
      const timer = setTimeout(() => {
        // The shell and the command are one process group: kill both; the next command starts a new shell.
        if (shell.pid) process.kill(-shell.pid, "SIGKILL");
      }, COMMAND_TIMEOUT_MS);
      timer.unref();
      this.pending.push({ command: `${command} ${args.join(" ")}`, resolve, reject, timer });
      shell.stdin.write(`${line}\n`);
    });
  }

  close(): void {
    this.shell?.stdin.end();
    this.shell = undefined;
  }

  private start(): ChildProcessWithoutNullStreams {
    const shell = spawn("/bin/sh", ["-c", LOOP], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" },
      detached: true,
    });
    this.shell = shell;
    this.output = "";
    shell.stdout.setEncoding("utf8");
    shell.stdout.on("data", (chunk: string) => {
      this.output += chunk;
      this.drain();
    });
    let stderr = "";
    shell.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    const failAll = (why: string) => {
      if (this.shell === shell) this.shell = undefined;
      for (const p of this.pending.splice(0)) {
        clearTimeout(p.timer);
        p.reject(new Error(`${p.command} failed: the command shell ${why}${stderr ? `: ${stderr.trim()}` : ""}`));
      }
    };
    shell.once("error", (err) => failAll(`could not start (${err.message})`));
    shell.once("exit", (code, signal) => failAll(`exited (${code ?? signal})`));
    // A shell killed before its exit is handled: the write fails (EPIPE), and must not end the driver.
    shell.stdin.on("error", (err) => failAll(`stopped reading (${err.message})`));
    // The driver may exit with the shell still running; it ends with its stdin.
    shell.unref();
    for (const stream of [shell.stdin, shell.stdout, shell.stderr]) (stream as unknown as { unref?: () => void }).unref?.();
    return shell;
  }

  private drain(): void {
    for (;;) {
      const end = this.output.indexOf(END);
      const newline = end < 0 ? -1 : this.output.indexOf("\n", end);
      if (newline < 0) return;
      const text = this.output.slice(0, end).trim();
      const rc = Number(this.output.slice(end + 1, newline));
      this.output = this.output.slice(newline + 1);
      const p = this.pending.shift();
      if (!p) continue;
      clearTimeout(p.timer);
      if (rc === 0) p.resolve();
      else p.reject(new Error(`${p.command} failed: ${text || `exit ${rc}`}`));
    }
  }
}
