// A tenant who may write SecretProviderClassPodStatus objects in its own
// namespace forges them to point at another pod's volumes, hoping a driver
// restart adopts them: then rotation would write the forger's content over
// the victim's files, and the Secret syncer would copy the victim's files into
// a Secret of the forger's namespace. Played here with the driver program
// through its real socket, a real kube-apiserver, and the victim's volumes as
// kubelet lays them on real tmpfs mounts: a Secret volume, a projected
// service-account token and a memory emptyDir (source "tmpfs", the atomic
// writer's layout), the victim's own CSI volume of this driver, and two tmpfs
// carrying the driver's own source name. After the restart, rotation ticks
// and syncs, every victim file is unchanged byte for byte, the forger's
// namespace got no Secret, the driver wrote no status object for any of them,
// and the forger's classes never reached the provider. The victim's genuine
// CSI volume is adopted and refreshed as before.
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Volume } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { buildPodStatus } from "../../../src/driver/kube/pod-status.ts";
import { writeVolumeFiles } from "../../../src/driver/volume/atomic-writer.ts";
import { createNamespace, kubeConfigFromInjected, waitFor } from "../../harness/kube.ts";
import { csiClient, type CsiClient } from "../../support/csi-client.ts";
import { removeTestTree, requireRoot, startDriverProcess, type DriverProcess } from "../../support/driver-process.ts";
import { startFakeProvider, type FakeMountRequest, type FakeProvider } from "../../support/fake-provider.ts";
import { snapshotTree } from "../../support/snapshot.ts";
import { DRIVER_SOURCE, mountTmpfsVolume } from "../../support/tmpfs-volume.ts";

const GROUP = "secrets-store.csi.x-k8s.io";
const NODE = "forged-node";
const VICTIM_NS = "forged-victim";
const FORGER_NS = "forged-forger";
const MANAGED = "secrets-store.csi.k8s.io/managed";

/** The victim's secret bytes: none may leave its volumes. */
const VICTIM = {
  tlsKey: "-----BEGIN PRIVATE KEY-----\nvictim-tls-key\n-----END PRIVATE KEY-----\n",
  tlsCrt: "victim-tls-crt",
  token: "eyJ.victim-service-account-token.sig",
  caCrt: "victim-ca",
  state: "victim-memory-state",
  csi: "victim-db-password",
  driverNamed: "victim-in-a-tmpfs-named-like-the-drivers",
};

