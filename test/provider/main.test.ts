// The program's command line: flags as upstream, version JSON, clear exits on
// bad flags, an owner-only socket, health over gRPC and metrics over HTTP.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ProviderClient } from "./client.ts";
import { freePorts } from "../harness/processes.ts";
import { MAIN } from "./env.ts";

const run = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8", timeout: 30_000 });

describe("command line", () => {
  it("--version prints JSON and exits 0", () => {
    const res = run("--version");
    expect(res.status).toBe(0);
    expect(Object.keys(JSON.parse(res.stdout) as object)).toEqual(["version", "buildDate"]);
  });

  it.each([
    [["--metrics-backend=opentelemetry"], 'invalid value "opentelemetry" for flag --metrics-backend: unsupported metrics backend (only prometheus)'],
    [["--no-such-flag"], "unknown flag --no-such-flag"],
    [["--healthz-port=abc"], 'invalid integer value "abc" for flag --healthz-port'],
    [["--healthz-timeout=5"], 'invalid duration value "5" for flag --healthz-timeout'],
    [["--construct-pem-chain=maybe"], 'invalid boolean value "maybe" for flag --construct-pem-chain'],
    [["--cloud-name=AzureMoonCloud"], 'cloudName AzureMoonCloud is not valid, error: autorest/azure: There is no cloud environment matching the name "AZUREMOONCLOUD"'],
    [["--keyvault-request-budget=0"], 'invalid value "0" for flag --keyvault-request-budget: must be greater than zero'],
    [["--max-cached-vaults=0"], 'invalid value "0" for flag --max-cached-vaults: must be greater than zero'],
    [["--max-metric-series=-1"], 'invalid value "-1" for flag --max-metric-series: must be greater than zero'],
  ])("%j exits 2 with a clear message", (args, message) => {
    const res = run(...args);
    expect(res.status).toBe(2);
    expect(res.stderr).toContain(message);
  });

  it("serves on an owner-only socket, accepts upstream flags, answers health and metrics", async () => {
    const dir = mkdtempSync(join(tmpdir(), "provider-main-"));
    const socket = join(dir, "azure.sock");
    // upstream's port flags bind every interface: ports free on all of them
    const [healthPort, metricsPort] = await freePorts(undefined, 2);
    const child = spawn(
      process.execPath,
      [MAIN, `--endpoint=unix://${socket}`, `--healthz-port=${healthPort}`, `--prometheus-port=${metricsPort}`, "--healthz-path=/live", "--healthz-timeout=2s", "--metrics-backend=Prometheus", "--log-format-json", "-v=5", "--construct-pem-chain=true", "--write-cert-and-key-in-separate-files=false", "--cloud-name=AzureChinaCloud"],
      { stdio: "ignore" },
    );
    const client = new ProviderClient(`unix:${socket}`);
    try {
      let version: Record<string, string> | undefined;
      for (let i = 0; i < 100 && !version; i++) {
        version = await client.version().catch(() => undefined);
        if (!version) await new Promise((r) => setTimeout(r, 100));
      }
      expect(version).toMatchObject({ version: "v1alpha1", runtime_name: "secrets-store-csi-driver-provider-azure" });
      expect(statSync(socket).mode & 0o777).toBe(0o600);
      const health = await fetch(`http://127.0.0.1:${healthPort}/live`);
      expect([health.status, await health.text()]).toEqual([200, "ok"]);
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      expect(metrics).toMatch(/grpc_request_count\{[^}]*grpc_method="\/v1alpha1.CSIDriverProvider\/Version",grpc_code="OK",grpc_message=""\} \d/);
      expect(metrics).toMatch(/grpc_request_count\{[^}]*grpc_method="\/grpc.health.v1.Health\/Check",grpc_code="OK"/);
    } finally {
      client.close();
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
