// The event processor with stand-in targets: which events refresh what,
// and which cost nothing (duplicates, reordered and stale deliveries,
// unused objects, versions already held), and the bounds of everything an
// event can make it remember.
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { ClassObjectIndex, type ClassRef } from "../../../src/controller/events/class-objects.ts";
import { EventProcessor, EventsBusy } from "../../../src/controller/events/event-processor.ts";
import type { ExpiryNotices } from "../../../src/controller/events/expiry.ts";
import type { KeyVaultEvent } from "../../../src/controller/events/key-vault-event.ts";
import type { SecretSyncRefresh } from "../../../src/controller/events/secret-sync-refresh.ts";
import type { VolumeSignals } from "../../../src/controller/events/volume-signals.ts";
import { ControllerMetrics } from "../../../src/controller/metrics.ts";
import { createLogger } from "../../../src/shared/logger.ts";
import type { SecretProviderClass } from "../../../src/shared/kube/kube-types.ts";

const V1 = "11111111111111111111111111111111";
const V2 = "22222222222222222222222222222222";

function azureClass(name: string, objects: string[], namespace = "team-a", vault = "kv-one"): SecretProviderClass {
  const array = ["array:", ...objects.map((o) => `  - |\n    objectName: ${o}\n    objectType: secret`)].join("\n");
  return { metadata: { name, namespace, uid: `uid-${name}` }, spec: { provider: "azure", parameters: { keyvaultName: vault, objects: array } } };
}

interface Setup {
  processor: EventProcessor;
  metrics: ControllerMetrics;
  /** Refreshes asked for, as "namespace/class@version". */
  refreshed: string[];
  /** Versions every target holds already. */
  held: Set<string>;
  fail: { next: boolean };
  release?: () => void;
}

function setup(options: { maxTracked?: number; maxPending?: number; block?: boolean } = {}): Setup {
  const index = new ClassObjectIndex(parse);
  index.set(azureClass("kv", ["db-password", "api-key"]));
  index.set(azureClass("kv-b", ["db-password"], "team-b"));
  index.set(azureClass("pinned", ["pinned-only"]));
  index.set({ ...azureClass("pinned", []), spec: { provider: "azure", parameters: { keyvaultName: "kv-one", objects: "array:\n  - |\n    objectName: fixed\n    objectType: secret\n    objectVersion: abc" } } });
  const refreshed: string[] = [];
  const held = new Set<string>();
  const fail = { next: false };
  let gate: Promise<void> = Promise.resolve();
  const s: Setup = { processor: undefined as never, metrics: new ControllerMetrics({ defaultMetrics: false }), refreshed, held, fail };
  if (options.block) gate = new Promise((r) => (s.release = r));
  const target = async (ref: ClassRef, version: string | undefined) => {
    await gate;
    if (fail.next) {
      fail.next = false;
      throw new Error("provider unavailable");
    }
    const where = `${ref.namespace}/${ref.name}@${version ?? "*"}`;
    if (version !== undefined && (held.has(version) || refreshed.includes(where))) return { current: 1 };
    refreshed.push(where);
    return { current: 0 };
  };
  const secretSyncs = {
    refresh: async (ref: ClassRef, version: string | undefined) => {
      const r = await target(ref, version);
      return { synced: r.current ? 0 : 1, current: r.current, failed: 0 };
    },
    secretSyncsOfClass: () => [],
  } as unknown as SecretSyncRefresh;
  const volumes = { signal: () => Promise.resolve({ signalled: 0, current: 0 }) } as unknown as VolumeSignals;
  const expiry = { notice: () => Promise.resolve(0), superseded: () => undefined } as unknown as ExpiryNotices;
  s.processor = new EventProcessor(
    { index, secretSyncs, volumes, expiry, metrics: s.metrics, logger: createLogger({ name: "test", level: "silent" }) },
    { maxTracked: options.maxTracked ?? 1000, maxPending: options.maxPending ?? 100, concurrency: 4, accessCheckIntervalMs: 60_000 },
  );
  return s;
}