describe("forged status objects never make the driver adopt another pod's volume", () => {
  let base: string;
  let kc: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let provider: FakeProvider;
  let driver: DriverProcess;
  let csi: CsiClient;
  let victimUid: string;
  let forgerUid: string;
  const podsDir = () => join(base, "pods");
  const volumePath = (plugin: string, name: string) => join(podsDir(), victimUid, "volumes", plugin, name);

  const driverArgs = () => [
    `--nodeid=${NODE}`,
    `--kubeconfig=${inject("kubeconfig")}`,
    `--kubelet-dir=${base}`,
    `--provider-volume=${join(base, "providers")}`,
    "--additional-provider-volume-paths=",
    "--metrics-addr=",
    "--health-addr=",
    "--enable-secret-rotation=true",
    "--rotation-poll-interval=1s",
  ];

  /** The class a Mount request was made for. */
  const classOf = (req: FakeMountRequest) => (JSON.parse(req.attributes) as Record<string, string>).secretProviderClass;
  let forgedVersion = 0;

  async function createClass(namespace: string, name: string, parameters: Record<string, string>, secretObjects: object[] = []) {
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: "v1",
      namespace,
      plural: "secretproviderclasses",
      body: { apiVersion: `${GROUP}/v1`, kind: "SecretProviderClass", metadata: { name }, spec: { provider: "fake", parameters, secretObjects } },
    });
  }

  async function createPod(namespace: string, name: string, volumes: V1Volume[]): Promise<string> {
    const pod = await core.createNamespacedPod({
      namespace,
      body: { metadata: { name }, spec: { nodeName: NODE, volumes, containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] } },
    });
    return pod.metadata!.uid!;
  }

  const csiVolume = (name: string, spc: string): V1Volume => ({ name, csi: { driver: DRIVER_SOURCE, readOnly: true, volumeAttributes: { secretProviderClass: spc } } });

  /** A kubelet-style tmpfs volume of the victim, written in the atomic writer's layout. */
  async function kubeletVolume(target: string, files: Record<string, string>, source = "tmpfs"): Promise<void> {
    await mountTmpfsVolume(base, target, source);
    await writeVolumeFiles(
      target,
      Object.entries(files).map(([path, contents]) => ({ path, mode: 0o644, contents: Buffer.from(contents) })),
    );
  }

  beforeAll(async () => {
    requireRoot();
    kc = kubeConfigFromInjected();
    core = kc.makeApiClient(CoreV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
    await createNamespace(kc, VICTIM_NS);
    await createNamespace(kc, FORGER_NS);
    base = await mkdtemp(join(tmpdir(), "forged-"));
    execFileSync("mkdir", ["-p", join(base, "providers"), podsDir()]);

    // The provider answers the victim's class with the victim's value, and
    // the forger's classes with new versions on every call: with files that
    // would overwrite the victim's, or with none (then the syncer would read
    // what is already on the volume).
    provider = await startFakeProvider(join(base, "providers", "fake.sock"), (req) => {
      const spc = classOf(req);
      if (spc?.startsWith("victim-")) return { object_version: [{ id: "secret/db-password", version: "v1" }], files: [{ path: "db-password", mode: 0o644, contents: VICTIM.csi }] };
      forgedVersion++;
      const versions = [{ id: "secret/x", version: `f${forgedVersion}` }];
      if (spc === "forge-empty") return { object_version: versions };
      const names = ["tls.key", "tls.crt", "token", "ca.crt", "state", "db-password", "value"];
      return { object_version: versions, files: names.map((path) => ({ path, mode: 0o644, contents: `forged-${forgedVersion}` })) };
    });

    await createClass(VICTIM_NS, "victim-spc", { objects: "db-password" });
    await createClass(VICTIM_NS, "victim-upstream-spc", { objects: "db-password" });
    const steal = [
      { secretName: "stolen-tls", type: "Opaque", data: [{ objectName: "tls.key", key: "key" }] },
      { secretName: "stolen-token", type: "Opaque", data: [{ objectName: "token", key: "token" }] },
      { secretName: "stolen-state", type: "Opaque", data: [{ objectName: "state", key: "state" }] },
      { secretName: "stolen-csi", type: "Opaque", data: [{ objectName: "db-password", key: "password" }] },
      { secretName: "stolen-value", type: "Opaque", data: [{ objectName: "value", key: "value" }] },
    ];
    await createClass(FORGER_NS, "forge-empty", { objects: "x" }, steal);
    await createClass(FORGER_NS, "forge-files", { objects: "x" }, steal);

    victimUid = await createPod(VICTIM_NS, "victim", [
      { name: "certs", secret: { secretName: "victim-tls" } },
      { name: "kube-api-access", projected: { sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3600 } }] } },
      { name: "cache", emptyDir: { medium: "Memory" } },
      { name: "driver-named", secret: { secretName: "victim-other" } },
      csiVolume("secrets-store", "victim-spc"),
      csiVolume("upstream-store", "victim-upstream-spc"),
    ]);
    // The forger's own pod, with a CSI volume of the same name as the victim's, of the forger's class.
    forgerUid = await createPod(FORGER_NS, "forger", [csiVolume("secrets-store", "forge-files")]);
  });

  afterAll(async () => {
    csi?.close();
    await driver?.stop();
    await provider?.stop();
    await removeTestTree(base);
  });

  it("after a restart, rotation ticks and syncs, every victim volume is untouched, nothing leaks, nothing is recorded", async () => {
    driver = await startDriverProcess(join(base, "csi.sock"), driverArgs());
    csi = csiClient(driver.socketPath);

    // The victim's own CSI volume, published by the driver as kubelet asks.
    const victimCsi = join(volumePath("kubernetes.io~csi", "secrets-store"), "mount");
    execFileSync("mkdir", ["-p", join(victimCsi, "..")]);
    await csi.call("Node", "NodePublishVolume", {
      volume_id: "csi-victim",
      target_path: victimCsi,
      volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
      readonly: true,
      secrets: {},
      volume_context: {
        secretProviderClass: "victim-spc",
        "csi.storage.k8s.io/pod.name": "victim",
        "csi.storage.k8s.io/pod.namespace": VICTIM_NS,
        "csi.storage.k8s.io/pod.uid": victimUid,
        "csi.storage.k8s.io/serviceAccount.name": "default",
        "csi.storage.k8s.io/ephemeral": "true",
      },
    });

    // The victim's other volumes, as kubelet lays them out.
    const secretVolume = volumePath("kubernetes.io~secret", "certs");
    const tokenVolume = volumePath("kubernetes.io~projected", "kube-api-access");
    const memoryVolume = volumePath("kubernetes.io~empty-dir", "cache");
    const driverNamed = volumePath("kubernetes.io~secret", "driver-named");
    // A tmpfs with the driver's source name at a CSI volume path the victim's pod does not declare.
    const undeclaredCsi = join(volumePath("kubernetes.io~csi", "undeclared"), "mount");
    await kubeletVolume(secretVolume, { "tls.key": VICTIM.tlsKey, "tls.crt": VICTIM.tlsCrt });
    await kubeletVolume(tokenVolume, { token: VICTIM.token, "ca.crt": VICTIM.caCrt, namespace: VICTIM_NS });
    await kubeletVolume(memoryVolume, { state: VICTIM.state });
    await kubeletVolume(driverNamed, { value: VICTIM.driverNamed }, DRIVER_SOURCE);
    await kubeletVolume(undeclaredCsi, { value: VICTIM.driverNamed }, DRIVER_SOURCE);
    const victimPaths = [secretVolume, tokenVolume, memoryVolume, driverNamed, undeclaredCsi, victimCsi];
    const before = await Promise.all(victimPaths.map(snapshotTree));

    // A genuine volume of upstream's driver, mounted before an upgrade: its
    // tmpfs (source "tmpfs") at the pod's CSI volume path, then its status object.
    const upstreamCsi = join(volumePath("kubernetes.io~csi", "upstream-store"), "mount");
    await kubeletVolume(upstreamCsi, { "db-password": "written by upstream's driver" });
    const genuineUpstream = buildPodStatus({
      pod: { name: "victim", namespace: VICTIM_NS, uid: victimUid },
      spcName: "victim-upstream-spc",
      nodeName: NODE,
      targetPath: upstreamCsi,
      objectVersions: [],
    });
    await custom.createNamespacedCustomObject({ group: GROUP, version: "v1", namespace: VICTIM_NS, plural: "secretproviderclasspodstatuses", body: genuineUpstream });

    // The forgeries, in the forger's namespace, labelled for this node,
    // created after the mounts (so upstream's "mount no newer than its
    // status object" rule holds for them): owned by the forger's own pod, or
    // naming the victim's pod and uid.
    const owners = [
      { name: "forger", uid: forgerUid },
      { name: "victim", uid: victimUid },
    ];
    const forged = new Map<string, string>();
    const forgedTargets = new Map<string, string>();
    let i = 0;
    for (const targetPath of victimPaths) {
      for (const owner of owners) {
        for (const spcName of ["forge-empty", "forge-files"]) {
          const body = buildPodStatus({ pod: { ...owner, namespace: FORGER_NS }, spcName, nodeName: NODE, targetPath, objectVersions: [] });
          body.metadata.name = `forged-${++i}`;
          const created = (await custom.createNamespacedCustomObject({ group: GROUP, version: "v1", namespace: FORGER_NS, plural: "secretproviderclasspodstatuses", body })) as {
            metadata: { name: string; resourceVersion: string };
          };
          forged.set(created.metadata.name, created.metadata.resourceVersion);
          forgedTargets.set(created.metadata.name, targetPath);
        }
      }
    }

    // Restart: the driver recovers from this node's status objects.
    csi.close();
    await driver.stop();
    provider.requests.length = 0;
    driver = await startDriverProcess(join(base, "csi.sock"), driverArgs());
    csi = csiClient(driver.socketPath);

    // Rotation runs: the victim's genuine volumes (ours, and upstream's
    // before the upgrade) are adopted and refreshed, three times over.
    const refreshes = (spc: string) => provider.requests.filter((r) => classOf(r) === spc && r.current_object_version.length > 0).length;
    await waitFor(() => refreshes("victim-spc") >= 3 && refreshes("victim-upstream-spc") >= 3, {
      description: "three refreshes of each of the victim's own CSI volumes after the restart",
      timeoutMs: 60_000,
    });
    const adopted = driver
      .output()
      .split("\n")
      .filter((l) => l.includes("adopted the volume at the target, proven by its pod and status object"));
    expect(adopted.filter((l) => l.includes(`"target":"${victimCsi}"`))).toHaveLength(1);
    expect(adopted.filter((l) => l.includes(`"target":"${upstreamCsi}"`) && l.includes('"source":"tmpfs"'))).toHaveLength(1);
    expect(adopted).toHaveLength(2);
    expect(await readFile(join(upstreamCsi, "db-password"), "utf8")).toBe(VICTIM.csi);

    // The forger's classes never reached the provider: nothing was refreshed, written or synced for them.
    expect(provider.requests.map(classOf).filter((c) => !c?.startsWith("victim-"))).toEqual([]);
    // Every victim file byte for byte.
    expect(await Promise.all(victimPaths.map(snapshotTree))).toEqual(before);
    // No Secret in the forger's namespace.
    const secrets = await core.listNamespacedSecret({ namespace: FORGER_NS });
    expect(secrets.items.map((s) => s.metadata?.name)).toEqual([]);
    expect(secrets.items.filter((s) => s.metadata?.labels?.[MANAGED])).toEqual([]);
    // No status object written by the driver for these volumes: the forgeries
    // are as created, and the only other one is the victim's own.
    const all = (await custom.listClusterCustomObject({ group: GROUP, version: "v1", plural: "secretproviderclasspodstatuses" })) as {
      items: Array<{ metadata: { name: string; namespace: string; resourceVersion: string }; status: { targetPath: string } }>;
    };
    const naming = all.items.filter((o) => victimPaths.includes(o.status.targetPath));
    const genuine = naming.filter((o) => !forged.has(o.metadata.name) || o.metadata.namespace !== FORGER_NS);
    expect(genuine.map((o) => `${o.metadata.namespace}/${o.status.targetPath}`)).toEqual([`${VICTIM_NS}/${victimCsi}`]);
    for (const o of naming.filter((x) => x.metadata.namespace === FORGER_NS)) expect(o.metadata.resourceVersion, o.metadata.name).toBe(forged.get(o.metadata.name));

    // One log line per forgery of a path the driver did not already know
    // (the victim's CSI volume is skipped once its own status object adopted
    // it), and no victim byte in the log.
    const leftAloneLines = () =>
      driver
        .output()
        .split("\n")
        .filter((l) => l.includes("left alone a mount that a status object names"));
    const linesOf = (name: string) => leftAloneLines().filter((l) => l.includes(`"statusObject":"${FORGER_NS}/${name}"`));
    // Kubernetes' garbage collector may delete the forgeries that name the
    // victim's pod (no such pod in the forger's namespace) before the driver
    // lists them, when a kube-controller-manager runs. One still present now
    // was present at the driver's list after its restart, so it must have its line.
    const present = new Set(naming.filter((o) => o.metadata.namespace === FORGER_NS).map((o) => o.metadata.name));
    const expectedLines = [...forgedTargets].filter(([name, targetPath]) => targetPath !== victimCsi && present.has(name)).map(([name]) => name);
    expect(expectedLines.length, "forgeries left to check").toBeGreaterThanOrEqual(10);
    await waitFor(() => expectedLines.every((name) => linesOf(name).length > 0), { description: "a log line for every forgery" }).catch((err: unknown) => {
      // Say which forgery got no line, and what the driver did meanwhile.
      const missing = expectedLines.filter((name) => linesOf(name).length === 0).map((name) => `${name} (${forgedTargets.get(name)})`);
      throw new Error(`${(err as Error).message}\nno line for: ${missing.join(", ")}\ndriver log:\n${driver.output().split("\n").slice(-80).join("\n")}`);
    });
    for (const [name, targetPath] of forgedTargets) {
      if (targetPath === victimCsi || !present.has(name)) expect(linesOf(name).length, name).toBeLessThanOrEqual(1);
      else expect(linesOf(name), name).toHaveLength(1);
    }
    const leftAlone = leftAloneLines();
    console.log(`${forged.size} forged status objects (${forged.size - present.size} collected by the garbage collector); ${leftAlone.length} left alone with one log line each, e.g. ${leftAlone[0]}`);
    for (const value of Object.values(VICTIM)) expect(driver.output()).not.toContain(value);
  }, 180_000);
});
