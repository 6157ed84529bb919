// Runs the driver program as a real process, as kubelet's node would.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

export const REPO = resolve(import.meta.dirname, "../..");

export interface DriverProcess {
  child: ChildProcess;
  socketPath: string;
  output: () => string;
  stop(): Promise<void>;
}

/**
 * Benchmarks run what the images run: SSCSI_DRIVER_PROGRAM names a bundle
 * (scripts/bundle.ts) and SSCSI_NODE_FLAGS the Node flags it runs with. Tests
 * leave both unset and run the sources.
 */
function driverCommand(): string[] {
  const flags = (process.env.SSCSI_NODE_FLAGS ?? "").split(" ").filter(Boolean);
  return [...flags, process.env.SSCSI_DRIVER_PROGRAM ?? resolve(REPO, "src/driver/main.ts")];
}

/**
 * The flags of a standalone driver whose kubelet directory is `base`, with
 * its classes in <base>/spc and its providers' sockets in <base>/providers,
 * and no metrics or health listener.
 */
export function standaloneDriverFlags(base: string, nodeId: string): string[] {
  return [
    `--nodeid=${nodeId}`,
    `--kubelet-dir=${base}`,
    `--secret-provider-class-dir=${join(base, "spc")}`,
    `--provider-volume=${join(base, "providers")}`,
    "--additional-provider-volume-paths=",
    "--metrics-addr=",
    "--health-addr=",
  ];
}

export async function startDriverProcess(socketPath: string, args: string[], env: Record<string, string | undefined> = {}): Promise<DriverProcess> {
  const child = spawn(process.execPath, [...driverCommand(), `--endpoint=unix://${socketPath}`, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 20_000;
  while (!existsSync(socketPath)) {
    if (child.exitCode !== null) throw new Error(`driver exited with ${child.exitCode}:\n${out}`);
    if (Date.now() > deadline) throw new Error(`driver did not create ${socketPath} within 20s:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    socketPath,
    output: () => out,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        child.once("exit", () => done());
        child.kill("SIGTERM");
        setTimeout(() => child.kill("SIGKILL"), 5000).unref();
      }),
  };
}

/** Fails loudly unless the tests run as root (tmpfs mounts need it). */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error("these tests mount tmpfs and must run as root (uid 0)");
}

/** Unmounts every mount below base (lazily) and removes base: test cleanup. */
export async function removeTestTree(base: string | undefined): Promise<void> {
  if (!base) return;
  const { execFileSync } = await import("node:child_process");
  const { rm } = await import("node:fs/promises");
  const { listMounts } = await import("../../src/driver/volume/mounter.ts");
  for (const m of (await listMounts()).filter((m) => m.mountPoint.startsWith(base)).reverse()) {
    execFileSync("umount", ["-l", m.mountPoint]);
  }
  await rm(base, { recursive: true, force: true });
}

/** The driver's /metrics URL, for a driver started with --metrics-addr=<host>:0 (the port is read from its log). */
export async function metricsUrl(driver: DriverProcess, host = "127.0.0.1"): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    for (const line of driver.output().split("\n")) {
      if (!line.includes('"HTTP servers listening"')) continue;
      try {
        const port = (JSON.parse(line) as { metricsPort?: number }).metricsPort;
        if (port) return `http://${host}:${port}/metrics`;
      } catch {
        // the rest of the line has not arrived yet
      }
    }
    if (driver.child.exitCode !== null || Date.now() > deadline) throw new Error(`the driver logged no metrics port:\n${driver.output().split("\n").slice(-20).join("\n")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