let n = 0;
function newVersion(objectName: string, version: string, time: number, extra: Partial<KeyVaultEvent> = {}): KeyVaultEvent {
  return { id: `id-${++n}`, kind: "NewVersionCreated", type: "Microsoft.KeyVault.SecretNewVersionCreated", vault: "kv-one", objectType: "Secret", objectName, version, time, ...extra };
}

describe("event processor", () => {
  it("refreshes every class that reads the object, in every namespace, once", async () => {
    const s = setup();
    expect(await s.processor.handle(newVersion("DB-Password", V1, 1000), "webhook")).toBe("refreshed");
    expect(s.refreshed.sort()).toEqual([`team-a/kv@${V1}`, `team-b/kv-b@${V1}`]);
  });

  it("costs nothing for a duplicate, by id or by version, and for a certificate's second object type", async () => {
    const s = setup();
    const event = newVersion("db-password", V1, 1000);
    await s.processor.handle(event, "webhook");
    s.refreshed.length = 0;
    expect(await s.processor.handle(event, "webhook")).toBe("duplicate");
    expect(await s.processor.handle({ ...event, id: "another-id" }, "pull")).toBe("duplicate");
    expect(await s.processor.handle({ ...event, id: "as-key", objectType: "Key", type: "Microsoft.KeyVault.KeyNewVersionCreated" }, "pull")).toBe("duplicate");
    expect(s.refreshed).toEqual([]);
  });

  it("treats a delivery of the same event while it is handled as a duplicate of it", async () => {
    const s = setup({ block: true });
    const event = newVersion("api-key", V1, 1000);
    const first = s.processor.handle(event, "webhook");
    const again = s.processor.handle(event, "pull");
    s.release!();
    expect(await Promise.all([first, again])).toEqual(["refreshed", "duplicate"]);
    expect(s.refreshed).toEqual([`team-a/kv@${V1}`]);
  });

  it("handles a certificate's three events for one version arriving together with one refresh", async () => {
    const s = setup({ block: true });
    const cert = newVersion("api-key", V1, 1000, { objectType: "Certificate", type: "Microsoft.KeyVault.CertificateNewVersionCreated" });
    const handled = [
      s.processor.handle(cert, "webhook"),
      s.processor.handle({ ...cert, id: "its-key", objectType: "Key", type: "Microsoft.KeyVault.KeyNewVersionCreated" }, "webhook"),
      s.processor.handle({ ...cert, id: "its-secret", objectType: "Secret", type: "Microsoft.KeyVault.SecretNewVersionCreated" }, "webhook"),
    ];
    s.release!();
    expect(await Promise.all(handled)).toEqual(["refreshed", "duplicate", "duplicate"]);
    expect(s.refreshed).toEqual([`team-a/kv@${V1}`]);
  });

  it("ignores an older version's event that arrives after a newer one (reordered), and versions already held", async () => {
    const s = setup();
    expect(await s.processor.handle(newVersion("db-password", V2, 2000), "webhook")).toBe("refreshed");
    expect(await s.processor.handle(newVersion("db-password", V1, 1000), "webhook")).toBe("stale");
    s.held.add("33333333333333333333333333333333");
    expect(await s.processor.handle(newVersion("api-key", "33333333333333333333333333333333", 3000), "webhook")).toBe("current");
    expect(s.refreshed.sort()).toEqual([`team-a/kv@${V2}`, `team-b/kv-b@${V2}`]);
  });

  it("a new version that finds no volume yet looks again: a pod indexed a moment after the event is signalled", async () => {
    const index = new ClassObjectIndex(parse);
    index.set(azureClass("kv", ["db-password"]));
    const signalled: string[] = [];
    let podIndexed = false;
    let looks = 0;
    const volumes = {
      signal: (namespace: string, name: string, version: string | undefined) => {
        looks++;
        if (!podIndexed) return Promise.resolve({ signalled: 0, current: 0 });
        signalled.push(`${namespace}/${name}@${version}`);
        return Promise.resolve({ signalled: 1, current: 0 });
      },
    } as unknown as VolumeSignals;
    const secretSyncs = { refresh: () => Promise.resolve({ synced: 0, current: 0, failed: 0 }) } as unknown as SecretSyncRefresh;
    const expiry = { notice: () => Promise.resolve(0), superseded: () => undefined } as unknown as ExpiryNotices;
    const processor = new EventProcessor(
      { index, secretSyncs, volumes, expiry, metrics: new ControllerMetrics({ defaultMetrics: false }), logger: createLogger({ name: "test", level: "silent" }) },
      { maxTracked: 100, maxPending: 10, concurrency: 2, accessCheckIntervalMs: 60_000, recheckAfterMs: [30, 60, 90] },
    );
    expect(await processor.handle(newVersion("db-password", V1, 1000), "webhook")).toBe("unused");
    expect(looks).toBe(1);
    // the driver's status object reaches the controller's index after the event
    podIndexed = true;
    for (let i = 0; i < 200 && signalled.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(signalled).toEqual([`team-a/kv@${V1}`]);
    // found once: no more looks
    const after = looks;
    await new Promise((r) => setTimeout(r, 150));
    expect(looks).toBe(after);
  });

  it("a flood of new versions that find nothing keeps at most maxTracked waiting for a second look", async () => {
    const index = new ClassObjectIndex(parse);
    const names = Array.from({ length: 40 }, (_, i) => `flood-${i}`);
    index.set(azureClass("wide", names));
    const volumes = { signal: () => Promise.resolve({ signalled: 0, current: 0 }) } as unknown as VolumeSignals;
    const secretSyncs = { refresh: () => Promise.resolve({ synced: 0, current: 0, failed: 0 }) } as unknown as SecretSyncRefresh;
    const expiry = { notice: () => Promise.resolve(0), superseded: () => undefined } as unknown as ExpiryNotices;
    const processor = new EventProcessor(
      { index, secretSyncs, volumes, expiry, metrics: new ControllerMetrics({ defaultMetrics: false }), logger: createLogger({ name: "test", level: "silent" }) },
      { maxTracked: 5, maxPending: 100, concurrency: 4, accessCheckIntervalMs: 60_000, recheckAfterMs: [60_000] },
    );
    for (const [i, name] of names.entries()) expect(await processor.handle(newVersion(name, V1, 1000 + i), "webhook")).toBe("unused");
    expect(processor.tracked.rechecks).toBe(5);
  });

  it("does not look again for an object no class reads, nor for a version a newer one replaced meanwhile", async () => {
    const index = new ClassObjectIndex(parse);
    index.set(azureClass("kv", ["db-password"]));
    const versions: Array<string | undefined> = [];
    let podIndexed = false;
    const volumes = {
      signal: (_namespace: string, _name: string, version: string | undefined) => {
        versions.push(version);
        return Promise.resolve(podIndexed ? { signalled: 1, current: 0 } : { signalled: 0, current: 0 });
      },
    } as unknown as VolumeSignals;
    const secretSyncs = { refresh: () => Promise.resolve({ synced: 0, current: 0, failed: 0 }) } as unknown as SecretSyncRefresh;
    const expiry = { notice: () => Promise.resolve(0), superseded: () => undefined } as unknown as ExpiryNotices;
    const processor = new EventProcessor(
      { index, secretSyncs, volumes, expiry, metrics: new ControllerMetrics({ defaultMetrics: false }), logger: createLogger({ name: "test", level: "silent" }) },
      { maxTracked: 100, maxPending: 10, concurrency: 2, accessCheckIntervalMs: 60_000, recheckAfterMs: [50] },
    );
    expect(await processor.handle(newVersion("nobody-reads-me", V1, 1000), "webhook")).toBe("unused");
    expect(await processor.handle(newVersion("db-password", V1, 1000), "webhook")).toBe("unused");
    podIndexed = true;
    expect(await processor.handle(newVersion("db-password", V2, 2000), "webhook")).toBe("refreshed");
    await new Promise((r) => setTimeout(r, 150));
    // V1's look was dropped: V2 came after it
    expect(versions).toEqual([V1, V2]);
  });

  it("reads nothing for an object no class reads, or one only a pinned version reads", async () => {
    const s = setup();
    expect(await s.processor.handle(newVersion("nobody-reads-me", V1, 1000), "webhook")).toBe("unused");
    expect(await s.processor.handle(newVersion("fixed", V1, 1000), "webhook")).toBe("unused");
    expect(await s.processor.handle({ ...newVersion("db-password", V1, 1000), vault: "kv-other" }, "webhook")).toBe("unused");
    expect(s.refreshed).toEqual([]);
    expect(s.processor.tracked).toMatchObject({ ids: 0, versions: 0, objects: 0 });
  });

  it("leaves a version not valid yet to the rotation poll", async () => {
    const s = setup();
    expect(await s.processor.handle(newVersion("db-password", V1, 1000, { notBefore: Date.now() / 1000 + 3600 }), "webhook")).toBe("not_yet_valid");
    expect(s.refreshed).toEqual([]);
  });

  it("fails an event whose refresh failed, and handles its redelivery", async () => {
    const s = setup();
    const event = newVersion("api-key", V1, 1000);
    s.fail.next = true;
    await expect(s.processor.handle(event, "pull")).rejects.toThrow(/provider unavailable/);
    expect(await s.processor.handle(event, "pull")).toBe("refreshed");
    expect(s.refreshed).toEqual([`team-a/kv@${V1}`]);
  });

  it("re-checks a vault's access at most once a minute", async () => {
    const s = setup();
    const changed = (id: string): KeyVaultEvent => ({ id, kind: "VaultAccessPolicyChanged", type: "Microsoft.KeyVault.VaultAccessPolicyChanged", vault: "kv-one" });
    expect(await s.processor.handle(changed("a"), "webhook")).toBe("refreshed");
    expect(await s.processor.handle(changed("b"), "webhook")).toBe("rate_limited");
    expect(s.refreshed.sort()).toEqual(["team-a/kv@*", "team-a/pinned@*", "team-b/kv-b@*"]);
  });

  it("takes a failed access re-check as not made: the retry re-checks at once", async () => {
    const s = setup();
    const changed: KeyVaultEvent = { id: "a", kind: "VaultAccessPolicyChanged", type: "Microsoft.KeyVault.VaultAccessPolicyChanged", vault: "kv-one" };
    s.fail.next = true;
    await expect(s.processor.handle(changed, "webhook")).rejects.toThrow(/provider unavailable/);
    expect(await s.processor.handle(changed, "webhook")).toBe("refreshed");
  });

  it("is busy, not swamped, past its bound of pending events; a batch larger than the bound alone is taken only when idle", async () => {
    const s = setup({ maxPending: 10, block: true });
    expect(() => s.processor.admit(10)).not.toThrow();
    // Refused, a batch of 11 would be refused on every retry: taken when nothing else is pending.
    expect(() => s.processor.admit(11)).not.toThrow();
    const handling = s.processor.handle(newVersion("api-key", V1, 1000), "webhook");
    expect(() => s.processor.admit(10)).toThrow(EventsBusy);
    expect(() => s.processor.admit(11)).toThrow(EventsBusy);
    expect(() => s.processor.admit(9)).not.toThrow();
    s.release!();
    await handling;
  });

  it("stays within its bounds when a sender floods unique ids and versions of a used object", async () => {
    const s = setup({ maxTracked: 50 });
    for (let i = 0; i < 500; i++) {
      const version = i.toString(16).padStart(32, "0");
      s.held.add(version);
      await s.processor.handle(newVersion("db-password", version, 10_000 + i), "webhook");
      await s.processor.handle(newVersion(`unused-${i}`, version, 10_000 + i), "webhook");
    }
    const tracked = s.processor.tracked;
    expect(tracked.ids).toBeLessThanOrEqual(50);
    expect(tracked.versions).toBeLessThanOrEqual(50);
    expect(tracked.objects).toBeLessThanOrEqual(50);
    expect(tracked.inFlight).toBe(0);
    // Metric labels come from fixed sets: the flood adds no series.
    const series = (await s.metrics.registry.getSingleMetricAsString("keyvault_events_total")).split("\n").filter((l) => l.startsWith("keyvault_events_total{"));
    expect(series.length).toBeLessThanOrEqual(3);
    expect(series.join("\n")).not.toContain("unused-");
  });
});
