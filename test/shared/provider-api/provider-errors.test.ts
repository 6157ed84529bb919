// What the driver makes of a provider's failures, through the driver
// program's CSI socket (standalone mode, real tmpfs) with real provider
// sockets: error codes become a bounded set of error_type labels, texts
// reach kubelet as one line, a request the provider refuses for its size is
// not reported as a too-large answer, and a provider that is not running (or
// could not start) is named as such.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { csiClient, expectGrpcError, type CsiClient } from "../../support/csi-client.ts";
import { metricsUrl, removeTestTree, REPO, requireRoot, startDriverProcess, type DriverProcess } from "../../support/driver-process.ts";
import { startFakeProvider, type FakeProvider } from "../../support/fake-provider.ts";

const PROVIDER_MAIN = resolve(REPO, "src/provider/main.ts");
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const MAX_RECV = 64 * 1024;

let base: string;
let providers: string;
let fake: FakeProvider;
let driver: DriverProcess;
let csi: CsiClient;
let metrics: string;
let n = 0;

function spc(name: string, provider: string, parameters: Record<string, string> = {}): string {
  return JSON.stringify({
    apiVersion: "secrets-store.csi.x-k8s.io/v1",
    kind: "SecretProviderClass",
    metadata: { name, namespace: "demo" },
    spec: { provider, parameters: { objects: "a", ...parameters } },
  });
}

beforeAll(async () => {
  requireRoot();
  base = await mkdtemp(join(tmpdir(), "provider-errors-"));
  providers = join(base, "providers");
  await mkdir(join(base, "spc"));
  await mkdir(providers);
  await mkdir(join(base, "pods", "0000-2222"), { recursive: true });
  // YAML is a superset of JSON: one document per class. The driver reads the
  // files in name order on every publish and stops at the file that holds the
  // class, so the small classes come first: otherwise each of the 300 publishes
  // below would parse the 7 MiB of the two large ones too.
  const small = [spc("fake", "fake"), spc("dead", "dead"), spc("azure", "azure", { keyvaultName: "kv-never", tenantID: "tenant-1" })];
  await writeFile(join(base, "spc", "1-small.yaml"), small.join("\n---\n"));
  // above its --max-request-bytes (1 MiB) but within gRPC's limit
  await writeFile(join(base, "spc", "2-large.yaml"), spc("large", "azure", { keyvaultName: "kv-never", tenantID: "tenant-1", padding: "x".repeat(2 * 1024 * 1024) }));
  // above the provider's gRPC limit (4 MiB)
  await writeFile(join(base, "spc", "3-huge.yaml"), spc("huge", "azure", { keyvaultName: "kv-never", tenantID: "tenant-1", padding: "x".repeat(5 * 1024 * 1024) }));
  fake = await startFakeProvider(join(providers, "fake.sock"));
  driver = await startDriverProcess(join(base, "csi.sock"), [
    "--nodeid=errors-node",
    `--kubelet-dir=${base}`,
    `--secret-provider-class-dir=${join(base, "spc")}`,
    `--provider-volume=${providers}`,
    "--additional-provider-volume-paths=",
    "--metrics-addr=127.0.0.1:0",
    "--health-addr=",
    `--max-call-recv-msg-size=${MAX_RECV}`,
  ]);
  csi = csiClient(driver.socketPath);
  metrics = await metricsUrl(driver);
}, 120_000);

afterAll(async () => {
  csi?.close();
  await driver?.stop();
  await fake?.stop();
  await removeTestTree(base);
});

function publish(spcName: string, pod = "app-0") {
  return csi.call(
    "Node",
    "NodePublishVolume",
    {
      volume_id: `v${++n}`,
      target_path: join(base, "pods", "0000-2222", `mnt-${n}`),
      volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
      readonly: true,
      volume_context: {
        secretProviderClass: spcName,
        "csi.storage.k8s.io/pod.name": pod,
        "csi.storage.k8s.io/pod.namespace": "demo",
        "csi.storage.k8s.io/pod.uid": "0000-2222",
      },
    },
    60_000,
  );
}

async function errorSeries(): Promise<string[]> {
  const text = await (await fetch(metrics)).text();
  return text.split("\n").filter((l) => l.startsWith("node_publish_error_total{"));
}

describe("provider error codes", () => {
  it("300 distinct codes give a bounded set of error_type series, and one-line messages", async () => {
    const known = ["NotFound", "PermissionDenied", "FailedToMount"];
    const codes = [...known, ...Array.from({ length: 300 }, (_, i) => `Custom-${i}\nsecond line\u001b[31m\ttab`)];
    // each request names the code the fake answers with, so publishes can run side by side
    fake.behaviour = (req) => ({ error: { code: codes[Number((JSON.parse(req.attributes) as Record<string, string>)["csi.storage.k8s.io/pod.name"]!.slice(4))]! } });
    const messages: string[] = new Array<string>(codes.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < codes.length) {
          const i = next++;
          messages[i] = await expectGrpcError(publish("fake", `app-${i}`), grpc.status.UNKNOWN);
        }
      }),
    );
    const series = await errorSeries();
    const types = series.map((l) => /error_type="([^"]*)"/.exec(l)![1]).sort();
    console.log(`${codes.length} provider codes -> ${series.length} node_publish_error_total series: ${types.join(", ")}`);
    expect(types).toEqual(["FailedToMount", "NotFound", "PermissionDenied", "ProviderError"]);
    const total = series.reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
    expect(total).toBe(codes.length);
    for (const m of messages) expect(m).not.toMatch(CONTROL);
    expect(messages[3]).toContain("mount request failed with provider error code Custom-0 second line\\u001b[31m tab");
  }, 300_000);

  it("a provider's multi-line error text reaches kubelet as one line", async () => {
    fake.behaviour = () => {
      throw Object.assign(new Error("x"), { code: grpc.status.INVALID_ARGUMENT, details: "yaml: unmarshal errors:\n  line 3: cannot unmarshal\r\n\u0007bell" });
    };
    const details = await expectGrpcError(publish("fake"), grpc.status.INVALID_ARGUMENT);
    expect(details).not.toMatch(CONTROL);
    expect(details).toContain('provider "fake": yaml: unmarshal errors: line 3: cannot unmarshal \\u0007bell');
  });
});

