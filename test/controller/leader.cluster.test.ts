// Two replicas of the controller: one leads (holds the Lease) and syncs, the
// other stands by, ready, and syncs nothing; a leader that shuts down hands
// the Lease back and the stand-by takes over at once; a leader that dies
// without a word is replaced once its Lease runs out.
import { CoordinationV1Api, type V1Secret } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiErrorCode, waitFor } from "../harness/kube.ts";
import { metricValue, secretProviderClassBody, secretSyncBody, SPC_GROUP, SS_GROUP, SS_VERSION, startSyncStack, type ControllerProcess, type SyncStack } from "./stack.ts";

const NS = "ssc-leader";
const SYSTEM_NS = "ssc-leader-system";
const VAULT = "ssc-leader-kv";
const LEASE = "secrets-store-sync-controller-leader";
// Short timings, with room for a loaded machine: a renewal may take seconds there.
const ELECTION = ["--leader-elect", "--leader-elect-lease-duration=10s", "--leader-elect-renew-deadline=8s", "--leader-elect-retry-period=1s", "--rotation-poll-interval=0"];

let stack: SyncStack;
const replicas: ControllerProcess[] = [];

async function readSecret(name: string): Promise<V1Secret | undefined> {
  try {
    return await stack.core.readNamespacedSecret({ name, namespace: NS });
  } catch (err) {
    if (apiErrorCode(err) === 404) return undefined;
    throw err;
  }
}

async function sync(name: string): Promise<void> {
  await stack.custom.createNamespacedCustomObject({
    group: SS_GROUP,
    version: SS_VERSION,
    namespace: NS,
    plural: "secretsyncs",
    body: secretSyncBody(name, { secretProviderClassName: "kv", serviceAccountName: "app", secretObject: { type: "Opaque", data: [{ sourcePath: "value", targetKey: "value" }] } }),
  });
  await waitFor(() => readSecret(name), { description: `secret ${name}`, timeoutMs: 60_000 });
}

const leaderMetric = async (p: ControllerProcess) => metricValue(await p.metrics(), "secretsync_leader");
const reconciles = async (p: ControllerProcess) => metricValue(await p.metrics(), "secretsync_reconcile_total");
/** The Secret appears before its reconcile is counted (the status is written after it): wait for the count. */
const hasReconciled = (p: ControllerProcess) => waitFor(async () => (await reconciles(p)) > 0, { description: `${p.podName} to count a reconcile` });
async function holder(): Promise<string> {
  const lease = await stack.kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: LEASE, namespace: SYSTEM_NS });
  return lease.spec?.holderIdentity ?? "";
}
async function waitForLeader(candidates: ControllerProcess[]): Promise<ControllerProcess> {
  return waitFor(
    async () => {
      const leading = [];
      for (const p of candidates) if ((await leaderMetric(p)) === 1) leading.push(p);
      return leading.length === 1 ? leading[0] : undefined;
    },
    { description: "exactly one leader", timeoutMs: 60_000, intervalMs: 250 },
  );
}

beforeAll(async () => {
  stack = await startSyncStack({ systemNamespace: SYSTEM_NS, workloads: [[NS, "app"]], vaults: [{ name: VAULT, secrets: [{ name: "value", value: "v1" }] }] });
  await stack.core.createNamespace({ body: { metadata: { name: NS } } });
  await stack.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: "app" } } });
  await stack.custom.createNamespacedCustomObject({
    group: SPC_GROUP,
    version: "v1",
    namespace: NS,
    plural: "secretproviderclasses",
    body: secretProviderClassBody("kv", VAULT, stack.emulator.tenantId, ["objectName: value\nobjectType: secret"]),
  });
}, 240_000);

afterAll(async () => {
  await stack?.core.deleteNamespace({ name: NS }).catch(() => undefined);
  await stack?.stop();
});

describe("two replicas", () => {
  let leader: ControllerProcess;
  let standby: ControllerProcess;

  it("elect one leader, which syncs; the other stands by, ready, and syncs nothing", async () => {
    replicas.push(await stack.startController({ args: ELECTION, podName: "ssc-a" }), await stack.startController({ args: ELECTION, podName: "ssc-b" }));
    leader = await waitForLeader(replicas);
    standby = replicas.find((p) => p !== leader)!;
    expect(await holder()).toMatch(new RegExp(`^${leader.podName}_`));
    await sync("first");
    await hasReconciled(leader);
    expect(await leaderMetric(standby)).toBe(0);
    expect(await reconciles(standby)).toBe(0);
    expect(await standby.ready()).toBe(200);
    expect(await leader.ready()).toBe(200);
  });

  it("hand over at once when the leader shuts down", async () => {
    expect(await leader.stop()).toBe(0);
    expect(leader.output()).toContain('"leadership released"');
    const next = await waitForLeader([standby]);
    expect(await holder()).toMatch(new RegExp(`^${next.podName}_`));
    await sync("second");
    await hasReconciled(next);
    leader = next;
  });

  it("replace a leader that died without a word once its Lease runs out", async () => {
    const third = await stack.startController({ args: ELECTION, podName: "ssc-c" });
    replicas.push(third);
    // The new replica stands by while the leader renews.
    await waitFor(async () => (await third.ready()) === 200, { description: "the third replica to be ready" });
    expect(await leaderMetric(third)).toBe(0);
    await leader.kill();
    await waitForLeader([third]);
    expect(await holder()).toMatch(/^ssc-c_/);
    await sync("third");
    await hasReconciled(third);
  });
});
