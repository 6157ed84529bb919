// Child processes of the test harness (etcd, the Kubernetes components,
// containerd): started with their output in a log file, killed if the test
// runner exits without a teardown, awaited with a readiness check that fails
// early, with the log's tail, when the process dies.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";

const START_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 5_000;

export interface Proc {
  name: string;
  child: ChildProcess;
  logPath: string;
  exited: Promise<void>;
  exitDescription?: string;
}

const liveProcesses = new Set<Proc>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // If the test runner dies without teardown, leave no process of ours behind.
  process.on("exit", () => {
    for (const p of liveProcesses) p.child.kill("SIGKILL");
  });
}

export function launch(name: string, binary: string, args: string[], logPath: string): Proc {
  installExitHook();
  const fd = openSync(logPath, "a");
  let child: ChildProcess;
  try {
    child = spawn(binary, args, { stdio: ["ignore", fd, fd] });
  } finally {
    closeSync(fd);
  }
  const proc: Proc = { name, child, logPath, exited: Promise.resolve() };
  proc.exited = new Promise<void>((resolve) => {
    child.once("error", (err) => {
      proc.exitDescription = `failed to start: ${err.message}`;
      liveProcesses.delete(proc);
      resolve();
    });
    child.once("exit", (code, signal) => {
      proc.exitDescription = signal ? `killed by ${signal}` : `exited with code ${code}`;
      liveProcesses.delete(proc);
      resolve();
    });
  });
  liveProcesses.add(proc);
  return proc;
}

export async function stopProcess(proc: Proc | undefined, graceMs = STOP_GRACE_MS): Promise<void> {
  if (proc === undefined) return;
  if (proc.exitDescription !== undefined) return;
  proc.child.kill("SIGTERM");
  const timer = setTimeout(() => proc.child.kill("SIGKILL"), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

export function logTail(logPath: string, lines = 40): string {
  try {
    const text = readFileSync(logPath, "utf8").trimEnd().split("\n");
    return text.slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

function startupError(proc: Proc, what: string): Error {
  const state = proc.exitDescription ? `${proc.name} ${proc.exitDescription}` : `${proc.name} is still running`;
  return new Error(`${what} (${state}); last lines of ${proc.logPath}:\n${logTail(proc.logPath)}`);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true; fails early with the log tail if the process exits. */
export async function waitReady(proc: Proc, what: string, check: () => Promise<boolean>, timeoutMs = START_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitDescription !== undefined) throw startupError(proc, `${proc.name} stopped before ${what}`);
    try {
      if (await check()) return;
    } catch {
      // not ready yet
    }
    if (Date.now() > deadline) throw startupError(proc, `timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await sleep(250);
  }
}

/**
 * `count` distinct ports that were free on `host` a moment ago: all are held
 * at once while the kernel picks them, so no two are the same. Without a host
 * they are free on every interface, for a program that will bind ":port".
 */
export async function freePorts(host: string | undefined, count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        if (host === undefined) server.listen(0, () => resolve());
        else server.listen(0, host, () => resolve());
      });
    }
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
  }
}

/** A port that was free on `host` a moment ago. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function isPortClash(proc: Proc): boolean {
  return /address already in use/i.test(logTail(proc.logPath, 200));
}

