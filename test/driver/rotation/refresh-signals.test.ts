// Refresh requests on status objects, as one module: a request refreshes the
// refresh groups of its namespace and class on this node once each, skips
// groups that hold the version, and holds a flood of requests to a bounded
// rate (the cluster tests run it against a real API server).
import { describe, expect, it, vi } from "vitest";
import type { DriverContext } from "../../../src/driver/context.ts";
import type { KubeClient } from "../../../src/driver/kube/kube-client.ts";
import { BURST, REFILL_MS, RefreshSignals } from "../../../src/driver/rotation/refresh-signals.ts";
import { MountedVolumes, type MountedVolume } from "../../../src/driver/volume/mounted-volumes.ts";
import { refreshGroupKey } from "../../../src/driver/rotation/refresh-groups.ts";
import { createLogger } from "../../../src/shared/logger.ts";
import type { SecretProviderClassPodStatus } from "../../../src/shared/kube/kube-types.ts";

const V_NEW = "22222222222222222222222222222222";

function volume(pod: string, options: { ns?: string; sa?: string; spc?: string; version?: string } = {}): MountedVolume {
  const ns = options.ns ?? "team-a";
  return {
    targetPath: `/pods/${pod}/mount`,
    volumeId: pod,
    mount: { id: 1, dev: "0:1", source: "secrets-store.csi.k8s.io", birthtimeNs: 1n },
    pod: { name: pod, namespace: ns, uid: `uid-${pod}` },
    spcName: options.spc ?? "kv",
    provider: "azure",
    volumeContext: { secretProviderClass: options.spc ?? "kv", "csi.storage.k8s.io/serviceAccount.name": options.sa ?? "web", "csi.storage.k8s.io/pod.name": pod },
    secrets: {},
    objectVersions: [{ id: "secret/db-password", version: options.version ?? "11111111111111111111111111111111" }],
    lastRefresh: 0,
    lastChange: 0,
    failures: 0,
  };
}

function setup(volumes: MountedVolume[], now: () => number = Date.now) {
  const record = new MountedVolumes();
  for (const v of volumes) record.set(v);
  const ctx = { options: { nodeId: "node-1" }, logger: createLogger({ name: "test", level: "silent" }), volumes: record } as unknown as DriverContext;
  const refreshed: string[] = [];
  const signals = new RefreshSignals(ctx, {} as KubeClient, (v) => (refreshed.push(refreshGroupKey(v)), Promise.resolve()), now);
  return { signals, refreshed };
}

function statusObject(name: string, at: string, version?: string, ns = "team-a", spc = "kv"): SecretProviderClassPodStatus {
  return {
    apiVersion: "secrets-store.csi.x-k8s.io/v1",
    kind: "SecretProviderClassPodStatus",
    metadata: {
      name,
      namespace: ns,
      annotations: { "secrets-store.csi.k8s.io/refresh-requested-at": at, ...(version ? { "secrets-store.csi.k8s.io/refresh-version": version } : {}) },
    },
    status: { podName: name, secretProviderClassName: spc, mounted: true, targetPath: "", objects: [] },
  };
}

describe("refresh requests on status objects", () => {
  it("refreshes each refresh group of the namespace and class once, whatever the number of pods", () => {
    const pods = [...Array.from({ length: 50 }, (_, i) => volume(`web-${i}`)), volume("api-1", { sa: "api" }), volume("other-ns", { ns: "team-b" }), volume("other-class", { spc: "kv-2" })];
    const { signals, refreshed } = setup(pods);
    signals.observe(statusObject("web-0-team-a-kv", new Date().toISOString(), V_NEW), false);
    expect(refreshed.sort()).toEqual([refreshGroupKey(pods[0]!), refreshGroupKey(pods[50]!)].sort());
  });

  it("marks the group's volumes requested, so a request that joins a refresh already under way is not lost", () => {
    const pods = [volume("web-1"), volume("web-2"), volume("other-class", { spc: "kv-2" })];
    const { signals, refreshed } = setup(pods);
    signals.observe(statusObject("s", new Date().toISOString(), V_NEW), false);
    expect(refreshed).toHaveLength(1);
    // A refresh that started before the request cleared its marks then: these stay until one starts after it.
    expect(pods.map((v) => v.refreshRequested ?? false)).toEqual([true, true, false]);
  });

  it("does nothing for groups that hold the version, for a value seen before, or for a stale request found at start-up", () => {
    const { signals, refreshed } = setup([volume("web-1", { version: V_NEW })]);
    const at = new Date().toISOString();
    signals.observe(statusObject("s", at, V_NEW), false);
    expect(signals.counts).toMatchObject({ refreshed: 0, current: 1 });
    const other = setup([volume("web-1")]);
    other.signals.observe(statusObject("s", "2020-01-01T00:00:00Z", V_NEW), true);
    other.signals.observe(statusObject("s", "2020-01-01T00:00:00Z", V_NEW), false);
    expect(other.refreshed).toEqual([]);
    other.signals.observe(statusObject("s", at, V_NEW), true);
    expect(other.refreshed).toHaveLength(1);
    expect(refreshed).toEqual([]);
  });

  it("refreshes without a version (an access re-check) whatever the volumes hold", () => {
    const { signals, refreshed } = setup([volume("web-1", { version: V_NEW })]);
    signals.observe(statusObject("s", new Date().toISOString()), false);
    expect(refreshed).toHaveLength(1);
  });

  it("holds a flood of requests from a tenant to a burst, then one per refill period, merged", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    try {
      const { signals, refreshed } = setup([volume("web-1"), volume("victim", { ns: "team-b" })]);
      for (let i = 0; i < 200; i++) signals.observe(statusObject("web-1-team-a-kv", `flood-${i}`), false);
      expect(refreshed).toHaveLength(BURST);
      expect(signals.counts.limited).toBe(200 - BURST);
      // Only the flooding namespace's own group was touched.
      expect(new Set(refreshed).size).toBe(1);
      await vi.advanceTimersByTimeAsync(REFILL_MS);
      expect(refreshed).toHaveLength(BURST + 1);
      await vi.advanceTimersByTimeAsync(10 * REFILL_MS);
      // The held requests were merged into one refresh.
      expect(refreshed).toHaveLength(BURST + 1);
      signals.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it("merges held requests for different versions into a refresh whatever the group holds, so neither is skipped", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    try {
      const held = "33333333333333333333333333333333";
      const web = volume("web-1", { version: held });
      const { signals, refreshed } = setup([web]);
      for (let i = 0; i < BURST; i++) signals.observe(statusObject("s", `burst-${i}`), false);
      expect(refreshed).toHaveLength(BURST);
      // Held: a new version, then one the group holds already.
      signals.observe(statusObject("s", "late-1", V_NEW), false);
      signals.observe(statusObject("s", "late-2", held), false);
      await vi.advanceTimersByTimeAsync(REFILL_MS);
      expect(refreshed).toHaveLength(BURST + 1);
      signals.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});
