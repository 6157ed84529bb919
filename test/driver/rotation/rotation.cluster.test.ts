// Rotation of mounted volumes by the driver's reconciler, against a real
// kube-apiserver, real tmpfs mounts and a provider on a real unix socket.
import { mkdir, mkdtemp, readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { listMounts } from "../../../src/driver/volume/mounter.ts";
import { createNamespace, kubeConfigFromInjected, waitFor } from "../../harness/kube.ts";
import { csiClient, type CsiClient } from "../../support/csi-client.ts";
import { metricsUrl, removeTestTree, requireRoot, startDriverProcess, type DriverProcess } from "../../support/driver-process.ts";
import { sleep, startFakeProvider, type FakeMountRequest, type FakeProvider } from "../../support/fake-provider.ts";

const GROUP = "secrets-store.csi.x-k8s.io";
const NS = "rotation-test";
const INTERVAL = "2s";

/** A provider whose secret value and version the test controls. */
class VersionedSecret {
  version = 1;
  failWith: grpc.status | undefined;
  readonly refreshCalls: FakeMountRequest[] = [];
  behaviour = (req: FakeMountRequest) => {
    if (req.current_object_version.length > 0) this.refreshCalls.push(req);
    if (this.failWith !== undefined) {
      throw Object.assign(new Error("Key Vault throttled"), { code: this.failWith, details: "Key Vault throttled the request (429)" });
    }
    return {
      object_version: [{ id: "secret/db-password", version: `v${this.version}` }],
      files: [{ path: "db-password", mode: 0o644, contents: `password-${this.version}` }],
    };
  };
}


describe("rotation reconciler", () => {
  let base: string;
  let kc: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let provider: FakeProvider;
  let secret: VersionedSecret;
  let driver: DriverProcess;
  let csi: CsiClient;
  const pods = new Map<string, string>();
  let n = 0;

  const driverArgs = (interval: string) => [
    "--nodeid=rotation-node",
    `--kubelet-dir=${base}`,
    `--kubeconfig=${inject("kubeconfig")}`,
    `--provider-volume=${join(base, "providers")}`,
    "--additional-provider-volume-paths=",
    "--metrics-addr=127.0.0.1:0",
    "--health-addr=",
    "--enable-secret-rotation=true",
    `--rotation-poll-interval=${interval}`,
  ];

  /** csiVolumes: the pod's CSI volumes of the driver (volume name -> SecretProviderClass), as kubelet's pods declare them. */
  async function createPod(name: string, serviceAccount: string, csiVolumes: Record<string, string> = {}): Promise<void> {
    // Bound to the driver's node, as kubelet's pods are (the driver watches only those).
    const volumes = Object.entries(csiVolumes).map(([volume, spc]) => ({
      name: volume,
      csi: { driver: "secrets-store.csi.k8s.io", readOnly: true, volumeAttributes: { secretProviderClass: spc } },
    }));
    const pod = await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name },
        spec: { nodeName: "rotation-node", serviceAccountName: serviceAccount, volumes, containers: [{ name: "c", image: "registry.k8s.io/pause:3.10" }] },
      },
    });
    pods.set(name, pod.metadata!.uid!);
  }

  async function publish(client: CsiClient, podName: string, serviceAccount = "default", spcName = "rotating", volume?: string): Promise<string> {
    const uid = pods.get(podName)!;
    const vol = join(base, "pods", uid, "volumes", "kubernetes.io~csi", volume ?? `secrets-${++n}`);
    if (volume) ++n;
    await mkdir(vol, { recursive: true });
    const target = join(vol, "mount");
    await client.call("Node", "NodePublishVolume", {
      volume_id: `csi-${n}`,
      target_path: target,
      volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
      readonly: true,
      secrets: {},
      volume_context: {
        secretProviderClass: spcName,
        "csi.storage.k8s.io/pod.name": podName,
        "csi.storage.k8s.io/pod.namespace": NS,
        "csi.storage.k8s.io/pod.uid": uid,
        "csi.storage.k8s.io/serviceAccount.name": serviceAccount,
        "csi.storage.k8s.io/ephemeral": "true",
      },
    });
    return target;
  }

  const attributesOf = (call: FakeMountRequest) => JSON.parse(call.attributes) as Record<string, string>;
  /** Refresh calls the provider received on behalf of `podName` (alone in its group, or its group's leader). */
  const refreshesOf = (podName: string) => secret.refreshCalls.filter((c) => attributesOf(c)["csi.storage.k8s.io/pod.name"] === podName);
  const refreshesBy = (serviceAccount: string) => secret.refreshCalls.filter((c) => attributesOf(c)["csi.storage.k8s.io/serviceAccount.name"] === serviceAccount);

  async function events(podName: string, reason: string): Promise<string[]> {
    const list = await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${podName},reason=${reason}` });
    return list.items.map((e) => `${e.type}: ${e.message}`);
  }

  async function podStatus(podName: string): Promise<{ metadata: { resourceVersion: string }; status: { objects: Array<{ id: string; version: string }> } }> {
    // The first write lands just after the publish has answered.
    return (await waitFor(
      () =>
        custom.getNamespacedCustomObject({
          group: GROUP,
          version: "v1",
          namespace: NS,
          plural: "secretproviderclasspodstatuses",
          name: `${podName}-${NS}-rotating`,
        }) as Promise<object>,
      { description: `the status object of ${podName}` },
    )) as never;
  }

  beforeAll(async () => {
    requireRoot();
    kc = kubeConfigFromInjected();
    core = kc.makeApiClient(CoreV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
    await createNamespace(kc, NS);
    await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: "other" } } });
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: "v1",
      namespace: NS,
      plural: "secretproviderclasses",
      body: { apiVersion: `${GROUP}/v1`, kind: "SecretProviderClass", metadata: { name: "rotating" }, spec: { provider: "fake", parameters: { objects: "db-password" } } },
    });
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: "v1",
      namespace: NS,
      plural: "secretproviderclasses",
      body: {
        apiVersion: `${GROUP}/v1`,
        kind: "SecretProviderClass",
        metadata: { name: "rotating-synced" },
        spec: {
          provider: "fake",
          parameters: { objects: "db-password" },
          secretObjects: [{ secretName: "db", type: "Opaque", labels: { app: "db" }, data: [{ objectName: "db-password", key: "password" }] }],
        },
      },
    });
    for (const name of ["p1", "p2", "p3", "p4", "p5", "s1"]) await createPod(name, "default");
    await createPod("q1", "other");

    base = await mkdtemp(join(tmpdir(), "rotation-"));
    await mkdir(join(base, "providers"));
    secret = new VersionedSecret();
    provider = await startFakeProvider(join(base, "providers", "fake.sock"), (req) => secret.behaviour(req));
    driver = await startDriverProcess(join(base, "csi.sock"), driverArgs(INTERVAL));
    csi = csiClient(driver.socketPath);
  });

  afterAll(async () => {
    csi?.close();
    await driver?.stop();
    await provider?.stop();
    await removeTestTree(base);
  });

  it("swaps new content in within one interval; status, events and metrics follow; no status write while unchanged", async () => {
    const target = await publish(csi, "p1");
    expect(await readFile(join(target, "db-password"), "utf8")).toBe("password-1");

    // Unchanged content: refreshes happen, but the status object is not rewritten.
    const rvBefore = (await podStatus("p1")).metadata.resourceVersion;
    const callsBefore = refreshesOf("p1").length;
    await waitFor(() => refreshesOf("p1").length >= callsBefore + 2, { description: "two refreshes of unchanged content" });
    expect((await podStatus("p1")).metadata.resourceVersion).toBe(rvBefore);
    expect(refreshesOf("p1").at(-1)!.current_object_version).toEqual([{ id: "secret/db-password", version: "v1" }]);

    secret.version = 2;
    const seenBefore = refreshesOf("p1").length;
    await waitFor(async () => (await readFile(join(target, "db-password"), "utf8")) === "password-2", { description: "the mounted file to change", intervalMs: 100 });
    // Within one interval, shown by the order of refreshes rather than a clock:
    // the first refresh after the change swapped v2 in, so the next one already
    // reports v2 as the mounted version (a refresh that missed it would say v1).
    await waitFor(() => refreshesOf("p1").length >= seenBefore + 2, { description: "the refresh after the swap" });
    const [first, next] = refreshesOf("p1").slice(seenBefore);
    expect(first!.current_object_version).toEqual([{ id: "secret/db-password", version: "v1" }]);
    expect(next!.current_object_version).toEqual([{ id: "secret/db-password", version: "v2" }]);
    await waitFor(async () => (await podStatus("p1")).status.objects[0]!.version === "v2", { description: "the status object" });
    await waitFor(async () => (await events("p1", "MountRotationComplete")).length > 0, { description: "the rotation event" });
    expect(await events("p1", "MountRotationComplete")).toEqual([`Normal: successfully rotated mounted contents for spc ${NS}/rotating`]);
    const metrics = await (await fetch(await metricsUrl(driver))).text();
    expect(metrics).toMatch(/rotation_reconcile_total\{provider="fake",os_type="linux",rotated="true"\} [1-9]/);
    expect(metrics).toMatch(/rotation_reconcile_total\{provider="fake",os_type="linux",rotated="false"\} [1-9]/);
  });

  it("the synced Secret follows a rotation, and an unchanged secret causes no write to it", async () => {
    const target = await publish(csi, "s1", "default", "rotating-synced");
    const version = secret.version;
    const read = () => core.readNamespacedSecret({ name: "db", namespace: NS });
    const first = await read();
    expect(Buffer.from(first.data!.password!, "base64").toString()).toBe(`password-${version}`);
    expect(first.metadata!.labels).toMatchObject({ app: "db", "secrets-store.csi.k8s.io/managed": "true" });
    const callsBefore = refreshesOf("s1").length;
    await waitFor(() => refreshesOf("s1").length >= callsBefore + 2, { description: "two refreshes of unchanged content" });
    expect((await read()).metadata!.resourceVersion).toBe(first.metadata!.resourceVersion);

    secret.version++;
    await waitFor(async () => (await readFile(join(target, "db-password"), "utf8")) === `password-${secret.version}`, { description: "the file" });
    await waitFor(async () => Buffer.from((await read()).data!.password!, "base64").toString() === `password-${secret.version}`, { description: "the Secret" });
    await waitFor(async () => (await events("s1", "SecretRotationComplete")).length > 0, { description: "the Secret event" });
    await csi.call("Node", "NodeUnpublishVolume", { volume_id: "x", target_path: target });
  });

  it("volumes sharing SecretProviderClass and identity cost one provider call per interval; other identities are not merged", async () => {
    const targets = [await publish(csi, "p2"), await publish(csi, "p3"), await publish(csi, "p4"), await publish(csi, "p5")];
    const other = await publish(csi, "q1", "other");
    // The clock is the other identity's volume, refreshed once per interval on
    // its own (were it merged into the default group, it would get no call of
    // its own and this wait would fail): the window is three of its refreshes,
    // however long a busy machine makes them.
    const settled = refreshesBy("other").length + 1;
    await waitFor(() => refreshesBy("other").length >= settled, { description: "a refresh of the other identity's volume" });
    const intervals = 3;
    const defaultBefore = refreshesBy("default").length;
    await waitFor(() => refreshesBy("other").length >= settled + intervals, { description: `${intervals} more refreshes of the other identity's volume` });
    const byDefault = refreshesBy("default").length - defaultBefore;
    console.log(`refresh calls while the other identity's volume was refreshed ${intervals} times: ${byDefault} for the 5 volumes of SA default`);
    // Five volumes of one identity: about one call per interval, not five.
    expect(byDefault).toBeGreaterThanOrEqual(intervals - 1);
    expect(byDefault).toBeLessThanOrEqual(intervals + 1);

    secret.version = 3;
    await waitFor(async () => {
      const values = await Promise.all([...targets, other].map((t) => readFile(join(t, "db-password"), "utf8")));
      return values.every((v) => v === "password-3");
    }, { description: "every volume to switch" });
  });

  it("keeps the old files byte for byte while the provider fails or is down, warns, and recovers", async () => {
    const target = await publish(csi, "p1");
    const before = await readFile(join(target, "db-password"));
    secret.failWith = grpc.status.UNAVAILABLE;
    secret.version = 4;
    await waitFor(async () => (await events("p1", "MountRotationFailed")).length > 0, { description: "a failed refresh" });
    expect((await events("p1", "MountRotationFailed"))[0]).toMatch(/^Warning: failed to rotate mounted contents for spc rotation-test\/rotating: .*Key Vault throttled/);
    expect((await readFile(join(target, "db-password"))).equals(before)).toBe(true);

    // The provider process goes away entirely (stopped before it is told to
    // answer again, so no refresh can slip through in between).
    await provider.stop();
    secret.failWith = undefined;
    const refusedSince = driver.output().length;
    const failedWhileDown = () =>
      driver
        .output()
        .slice(refusedSince)
        .split("\n")
        .filter((l) => l.includes('"refresh failed; mounted content kept"') && l.includes(target) && l.includes('provider \\"fake\\"')).length;
    await waitFor(() => failedWhileDown() >= 2, { description: "two refreshes of the volume failing while the provider is down" });
    expect((await readFile(join(target, "db-password"))).equals(before)).toBe(true);
    const metrics = await (await fetch(await metricsUrl(driver))).text();
    expect(metrics).toMatch(/rotation_reconcile_error_total\{[^}]*\} [1-9]/);

    provider = await startFakeProvider(join(base, "providers", "fake.sock"), (req) => secret.behaviour(req));
    await waitFor(async () => (await readFile(join(target, "db-password"), "utf8")) === "password-4", { description: "recovery", timeoutMs: 30_000 });
  });

  it("refreshes at once when the pod is annotated", async () => {
    const slow = await startDriverProcess(join(base, "csi-slow.sock"), [...driverArgs("1h"), "--metrics-addr="]);
    const client = csiClient(slow.socketPath);
    try {
      await createPod("annotated", "default");
      const target = await publish(client, "annotated");
      expect(await readFile(join(target, "db-password"), "utf8")).toBe(`password-${secret.version}`);
      secret.version++;
      await sleep(1000);
      expect(await readFile(join(target, "db-password"), "utf8")).toBe(`password-${secret.version - 1}`);
      await core.patchNamespacedPod(
        { name: "annotated", namespace: NS, body: { metadata: { annotations: { "secrets-store.csi.k8s.io/refresh-requested-at": String(Date.now()) } } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      await waitFor(async () => (await readFile(join(target, "db-password"), "utf8")) === `password-${secret.version}`, { description: "the on-demand refresh" });
      await client.call("Node", "NodeUnpublishVolume", { volume_id: "x", target_path: target });
    } finally {
      client.close();
      await slow.stop();
    }
  });

  it("resumes rotation for mounted volumes after a driver restart, and unpublish still works", async () => {
    // The restarted driver adopts the volume only as the pod's own CSI volume of this class.
    await createPod("restarted", "default", { secrets: "rotating" });
    const target = await publish(csi, "restarted", "default", "rotating", "secrets");
    csi.close();
    await driver.stop();
    expect(existsSync(join(target, "db-password"))).toBe(true);
    secret.version++;
    driver = await startDriverProcess(join(base, "csi.sock"), driverArgs(INTERVAL));
    csi = csiClient(driver.socketPath);
    await waitFor(async () => (await readFile(join(target, "db-password"), "utf8")) === `password-${secret.version}`, { description: "rotation after restart" });
    await csi.call("Node", "NodeUnpublishVolume", { volume_id: "x", target_path: target });
    expect(existsSync(target)).toBe(false);
    expect((await listMounts()).some((m) => m.mountPoint === target)).toBe(false);
  });
});