describe("message sizes", () => {
  it("an answer above --max-call-recv-msg-size says to raise it", async () => {
    fake.behaviour = () => ({ object_version: [{ id: "secret/a", version: "1" }], files: [{ path: "a", mode: 0o644, contents: Buffer.alloc(MAX_RECV * 2) }] });
    const details = await expectGrpcError(publish("fake"), grpc.status.RESOURCE_EXHAUSTED);
    expect(details).toMatch(new RegExp(`provider "fake" response is too large: Received message larger than max \\(\\d+ vs ${MAX_RECV}\\); raise --max-call-recv-msg-size`));
  });
});

describe("a provider that is not there", () => {
  it("a socket nobody serves: the provider is not running on this node", async () => {
    // a provider killed without cleaning up leaves its socket behind
    const dead = spawn(process.execPath, ["-e", `require("node:net").createServer().listen(${JSON.stringify(join(providers, "dead.sock"))}, () => console.log("up"))`], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise((r) => dead.stdout!.once("data", r));
    dead.kill("SIGKILL");
    await new Promise((r) => dead.once("exit", r));
    expect(existsSync(join(providers, "dead.sock"))).toBe(true);
    const details = await expectGrpcError(publish("dead"), grpc.status.UNAVAILABLE);
    expect(details).toContain(`provider "dead" is not running on this node: nothing accepts connections on ${join(providers, "dead.sock")}; check the dead provider's pod on this node`);
  });

  describe("the Azure provider", () => {
    let holder: Server;
    let port: number;
    const runProvider = (args: string[]) => {
      const child = spawn(process.execPath, [PROVIDER_MAIN, `--endpoint=unix://${join(providers, "azure.sock")}`, ...args], { stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
      return { child, output: () => output };
    };

    beforeAll(async () => {
      holder = createServer();
      await new Promise<void>((r) => holder.listen(0, "127.0.0.1", r));
      port = (holder.address() as { port: number }).port;
    });
    afterAll(() => new Promise<void>((r) => holder.close(() => r())));

    it("cannot start with its metrics port taken: it exits non-zero naming the address and removes its socket; the driver says there is no socket", async () => {
      const p = runProvider([`--metrics-addr=127.0.0.1:${port}`, "--healthz-addr=127.0.0.1:0"]);
      const code = await new Promise<number | null>((r) => p.child.once("exit", r));
      expect(code).toBe(1);
      expect(p.output()).toContain(
        `secrets-store-csi-provider-azure: cannot listen on 127.0.0.1:${port} for metrics (--metrics-addr / --prometheus-port): address already in use`,
      );
      expect(existsSync(join(providers, "azure.sock"))).toBe(false);
      const details = await expectGrpcError(publish("azure"), grpc.status.UNAVAILABLE);
      expect(details).toContain(`no socket azure.sock in ${providers}; is the azure provider installed and running on this node?`);
    });

    it("a request it refuses for its size is not reported as a too-large answer", async () => {
      const p = runProvider(["--metrics-addr=127.0.0.1:0", "--healthz-addr=127.0.0.1:0"]);
      try {
        for (let i = 0; i < 200 && !p.output().includes('"provider started"'); i++) {
          if (p.child.exitCode !== null) throw new Error(`provider exited:\n${p.output()}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        // above gRPC's limit: the driver reads the sizes in gRPC's text
        const huge = await expectGrpcError(publish("huge"), grpc.status.INVALID_ARGUMENT);
        expect(huge).toMatch(/provider "azure" refused the Mount request: it is \d+ bytes, more than the \d+ bytes the provider accepts; the SecretProviderClass parameters/);
        expect(huge).not.toContain("raise --max-call-recv-msg-size");
        // within gRPC's limit: the provider's own message names its flag
        const large = await expectGrpcError(publish("large"), grpc.status.INVALID_ARGUMENT);
        expect(large).toContain("more than the 1024 KiB this provider accepts (--max-request-bytes)");
        expect(large).not.toContain("--max-call-recv-msg-size");
      } finally {
        p.child.kill("SIGTERM");
        await new Promise((r) => p.child.once("exit", r));
      }
      // a provider stopped normally takes its socket away too
      expect(existsSync(join(providers, "azure.sock"))).toBe(false);
    });
  });
});
