// Backend cost and resilience, measured with the emulator's request counters:
// concurrent mounts of one identity share reads and one token; different
// identities share no read or token, only the vault's challenge; a new
// identity's reads do not queue behind its first; a vault moved to another
// tenant is followed; throttling and 5xx are retried within the call's
// deadline; the per-vault budget queues requests.
import { status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.ts";
import { objectsYaml, tokensAttribute, type MountResponse } from "./client.ts";
import { startProvider, startTestEmulator, type RunningProvider } from "./env.ts";
import { makePki } from "./pki.ts";
import { makeMaterial, podAttributes, SP, SP2, WI_APP, type Material } from "./seed.ts";
import { waitFor } from "../harness/kube.ts";

let material: Material;
let emulator: Emulator;
let address: string;
const running: RunningProvider[] = [];

beforeAll(async () => {
  material = makeMaterial(makePki());
  ({ emulator, address } = await startTestEmulator(material.seed));
}, 120_000);

afterEach(async () => {
  emulator.faults.clear();
  await Promise.all(running.splice(0).map((p) => p.stop()));
});

afterAll(async () => {
  await emulator?.close();
});

async function freshProvider(flags: string[] = []): Promise<RunningProvider> {
  const p = await startProvider(emulator, address, flags);
  running.push(p);
  emulator.resetCounters();
  return p;
}

const costObjects = objectsYaml(Array.from({ length: 10 }, (_, i) => ({ objectName: `obj-${i}`, objectType: "secret" })));
const throttleObjects = objectsYaml(Array.from({ length: 5 }, (_, i) => ({ objectName: `t-${i}`, objectType: "secret" })));
const c = (name: string) => emulator.counters()[name] ?? 0;

function expectCostFiles(res: MountResponse) {
  expect(res.files.map((f) => [f.path, Buffer.from(f.contents).toString()])).toEqual(Array.from({ length: 10 }, (_, i) => [`obj-${i}`, `value-${i}`]));
}

const spMount = (p: RunningProvider, sp: { clientId: string; clientSecret: string }, pod = 0) =>
  p.client.mount({
    attributes: podAttributes({ keyvaultName: "kv-cost", tenantID: emulator.tenantId, objects: costObjects }, { name: `pod-${pod}`, namespace: "ns1", serviceAccount: "sa1" }),
    secrets: { clientid: sp.clientId, clientsecret: sp.clientSecret },
  });

describe("cost", () => {
  it("50 concurrent mounts of the same 10 objects with one identity: 10 reads, 1 token, 1 challenge", async () => {
    const p = await freshProvider();
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => spMount(p, SP, i)));
    results.forEach(expectCostFiles);
    const counts = emulator.counters();
    console.log("same identity:", JSON.stringify(counts));
    expect(c("getSecret:kv-cost")).toBeLessThanOrEqual(10);
    expect(c("getSecret:kv-cost")).toBe(10);
    expect(c(`token:${SP.clientId}`)).toBe(1);
    expect(c("challenge:kv-cost")).toBe(1);
    const metrics = await p.metrics();
    const dedup = Number(/keyvault_deduplicated_reads_total\{object_type="secret"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    expect(dedup).toBe(490);
    expect(metrics).toMatch(/token_requests_total\{mode="ServicePrincipal",result="ok"\} 1/);
  });

  it("different identities share no read or token, only the vault's challenge: one for all four", async () => {
    const p = await freshProvider();
    const wiToken = (ns: string, sa: string) => emulator.issueServiceAccountToken({ namespace: ns, serviceAccount: sa });
    const wiMount = (ns: string, sa: string, token: string, i: number) =>
      p.client.mount({
        attributes: podAttributes(
          { keyvaultName: "kv-cost", tenantID: emulator.tenantId, objects: costObjects, clientID: WI_APP, "csi.storage.k8s.io/serviceAccount.tokens": tokensAttribute(token) },
          { name: `wi-${i}`, namespace: ns, serviceAccount: sa },
        ),
      });
    const t1 = wiToken("ns1", "sa1");
    const t2 = wiToken("ns2", "sa2");
    const calls: Array<Promise<MountResponse>> = [];
    for (let i = 0; i < 12; i++) {
      calls.push(spMount(p, SP, i), spMount(p, SP2, i), wiMount("ns1", "sa1", t1, i), wiMount("ns2", "sa2", t2, i));
    }
    (await Promise.all(calls)).forEach(expectCostFiles);
    console.log("four identities:", JSON.stringify(emulator.counters()));
    // 4 identities x 10 objects; one token each (the WI app twice: two service accounts)
    expect(c("getSecret:kv-cost")).toBe(40);
    expect(c(`token:${SP.clientId}`)).toBe(1);
    expect(c(`token:${SP2.clientId}`)).toBe(1);
    expect(c(`token:${WI_APP}`)).toBe(2);
    // the first client's request without a token is answered by the vault; the others wait for that answer
    expect(c("challenge:kv-cost")).toBe(1);
  });

  it("a later identity's first mount sends no request without a token: 10 reads and its token", async () => {
    const p = await freshProvider();
    expectCostFiles(await spMount(p, SP));
    emulator.resetCounters();
    expectCostFiles(await spMount(p, SP2));
    expect(c("challenge:kv-cost")).toBe(0);
    expect(c(`token:${SP2.clientId}`)).toBe(1);
    expect(c("getSecret:kv-cost")).toBe(10);
  });

  it("a vault moved to another tenant: the kept challenge is checked with the vault once, and the mount succeeds", async () => {
    const p = await freshProvider();
    const otherTenant = "7e7e7e7e-0000-4000-8000-00000000a0a0";
    const mover = { clientId: "77777777-7777-4777-8777-777777777777", clientSecret: "mover-secret" };
    await emulator.seed({ vaults: [{ name: "kv-moving", secrets: [{ name: "moving", value: "before" }] }] });
    const mountMoving = (sp: { clientId: string; clientSecret: string }, tenantID: string) =>
      p.client.mount({
        attributes: podAttributes({ keyvaultName: "kv-moving", tenantID, objects: objectsYaml([{ objectName: "moving", objectType: "secret" }]) }),
        secrets: { clientid: sp.clientId, clientsecret: sp.clientSecret },
      });
    const before = await mountMoving(SP, emulator.tenantId);
    expect(Buffer.from(before.files[0]!.contents).toString()).toBe("before");
    expect(c("challenge:kv-moving")).toBe(1);

    await emulator.seed({
      vaults: [{ name: "kv-moving", tenantId: otherTenant }],
      applications: [{ name: "mover", tenantId: otherTenant, ...mover, roleAssignments: [{ vault: "kv-moving", role: "Key Vault Secrets User" }] }],
    });
    const after = await mountMoving(mover, otherTenant);
    expect(Buffer.from(after.files[0]!.contents).toString()).toBe("before");
    // the kept challenge named the old tenant: the vault was asked once more
    expect(c("challenge:kv-moving")).toBe(2);
    expect(c(`token:${mover.clientId}`)).toBe(1);
  });

  it("a new identity's other reads go while the vault still holds its first one, after that one challenge", async () => {
    const p = await freshProvider();
    // The first read sent with the token is held for 15 s; the others must not wait for its answer.
    emulator.faults.add({ kind: "latency", operation: "getSecret", count: 1, latencyMs: 15_000 });
    const mounted = spMount(p, SP);
    let answered = false;
    void mounted.then(() => (answered = true), () => (answered = true));
    await waitFor(() => c("getSecret:kv-cost") >= 9, { description: "the nine other reads served", timeoutMs: 14_000, intervalMs: 20 });
    expect(c("fault:latency:getSecret")).toBe(1);
    expect(answered).toBe(false);
    expectCostFiles(await mounted);
    expect(c("getSecret:kv-cost")).toBe(10);
    expect(c("challenge:kv-cost")).toBe(1);
    expect(c(`token:${SP.clientId}`)).toBe(1);
  });

  it("sequential mounts (rotation polls) reuse the cached token and client", async () => {
    const p = await freshProvider();
    for (let i = 0; i < 5; i++) expectCostFiles(await spMount(p, SP, i));
    expect(c("getSecret:kv-cost")).toBe(50);
    expect(c(`token:${SP.clientId}`)).toBe(1);
    expect(c("challenge:kv-cost")).toBe(1);
  });
});

describe("throttling and failures", () => {
  const mountThrottle = (p: RunningProvider, timeoutMs = 60_000, i = 0) =>
    p.client.mount(
      {
        attributes: podAttributes({ keyvaultName: "kv-throttle", tenantID: emulator.tenantId, objects: throttleObjects }, { name: `pod-${i}`, namespace: "ns1", serviceAccount: "sa1" }),
        secrets: { clientid: SP.clientId, clientsecret: SP.clientSecret },
      },
      timeoutMs,
    );

  it("a burst of 429 with Retry-After: mounts succeed within the deadline, request counts stay bounded", async () => {
    const p = await freshProvider();
    await mountThrottle(p); // warm: token and challenge done
    emulator.resetCounters();
    emulator.faults.add({ kind: "throttle", operation: "getSecret", vault: "kv-throttle", count: 8, retryAfterSeconds: 1 });
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => mountThrottle(p, 20_000, i)));
    const elapsed = Date.now() - started;
    for (const res of results) expect(res.files.map((f) => Buffer.from(f.contents).toString())).toEqual([0, 1, 2, 3, 4].map((i) => `throttled-${i}`));
    console.log("throttled:", JSON.stringify(emulator.counters()), `${elapsed} ms`);
    // Every mount succeeded inside its 20 s deadline (checked above). Retry-After
    // honoured: a floor of a wait the provider makes, which a slow machine only lengthens.
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(c("fault:throttle:getSecret")).toBe(8);
    expect(c("getSecret:kv-throttle")).toBe(5);
    const metrics = await p.metrics();
    expect(metrics).toMatch(/keyvault_retries_total\{reason="throttled"\} [1-8]\b/);
    expect(metrics).toMatch(/keyvault_http_requests_total\{vault="kv-throttle",operation="get_secret",status_code="429"\} 8/);
  });

  it("throttling longer than the deadline fails fast with UNAVAILABLE (transient), not after it", async () => {
    const p = await freshProvider();
    emulator.faults.add({ kind: "throttle", operation: "getSecret", vault: "kv-throttle", durationMs: 30_000, retryAfterSeconds: 10 });
    const err = await p.client.mountError(
      {
        attributes: podAttributes({ keyvaultName: "kv-throttle", tenantID: emulator.tenantId, objects: throttleObjects }),
        secrets: { clientid: SP.clientId, clientsecret: SP.clientSecret },
      },
      5_000,
    );
    // Not after the deadline: the provider's own UNAVAILABLE, after one attempt,
    // arrived before the client's 5 s deadline (which would read DEADLINE_EXCEEDED).
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details).toMatch(
      /^failed to mount objects, error: failed to get objectType:secret, objectName:t-\d, objectVersion:: gave up after 1 attempt\(s\), the next retry \(in 10s\) would pass the call's deadline: key vault "kv-throttle" \(https:\/\/kv-throttle\.vault\.azure\.net\/\): Throttled \(HTTP 429\): /,
    );
    expect(c("fault:throttle:getSecret")).toBeLessThanOrEqual(5);
  });

  it("5xx answers are retried with backoff", async () => {
    const p = await freshProvider();
    emulator.faults.add({ kind: "error", operation: "getSecret", vault: "kv-throttle", count: 3, status: 503 });
    const res = await mountThrottle(p);
    expect(res.files).toHaveLength(5);
    expect(c("getSecret:kv-throttle")).toBe(5);
    expect(await p.metrics()).toMatch(/keyvault_retries_total\{reason="(unavailable|throttled)"\} [1-3]\b/);
  });

  it("a slow vault hits the gRPC deadline: DEADLINE_EXCEEDED naming the object and vault", async () => {
    const p = await freshProvider();
    await mountThrottle(p);
    emulator.faults.add({ kind: "latency", operation: "getSecret", vault: "kv-throttle", latencyMs: 10_000, durationMs: 20_000 });
    const err = await p.client.mountError(
      {
        attributes: podAttributes({ keyvaultName: "kv-throttle", tenantID: emulator.tenantId, objects: throttleObjects }),
        secrets: { clientid: SP.clientId, clientsecret: SP.clientSecret },
      },
      2_000,
    );
    expect(err.code).toBe(status.DEADLINE_EXCEEDED);
    // the provider answers just before the deadline, with its own message (the
    // client's own deadline would read "Deadline exceeded"), not 10 s later
    expect(err.details).toMatch(
      /^failed to mount objects, error: failed to get objectType:secret, objectName:t-\d, objectVersion:: key vault "kv-throttle" \(https:\/\/kv-throttle\.vault\.azure\.net\/\): no answer before the call's deadline$/,
    );
  });

  it("the per-vault budget queues requests instead of sending them at once", async () => {
    const p = await freshProvider(["--keyvault-request-budget=4", "--keyvault-request-budget-window=1s"]);
    const started = Date.now();
    expectCostFiles(await spMount(p, SP));
    const elapsed = Date.now() - started;
    // 11 requests (1 challenge + 10 reads) at 4 per second after a burst of 4: ~1.75 s
    // at least (a floor of the provider's own waits, which a slow machine only lengthens)
    expect(elapsed).toBeGreaterThanOrEqual(1_500);
    expect(await p.metrics()).toMatch(/keyvault_budget_waits_total\{vault="kv-cost"\} [1-9]/);
    // a budget that cannot serve the mount before its deadline fails fast
    const slow = await freshProvider(["--keyvault-request-budget=2", "--keyvault-request-budget-window=60s"]);
    const err = await slow.client.mountError(
      {
        attributes: podAttributes({ keyvaultName: "kv-cost", tenantID: emulator.tenantId, objects: costObjects }),
        secrets: { clientid: SP.clientId, clientsecret: SP.clientSecret },
      },
      3_000,
    );
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.details).toMatch(/objectName:obj-\d.*request budget for key vault "kv-cost" is used up/);
  });
});
