// Restart on rotation as one module: which annotations make a workload
// follow what (ours and Reloader's), and that a content change rolls a
// following workload once, never for the same content again, and no
// sooner than the minimum interval after the last rollout.
import { describe, expect, it, vi } from "vitest";
import { followingOf, rolloutAnnotation, type RawPodTemplate } from "../../../src/controller/rollout/following.ts";
import { Restarter, versionsHash } from "../../../src/controller/rollout/restarter.ts";
import type { TrackedWorkload, WorkloadIndex } from "../../../src/controller/rollout/workloads.ts";
import type { EventRecorder } from "../../../src/controller/kube/event-recorder.ts";
import { ControllerMetrics } from "../../../src/controller/metrics.ts";
import { createLogger } from "../../../src/shared/logger.ts";
import type { SecretProviderClass } from "../../../src/shared/kube/kube-types.ts";
import { apiError, recordingRest } from "../fakes.ts";
import type { RequestSpec } from "../../../src/shared/kube/kube-rest.ts";

const template: RawPodTemplate = {
  spec: {
    containers: [{ env: [{ valueFrom: { secretKeyRef: { name: "db" } } }], envFrom: [{ secretRef: { name: "api" } }] }],
    volumes: [
      { csi: { driver: "secrets-store.csi.k8s.io", volumeAttributes: { secretProviderClass: "kv" } } },
      { csi: { driver: "other.csi.example.com", volumeAttributes: { secretProviderClass: "not-ours" } } },
      { secret: { secretName: "tls" } },
    ],
  },
};

describe("what a workload follows", () => {
  it("reads our annotation and Reloader's", () => {
    expect(followingOf({ "secrets-store.csi.x-k8s.io/restart-on-rotation": "true" }, template)).toEqual({ classes: ["kv"], secrets: ["db", "api", "tls"] });
    expect(followingOf({ "reloader.stakater.com/auto": "true" }, template)).toEqual({ classes: ["kv"], secrets: ["db", "api", "tls"] });
    expect(followingOf({ "secretproviderclass.reloader.stakater.com/auto": "true" }, template)).toEqual({ classes: ["kv"], secrets: [] });
    expect(followingOf({ "secret.reloader.stakater.com/auto": "true" }, template)).toEqual({ classes: [], secrets: ["db", "api", "tls"] });
    expect(followingOf({ "secretproviderclass.reloader.stakater.com/reload": "a, b ,Bad_Name", "secret.reloader.stakater.com/reload": "x" }, undefined)).toEqual({
      classes: ["a", "b"],
      secrets: ["x"],
    });
    expect(followingOf({ "reloader.stakater.com/auto": "false" }, template)).toBeUndefined();
    expect(followingOf({}, template)).toBeUndefined();
  });

  it("names its pod template annotations within Kubernetes' limits", () => {
    expect(rolloutAnnotation("spc", "kv")).toBe("rotation.secrets-store.csi.x-k8s.io/spc.kv");
    const long = rolloutAnnotation("secret", "a".repeat(200));
    expect(long.split("/")[1]!.length).toBeLessThanOrEqual(63);
    expect(long).not.toBe(rolloutAnnotation("secret", "a".repeat(201)));
  });
});

function workload(name: string, following: { classes: string[]; secrets: string[] }, templateAnnotations: Record<string, string> = {}): TrackedWorkload {
  return { kind: "Deployment", metadata: { name, namespace: "team-a", uid: `uid-${name}` }, following, templateAnnotations };
}

function setup(workloads: TrackedWorkload[], minIntervalMs = 0, spc?: SecretProviderClass, answer: (spec: RequestSpec) => unknown = () => ({})) {
  const { rest, calls } = recordingRest(answer);
  const rolled = new Map<string, Record<string, string>>();
  const index = {
    followingClass: (ns: string, c: string) => workloads.filter((w) => w.metadata.namespace === ns && w.following?.classes.includes(c)),
    followingSecret: (ns: string, s: string) => workloads.filter((w) => w.metadata.namespace === ns && w.following?.secrets.includes(s)),
    recorded: (w: TrackedWorkload, a: string) => rolled.get(w.metadata.uid!)?.[a] ?? w.templateAnnotations[a],
    rememberRolled: (w: TrackedWorkload, a: Record<string, string>) => rolled.set(w.metadata.uid!, { ...rolled.get(w.metadata.uid!), ...a }),
  } as unknown as WorkloadIndex;
  const events: string[] = [];
  const recorder = { recordFor: (_o: unknown, type: string, reason: string, message: string) => (events.push(`${type} ${reason} ${message}`), Promise.resolve()) } as unknown as EventRecorder;
  const restarter = new Restarter(
    { rest, workloads: index, secretProviderClass: () => spc, events: recorder, metrics: new ControllerMetrics({ defaultMetrics: false }), logger: createLogger({ name: "test", level: "silent" }) },
    { minIntervalMs },
  );
  const patches = () => calls.filter((c) => c.method === "PATCH");
  return { restarter, patches, events };
}

