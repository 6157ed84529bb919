// Fault injection as seen by the unmodified SDK: 429 with Retry-After (the
// SDK's retry honours it), 5xx, added latency and dropped connections, for N
// requests or a time window, per operation and vault; and the admin endpoints.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SecretClient } from "@azure/keyvault-secrets";
import { RestError, type HttpClient } from "@azure/core-rest-pipeline";
import { startEmulator, type Emulator } from "../../src/emulator/index.ts";
import { APP_OFFICER, clientOptions, recordingHttpClient, secretCredential } from "./helpers.ts";

let emulator: Emulator;

beforeAll(async () => {
  emulator = await startEmulator({
    seed: {
      vaults: [
        { name: "kv1", secrets: [{ name: "s", value: "one" }] },
        { name: "kv2", secrets: [{ name: "s", value: "two" }] },
      ],
      applications: [{ clientId: APP_OFFICER.clientId, clientSecret: APP_OFFICER.secret, roleAssignments: [{ vault: "*", role: "Key Vault Secrets User" }] }],
    },
  });
});

afterEach(() => {
  emulator.faults.clear();
  emulator.resetCounters();
});

afterAll(async () => {
  await emulator.close();
});

/** A client that has already passed the challenge, so faults hit the real calls. */
async function warmClient(vault = "kv1", maxRetries?: number, httpClient?: HttpClient): Promise<SecretClient> {
  const client = new SecretClient(emulator.vaultUrl(vault), secretCredential(emulator, APP_OFFICER), clientOptions(emulator, { maxRetries, httpClient }));
  await client.getSecret("s");
  emulator.resetCounters();
  return client;
}

async function rejection(promise: Promise<unknown>): Promise<RestError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(RestError);
  return error as RestError;
}

describe("throttling", () => {
  it("answers 429 Throttled with Retry-After, which the SDK waits for before retrying", async () => {
    const { httpClient, exchanges } = recordingHttpClient();
    const client = await warmClient("kv1", undefined, httpClient);
    exchanges.length = 0;
    emulator.faults.add({ kind: "throttle", operation: "getSecret", count: 2, retryAfterSeconds: 1 });
    const started = Date.now();
    expect((await client.getSecret("s")).value).toBe("one");
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1900);
    expect(exchanges.map((e) => e.status)).toEqual([429, 429, 200]);
    expect(exchanges[0]!.headers["retry-after"]).toBe("1");
    expect(emulator.counters()).toMatchObject({ "fault:throttle": 2, getSecret: 1 });
  });

  it("surfaces the service error when retries are exhausted", async () => {
    const client = await warmClient("kv1", 0);
    emulator.faults.add({ kind: "throttle", count: 1 });
    const error = await rejection(client.getSecret("s"));
    expect(error.statusCode).toBe(429);
    expect(error.code).toBe("Throttled");
    expect(error.message).toContain("VaultRequestTypeLimitReached");
  });
});

describe("server errors", () => {
  it("returns 500 for the next request; the SDK retries it", async () => {
    const client = await warmClient();
    emulator.faults.add({ kind: "error", status: 500, count: 1, operation: "getSecret" });
    expect((await client.getSecret("s")).value).toBe("one");
    expect(emulator.counters()).toMatchObject({ "fault:error": 1, getSecret: 1 });
  });

  it("returns 503 during a time window only", async () => {
    const client = await warmClient("kv1", 0);
    // The window is long enough that the request sent right after it opens
    // lands inside it on a busy machine too; the wait then outlasts it.
    emulator.faults.add({ kind: "error", status: 503, durationMs: 1_500 });
    const error = await rejection(client.getSecret("s"));
    expect(error.statusCode).toBe(503);
    expect(error.code).toBe("ServiceUnavailable");
    await new Promise((r) => setTimeout(r, 1_600));
    expect((await client.getSecret("s")).value).toBe("one");
  });

  it("matches only the named vault and operation", async () => {
    const kv1 = await warmClient("kv1", 0);
    const kv2 = await warmClient("kv2", 0);
    emulator.faults.add({ kind: "error", status: 500, vault: "kv2", operation: "getSecret" });
    expect((await kv1.getSecret("s")).value).toBe("one");
    expect((await rejection(kv2.getSecret("s"))).statusCode).toBe(500);
    const versions = [];
    for await (const v of kv2.listPropertiesOfSecretVersions("s")) versions.push(v);
    expect(versions).toHaveLength(1);
  });
});

describe("latency and dropped connections", () => {
  it("adds latency", async () => {
    const client = await warmClient();
    emulator.faults.add({ kind: "latency", latencyMs: 400, count: 1 });
    const started = Date.now();
    await client.getSecret("s");
    // a floor of the added wait, which a slow machine only lengthens
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    await client.getSecret("s");
    // only the first request was delayed: counted, not timed
    expect(emulator.counters()).toMatchObject({ "fault:latency": 1, getSecret: 2 });
  });

  it("drops the connection; the SDK retries, or fails without retries", async () => {
    const client = await warmClient();
    emulator.faults.add({ kind: "drop", count: 1 });
    expect((await client.getSecret("s")).value).toBe("one");
    expect(emulator.counters()).toMatchObject({ "fault:drop": 1, getSecret: 1 });

    const fragile = await warmClient("kv1", 0);
    emulator.faults.add({ kind: "drop", count: 1 });
    const error = await rejection(fragile.getSecret("s"));
    expect(error.code).toMatch(/ECONNRESET|REQUEST_SEND_ERROR|socket hang up/i);
  });
});

describe("admin endpoints", () => {
  it("adds faults and reads and resets counters over HTTP", async () => {
    const admin = `${emulator.imdsEndpoint}/_emulator`;
    const client = await warmClient("kv1", 0);
    const added = await fetch(`${admin}/faults`, { method: "POST", body: JSON.stringify({ kind: "error", status: 502, count: 1 }) });
    expect(added.status).toBe(200);
    expect(await added.json()).toEqual([{ kind: "error", status: 502, count: 1, remaining: 1 }]);
    expect((await rejection(client.getSecret("s"))).statusCode).toBe(502);
    await client.getSecret("s");

    const counters = (await (await fetch(`${admin}/counters`)).json()) as Record<string, number>;
    expect(counters).toMatchObject({ getSecret: 1, "getSecret:kv1": 1, "fault:error": 1 });
    expect((await fetch(`${admin}/counters`, { method: "POST" })).status).toBe(200);
    expect(await (await fetch(`${admin}/counters`)).json()).toEqual({});

    const bad = await fetch(`${admin}/faults`, { method: "POST", body: JSON.stringify({ kind: "explode" }) });
    expect(bad.status).toBe(400);
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    expect(metrics).toContain('keyvault_emulator_requests_total{operation="getSecret",vault="kv1",status="502"} 1');
  });
});
