// One program of a stack (driver, provider or emulator) as a child process:
// started directly or inside a memory cgroup, ready when its own readiness
// check answers, its output kept in a log file, stopped with SIGTERM and then
// SIGKILL. Every program started here is killed if the benchmark dies.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { sleep } from "../test/support/fake-provider.ts";
import type { MemoryCgroup } from "./memory-cgroup.ts";
import { rssMiB } from "./samples.ts";

export interface Command {
  command: string;
  args: string[];
  env: Record<string, string>;
}

export interface RunningProgram {
  name: string;
  /** The program's own pid (the cgroup wrapper execs into it, so the pid is the program's). */
  pid: number;
  /** Milliseconds from spawn until the readiness check first answered. */
  startMs: number;
  exited(): boolean;
  rssMiB(): number;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** Kills whatever a failed run left running, and waits for it to exit. */
export async function stopAllPrograms(): Promise<void> {
  await Promise.all(
    [...live].map(
      (child) =>
        new Promise<void>((resolve) => {
          child.once("exit", () => resolve());
          child.kill("SIGKILL");
        }),
    ),
  );
}

function tail(logPath: string): string {
  try {
    return readFileSync(logPath, "utf8").trimEnd().split("\n").slice(-25).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * Spawns `cmd` and polls `ready` (which should fail fast while the program is
 * not listening yet) until it resolves. `socket`, when given, is waited for
 * first, checked every millisecond, so start-up times are not rounded up.
 */
export async function startProgram(
  name: string,
  cmd: Command,
  options: { logPath: string; ready: () => Promise<unknown>; socket?: string; cgroup?: MemoryCgroup; timeoutMs?: number },
): Promise<RunningProgram> {
  const [command, args] = options.cgroup ? options.cgroup.wrap(cmd.command, cmd.args) : [cmd.command, cmd.args];
  const fd = openSync(options.logPath, "a");
  const started = performance.now();
  let child: ChildProcess;
  try {
    child = spawn(command, args, { env: cmd.env, stdio: ["ignore", fd, fd] });
  } finally {
    closeSync(fd);
  }
  live.add(child);
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once("error", (err) => {
      exit = `failed to start: ${err.message}`;
      live.delete(child);
      resolve();
    });
    child.once("exit", (code, signal) => {
      exit = signal ? `killed by ${signal}` : `exited with code ${code}`;
      live.delete(child);
      resolve();
    });
  });
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  const fail = (what: string) => new Error(`${name} ${what}; last lines of ${options.logPath}:\n${tail(options.logPath)}`);
  try {
    if (options.socket) {
      while (!existsSync(options.socket)) {
        if (exit) throw fail(exit);
        if (Date.now() > deadline) throw fail(`did not create ${options.socket}`);
        await sleep(1);
      }
    }
    for (;;) {
      try {
        await options.ready();
        break;
      } catch (err) {
        if (exit) throw fail(exit);
        if (Date.now() > deadline) throw fail(`was not ready: ${(err as Error).message}`);
        await sleep(5);
      }
    }
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    throw err;
  }
  const startMs = performance.now() - started;
  return {
    name,
    pid: child.pid!,
    startMs,
    exited: () => exit !== undefined,
    rssMiB: () => rssMiB(child.pid!),
    stop: async () => {
      if (exit) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