/** Lets the rollouts due now run: their zero-delay timers fire before this later one, then their patch and Event settle. */
const settle = async () => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 1));
};
const v = (id: string, version: string) => ({ id, version });

describe("restarter", () => {
  it("rolls a following workload once per content change, with an Event naming the versions", async () => {
    const { restarter, patches, events } = setup([workload("web", { classes: ["kv"], secrets: [] }), workload("other", { classes: ["kv-2"], secrets: [] })]);
    const before = [v("secret/db-password", "aaa"), v("secret/api-key", "kkk")];
    const after = [v("secret/db-password", "bbb"), v("secret/api-key", "kkk")];
    restarter.classChanged("team-a", "kv", before, after);
    // Other pods and nodes report the same move: the same content, nothing more.
    restarter.classChanged("team-a", "kv", before, after);
    await settle();
    restarter.classChanged("team-a", "kv", before, after);
    await settle();
    expect(patches()).toHaveLength(1);
    expect(patches()[0]).toMatchObject({
      path: "/apis/apps/v1/namespaces/team-a/deployments/web",
      contentType: "application/merge-patch+json",
      body: { spec: { template: { metadata: { annotations: { "rotation.secrets-store.csi.x-k8s.io/spc.kv": versionsHash("team-a", "kv", after) } } } } },
    });
    expect(events).toEqual(["Normal RestartedForRotation restarting all replicas: secretproviderclass team-a/kv has new content (secret/db-password version bbb)"]);
  });

  it("does not roll a workload whose template already records the content", async () => {
    const after = [v("secret/db-password", "bbb")];
    const { restarter, patches } = setup([workload("web", { classes: ["kv"], secrets: [] }, { "rotation.secrets-store.csi.x-k8s.io/spc.kv": versionsHash("team-a", "kv", after) })]);
    restarter.classChanged("team-a", "kv", [v("secret/db-password", "aaa")], after);
    await settle();
    expect(patches()).toHaveLength(0);
  });

  it("follows Secrets the driver syncs from a class, and Secrets a SecretSync writes (only real changes it saw before)", async () => {
    const spc: SecretProviderClass = { metadata: { name: "kv", namespace: "team-a" }, spec: { provider: "azure", secretObjects: [{ secretName: "db", type: "Opaque" }] } };
    const { restarter, patches } = setup([workload("env", { classes: [], secrets: ["db"] }), workload("synced", { classes: [], secrets: ["api"] })], 0, spc);
    restarter.classChanged("team-a", "kv", [v("secret/db-password", "aaa")], [v("secret/db-password", "bbb")]);
    // A SecretSync's Secret whose earlier data this process never saw: no baseline, no rollout.
    restarter.secretChanged("team-a", "api", "hash-1", "", false);
    await settle();
    expect(patches().map((p) => p.path)).toEqual(["/apis/apps/v1/namespaces/team-a/deployments/env"]);
    restarter.secretChanged("team-a", "api", "hash-2", "secret/api-key version 2", true);
    await settle();
    expect(patches().map((p) => p.path)).toEqual(["/apis/apps/v1/namespaces/team-a/deployments/env", "/apis/apps/v1/namespaces/team-a/deployments/synced"]);
  });

  it("tries a failed rollout again after a backoff, and rolls once when it goes through", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    try {
      let failures = 2;
      const answer = (spec: RequestSpec) => {
        if (spec.method === "PATCH" && failures-- > 0) throw apiError(500, "etcdserver: request timed out");
        return {};
      };
      const { restarter, patches, events } = setup([workload("web", { classes: ["kv"], secrets: [] })], 0, undefined, answer);
      restarter.classChanged("team-a", "kv", [v("secret/a", "1")], [v("secret/a", "2")]);
      await vi.advanceTimersByTimeAsync(0);
      expect(patches()).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(5_000);
      expect(patches()).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(9_999);
      expect(patches()).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(1);
      expect(patches()).toHaveLength(3);
      await vi.advanceTimersByTimeAsync(600_000);
      expect(patches()).toHaveLength(3);
      expect(events.map((e) => e.split(" ").slice(0, 2).join(" "))).toEqual(["Warning RestartOnRotationFailed", "Warning RestartOnRotationFailed", "Normal RestartedForRotation"]);
      restarter.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it("does not roll again for the content whose patch is on the wire", async () => {
    let release: (() => void) | undefined;
    const answer = (spec: RequestSpec) => (spec.method === "PATCH" && !release ? new Promise<void>((r) => (release = r)) : {});
    const { restarter, patches } = setup([workload("web", { classes: ["kv"], secrets: [] })], 0, undefined, answer);
    restarter.classChanged("team-a", "kv", [v("secret/a", "1")], [v("secret/a", "2")]);
    await settle();
    expect(patches()).toHaveLength(1);
    // Other pods report the same move while the patch is out.
    restarter.classChanged("team-a", "kv", [v("secret/a", "1")], [v("secret/a", "2")]);
    await settle();
    release!();
    await settle();
    expect(patches()).toHaveLength(1);
    restarter.stop();
  });

  it("holds a second rollout until the minimum interval is over, merging the changes into one", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    try {
      const { restarter, patches } = setup([workload("web", { classes: ["kv", "kv-2"], secrets: [] })], 30_000);
      restarter.classChanged("team-a", "kv", [v("secret/a", "1")], [v("secret/a", "2")]);
      await vi.advanceTimersByTimeAsync(0);
      expect(patches()).toHaveLength(1);
      restarter.classChanged("team-a", "kv", [v("secret/a", "2")], [v("secret/a", "3")]);
      await vi.advanceTimersByTimeAsync(10_000);
      restarter.classChanged("team-a", "kv-2", [v("secret/b", "1")], [v("secret/b", "2")]);
      await vi.advanceTimersByTimeAsync(19_000);
      expect(patches()).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1_000);
      expect(patches()).toHaveLength(2);
      expect(Object.keys((patches()[1]!.body as { spec: { template: { metadata: { annotations: object } } } }).spec.template.metadata.annotations).sort()).toEqual([
        "rotation.secrets-store.csi.x-k8s.io/spc.kv",
        "rotation.secrets-store.csi.x-k8s.io/spc.kv-2",
      ]);
      restarter.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it("on taking the lead, rolls the workloads whose record for a class or its synced Secrets differs from what the volumes show", async () => {
    const spc: SecretProviderClass = { metadata: { name: "kv", namespace: "team-a" }, spec: { provider: "azure", secretObjects: [{ secretName: "db", type: "Opaque" }] } };
    const old = [v("secret/db-password", "aaa")];
    const now = [v("secret/db-password", "bbb")];
    const { restarter, patches, events } = setup(
      [
        workload("stale", { classes: ["kv"], secrets: [] }, { "rotation.secrets-store.csi.x-k8s.io/spc.kv": versionsHash("team-a", "kv", old) }),
        workload("current", { classes: ["kv"], secrets: [] }, { "rotation.secrets-store.csi.x-k8s.io/spc.kv": versionsHash("team-a", "kv", now) }),
        // Never rolled: nothing says its pods started before the change.
        workload("unrecorded", { classes: ["kv"], secrets: ["db"] }),
        workload("env", { classes: [], secrets: ["db"] }, { "rotation.secrets-store.csi.x-k8s.io/secret.db": versionsHash("team-a", "kv", old) }),
      ],
      0,
      spc,
    );
    expect(restarter.secretRecorded("team-a", "db")).toBe(true);
    expect(restarter.secretRecorded("team-a", "other")).toBe(false);
    restarter.classSeen("team-a", "kv", now);
    await settle();
    expect(patches().map((p) => p.path)).toEqual(["/apis/apps/v1/namespaces/team-a/deployments/stale", "/apis/apps/v1/namespaces/team-a/deployments/env"]);
    expect(patches()[0]!.body).toEqual({ spec: { template: { metadata: { annotations: { "rotation.secrets-store.csi.x-k8s.io/spc.kv": versionsHash("team-a", "kv", now) } } } } });
    expect(events[0]).toBe(
      "Normal RestartedForRotation restarting all replicas: secretproviderclass team-a/kv has new content since the last restart (secret/db-password version bbb; found on taking the lead)",
    );
    // The same content seen again (another start): nothing more.
    restarter.classSeen("team-a", "kv", now);
    await settle();
    expect(patches()).toHaveLength(2);
  });
});
