import { describe, expect, it } from "vitest";
import type { MountedVolume } from "../../../src/driver/volume/mounted-volumes.ts";
import { groupVolumes, refreshGroupKey } from "../../../src/driver/rotation/refresh-groups.ts";
import { nextRefreshAt, sameVersions } from "../../../src/driver/rotation/volume-refresh.ts";

function volume(overrides: Partial<Omit<MountedVolume, "pod">> & { sa?: string; podName?: string; ns?: string } = {}): MountedVolume {
  const ns = overrides.ns ?? "team-a";
  const pod = overrides.podName ?? "web-1";
  return {
    targetPath: `/pods/${pod}/mount`,
    volumeId: "v",
    mount: { id: 1, dev: "0:1", source: "secrets-store.csi.k8s.io", birthtimeNs: 1n },
    pod: { name: pod, namespace: ns, uid: `uid-${pod}` },
    spcName: overrides.spcName ?? "kv",
    provider: "azure",
    volumeContext: {
      secretProviderClass: overrides.spcName ?? "kv",
      "csi.storage.k8s.io/pod.name": pod,
      "csi.storage.k8s.io/pod.namespace": ns,
      "csi.storage.k8s.io/pod.uid": `uid-${pod}`,
      "csi.storage.k8s.io/serviceAccount.name": overrides.sa ?? "web",
      "csi.storage.k8s.io/serviceAccount.tokens": `{"api://AzureADTokenExchange":{"token":"jwt-of-${pod}"}}`,
      "csi.storage.k8s.io/ephemeral": "true",
      ...overrides.volumeContext,
    },
    secrets: overrides.secrets ?? {},
    objectVersions: [],
    lastRefresh: overrides.lastRefresh ?? 0,
    lastChange: 0,
    failures: overrides.failures ?? 0,
    jitterMs: overrides.jitterMs,
    refreshRequested: overrides.refreshRequested,
  };
}

describe("refresh groups", () => {
  it("pods of one service account with the same SecretProviderClass share, despite per-pod tokens", () => {
    expect(refreshGroupKey(volume({ podName: "web-1" }))).toBe(refreshGroupKey(volume({ podName: "web-2" })));
  });

  it.each([
    ["another service account (another workload identity)", { sa: "batch" }],
    ["another namespace", { ns: "team-b" }],
    ["another SecretProviderClass", { spcName: "kv2" }],
    ["other publish secrets (another service principal)", { secrets: { clientid: "x", clientsecret: "y" } }],
    ["a user-set volume attribute", { volumeContext: { extra: "1" } }],
  ])("%s never shares", (_what, overrides) => {
    expect(refreshGroupKey(volume({ podName: "web-2", ...overrides }))).not.toBe(refreshGroupKey(volume({ podName: "web-1" })));
  });

  it("groups a node's volumes", () => {
    const groups = groupVolumes([volume({ podName: "a" }), volume({ podName: "b" }), volume({ podName: "c", sa: "other" })]);
    expect([...groups.values()].map((g) => g.length).sort()).toEqual([1, 2]);
  });
});

describe("refresh schedule", () => {
  it("is due one interval (plus jitter) after the last refresh", () => {
    expect(nextRefreshAt(volume({ lastRefresh: 1000, jitterMs: 50 }), 10_000)).toBe(11_050);
  });

  it("backs off exponentially after failures, never beyond the interval", () => {
    const at = (failures: number) => nextRefreshAt(volume({ lastRefresh: 0, failures }), 120_000);
    expect([1, 2, 3, 4, 5, 6, 10].map(at)).toEqual([5_000, 10_000, 20_000, 40_000, 80_000, 120_000, 120_000]);
  });

  it("is due at once when a refresh was requested", () => {
    expect(nextRefreshAt(volume({ lastRefresh: Date.now(), refreshRequested: true }), 120_000)).toBe(0);
  });

  it("compares object versions by id", () => {
    expect(sameVersions([{ id: "a", version: "1" }, { id: "b", version: "2" }], [{ id: "b", version: "2" }, { id: "a", version: "1" }])).toBe(true);
    expect(sameVersions([{ id: "a", version: "1" }], [{ id: "a", version: "2" }])).toBe(false);
    expect(sameVersions([{ id: "a", version: "1" }], [])).toBe(false);
  });
});
