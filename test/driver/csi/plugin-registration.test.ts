// The driver's own registration with kubelet (--register-with-kubelet): this
// test plays kubelet's side of pluginregistration v1 over the real socket and
// reads /healthz. test/node/ shows a real kubelet registering the driver.
import { lstat, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { Writable } from "node:stream";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDriver, type RunningDriver } from "../../../src/driver/driver.ts";
import { checkDriverOptions, parseDriverOptions } from "../../../src/driver/options.ts";
import { createLogger } from "../../../src/shared/logger.ts";
import { pluginRegistrationService } from "../../../src/shared/grpc/proto.ts";

type Call = (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void;

function registrationClient(socketPath: string) {
  const Registration = pluginRegistrationService();
  const client = new Registration(`unix:${socketPath}`, grpc.credentials.createInsecure()) as unknown as Record<string, Call> & grpc.Client;
  const call = <T>(method: string, req: object) =>
    new Promise<T>((resolve, reject) =>
      client[method]!.call(client, req, { deadline: new Date(Date.now() + 10_000) }, (err, res) => (err ? reject(err) : resolve(res as T))),
    );
  return { call, close: () => client.close() };
}

function lineSink(onLine: (line: string) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n")) if (line) onLine(line);
      done();
    },
  });
}

async function healthz(driver: RunningDriver): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${driver.health!.port}/healthz`);
  return { status: res.status, body: await res.text() };
}

describe("plugin registration served by the driver", () => {
  let base: string;
  let kubeletDir: string;
  let driver: RunningDriver;
  let logs: string[];
  let client: ReturnType<typeof registrationClient>;
  const regSocket = () => join(kubeletDir, "plugins_registry", "secrets-store.csi.k8s.io-reg.sock");
  const csiSocket = () => join(kubeletDir, "plugins", "csi-secrets-store", "csi.sock");

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "registration-"));
    kubeletDir = join(base, "kubelet");
    await mkdir(join(kubeletDir, "plugins_registry"), { recursive: true });
    await mkdir(join(base, "spc"));
    logs = [];
    const logger = createLogger({ name: "driver", destination: lineSink((line) => logs.push(line)) });
    const options = parseDriverOptions([
      `--endpoint=unix://${csiSocket()}`,
      "--nodeid=node-a",
      `--kubelet-dir=${kubeletDir}`,
      "--register-with-kubelet",
      `--secret-provider-class-dir=${join(base, "spc")}`,
      "--metrics-addr=",
      "--health-addr=127.0.0.1:0",
    ]);
    checkDriverOptions(options);
    driver = await startDriver(options, { logger });
    client = registrationClient(regSocket());
  });

  afterAll(async () => {
    client?.close();
    await driver?.stop();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it("creates an owner-only socket named after the driver in plugins_registry/", async () => {
    const st = await lstat(regSocket());
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect(driver.registration?.state()).toEqual({ phase: "waiting for kubelet" });
  });

  it("answers GetInfo as kubelet expects of a CSI plugin: type, name, the CSI socket's path, version 1", async () => {
    const info = await client.call<Record<string, unknown>>("GetInfo", {});
    expect(info).toEqual({ type: "CSIPlugin", name: "secrets-store.csi.k8s.io", endpoint: csiSocket(), supported_versions: ["1.0.0"] });
  });

  it("is healthy once registered, and reports a rejection in /healthz and the log until kubelet accepts it", async () => {
    await client.call("NotifyRegistrationStatus", { plugin_registered: true });
    expect(driver.registration?.state()).toEqual({ phase: "registered" });
    expect(await healthz(driver)).toEqual({ status: 200, body: "ok" });

    await client.call("NotifyRegistrationStatus", { plugin_registered: false, error: "node name mismatch" });
    expect(await healthz(driver)).toEqual({ status: 503, body: "kubelet rejected the plugin registration: node name mismatch" });
    const rejected = logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg?.toString().startsWith("kubelet rejected"));
    expect(rejected).toMatchObject({ level: expect.anything(), error: "node name mismatch", socket: regSocket() });

    await client.call("NotifyRegistrationStatus", { plugin_registered: true });
    expect((await healthz(driver)).status).toBe(200);
  });

  it("shows a rejection with a 3 MiB multi-line reason as one bounded line in /healthz and the log", async () => {
    const reason = `first line\n${"x".repeat(3 * 1024 * 1024)}\r\nlast line`;
    const linesBefore = logs.length;
    await client.call("NotifyRegistrationStatus", { plugin_registered: false, error: reason });
    const { status, body } = await healthz(driver);
    expect(status).toBe(503);
    expect(body.startsWith("kubelet rejected the plugin registration: first line xxx")).toBe(true);
    expect(body).not.toMatch(/[\r\n]/);
    expect(body.length).toBeLessThanOrEqual(1100);
    const logged = logs.slice(linesBefore).find((l) => l.includes("kubelet rejected"))!;
    expect(logged.length).toBeLessThan(2048);
    await client.call("NotifyRegistrationStatus", { plugin_registered: true });
    expect((await healthz(driver)).status).toBe(200);
  });

  it("is unhealthy when its registration socket disappears (kubelet can no longer find it)", async () => {
    await rm(regSocket());
    expect(await healthz(driver)).toEqual({ status: 503, body: `the registration socket ${regSocket()} is gone, so kubelet cannot find the driver` });
  });
});

describe("plugin registration start-up checks", () => {
  it("refuses a TCP endpoint, which kubelet could not dial as a path", () => {
    const options = parseDriverOptions(["--endpoint=tcp://127.0.0.1:10000", "--nodeid=n", "--register-with-kubelet"]);
    expect(() => checkDriverOptions(options)).toThrow("--register-with-kubelet needs a unix:// --endpoint (kubelet dials its path), not tcp://127.0.0.1:10000");
  });

  it("refuses a --kubelet-dir without plugins_registry/ instead of creating kubelet's directories", async () => {
    const base = await mkdtemp(join(tmpdir(), "registration-"));
    try {
      const options = parseDriverOptions([
        `--endpoint=unix://${join(base, "csi.sock")}`,
        "--nodeid=n",
        `--kubelet-dir=${join(base, "nope")}`,
        "--register-with-kubelet",
        `--secret-provider-class-dir=${base}`,
        "--metrics-addr=",
        "--health-addr=",
      ]);
      await expect(startDriver(options, { logger: createLogger({ name: "driver", destination: lineSink(() => undefined) }) })).rejects.toThrow(
        `--register-with-kubelet: ${join(base, "nope", "plugins_registry")} is not a directory; is --kubelet-dir (${join(base, "nope")}) kubelet's --root-dir?`,
      );
      await expect(lstat(join(base, "nope"))).rejects.toThrow(/ENOENT/);
      // The CSI socket is not left behind either.
      await expect(lstat(join(base, "csi.sock"))).rejects.toThrow(/ENOENT/);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
