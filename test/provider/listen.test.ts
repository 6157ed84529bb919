// Where the provider program listens, and how it fails to: metrics and health
// bind the address --metrics-addr / --healthz-addr name (upstream's
// --prometheus-port / --healthz-port keep working, see main.test.ts); a
// provider that cannot listen exits non-zero naming the address or path and
// leaves no socket behind for the driver to find.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProviderClient } from "./client.ts";
import { occupyPort, privateLoopback, releasePorts } from "../support/ports.ts";
import { lastLines, MAIN, startedPorts } from "./env.ts";

const DEFAULT_METRICS_PORT = 8898;
const DEFAULT_HEALTH_PORT = 8989;

function run(args: string[]) {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, exited, output: () => output };
}

let holders: Array<Server | undefined> = [];
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "provider-listen-"));
  holders = [await occupyPort(DEFAULT_METRICS_PORT), await occupyPort(DEFAULT_HEALTH_PORT)];
});

afterAll(async () => {
  await releasePorts(holders);
  rmSync(dir, { recursive: true, force: true });
});

describe("listen addresses", () => {
  it("with the default metrics port taken it exits 1 naming the port and the flags, and removes its socket", async () => {
    const socket = join(dir, "defaults.sock");
    const p = run([`--endpoint=unix://${socket}`]);
    expect(await p.exited).toBe(1);
    expect(p.output()).toContain(
      `secrets-store-csi-provider-azure: cannot listen on :${DEFAULT_METRICS_PORT} for metrics (--metrics-addr / --prometheus-port): address already in use`,
    );
    expect(existsSync(socket)).toBe(false);
  });

  it("with the health port taken it names the health flags", async () => {
    const socket = join(dir, "health.sock");
    const p = run([`--endpoint=unix://${socket}`, "--metrics-addr=127.0.0.1:0"]);
    expect(await p.exited).toBe(1);
    expect(p.output()).toContain(`cannot listen on :${DEFAULT_HEALTH_PORT} for health (--healthz-addr / --healthz-port): address already in use`);
    expect(existsSync(socket)).toBe(false);
  });

  it("a socket path it cannot create: exits 1 naming --endpoint", async () => {
    const file = join(dir, "a-file");
    writeFileSync(file, "");
    const p = run([`--endpoint=unix://${file}/azure.sock`, "--metrics-addr=127.0.0.1:0", "--healthz-addr=127.0.0.1:0"]);
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch(new RegExp(`cannot serve on unix://${file}/azure.sock \\(--endpoint\\): .*(ENOTDIR|EEXIST)`));
  });

  it("a malformed address is refused at start", async () => {
    const p = run(["--metrics-addr=8898"]);
    expect(await p.exited).toBe(2);
    expect(p.output()).toContain('invalid value "8898" for flag --metrics-addr: must be [host]:port, e.g. 127.0.0.1:8898 or :8898');
  });

  it("--metrics-addr and --healthz-addr bind the address they name, with the defaults taken", async () => {
    const socket = join(dir, "chosen.sock");
    const address = privateLoopback();
    const p = run([`--endpoint=unix://${socket}`, `--metrics-addr=${address}:0`, `--healthz-addr=${address}:0`]);
    const client = new ProviderClient(`unix:${socket}`);
    try {
      let ports = startedPorts(p.output());
      for (let i = 0; i < 300 && !ports; i++) {
        if (p.child.exitCode !== null) throw new Error(`provider exited ${p.child.exitCode}:\n${lastLines(p.output())}`);
        await new Promise((r) => setTimeout(r, 50));
        ports = startedPorts(p.output());
      }
      expect(ports, lastLines(p.output())).toBeDefined();
      expect(await client.version()).toMatchObject({ version: "v1alpha1" });
      const health = await fetch(`http://${address}:${ports!.healthPort}/healthz`);
      expect([health.status, await health.text()]).toEqual([200, "ok"]);
      expect(await (await fetch(`http://${address}:${ports!.metricsPort}/metrics`)).text()).toContain("grpc_request_count");
      // only that address: nothing answers on another loopback address
      await expect(fetch(`http://127.0.0.1:${ports!.metricsPort}/metrics`)).rejects.toThrow();
    } finally {
      client.close();
      p.child.kill("SIGTERM");
      await p.exited;
    }
    expect(existsSync(socket)).toBe(false);
  });
});
