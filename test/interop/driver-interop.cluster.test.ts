// Either half swapped: our driver calling upstream's Azure provider (v1.8.2)
// and upstream's driver (v1.6.0) calling ours, through NodePublishVolume with
// the volume context kubelet sends, SecretProviderClasses and
// SecretProviderClassPodStatuses in the real kube-apiserver and real tmpfs
// mounts; upstream's pair and ours run beside them as the reference. Every
// pairing must give the same volume (paths, modes, bytes) and the same pod
// status. The broken answers the parity test judges by upstream's driver
// rules go through the real upstream driver here, to confirm the judgement.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { ServiceError } from "@grpc/grpc-js";
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { listMounts } from "../../src/driver/volume/mounter.ts";
import { createNamespace, kubeConfigFromInjected, waitFor } from "../harness/kube.ts";
import { objectsYaml, tokensAttribute } from "../provider/client.ts";
import { csiClient, type CsiClient } from "../support/csi-client.ts";
import { removeTestTree, requireRoot, startDriverProcess, type DriverProcess } from "../support/driver-process.ts";
import { startUpstreamDriver, type UpstreamDriver } from "./support/upstream.ts";
import { volumeDigest, volumeFiles } from "./support/volume-files.ts";
import { SP, startWorld, VAULT, WI_APP, type World } from "./support/world.ts";

const GROUP = "secrets-store.csi.x-k8s.io";
const NS = "interop";
const TOKENS = "csi.storage.k8s.io/serviceAccount.tokens";

type Side = "ours" | "upstream";
interface Pairing {
  id: string;
  driver: Side;
  provider: Side;
  pod: string;
  uid: string;
  csi: CsiClient;
}

/** Everything a pod of an Azure class usually asks for, in one class. */
const RICH_OBJECTS: Array<Record<string, string | number>> = [
  { objectName: "s-plain", objectType: "secret" },
  { objectName: "s-b64", objectType: "secret", objectEncoding: "base64", objectAlias: "config/blob.bin", filePermission: "0600" },
  { objectName: "key-p256", objectType: "key" },
  { objectName: "cert-pfx", objectType: "cert", objectAlias: "tls/leaf.pem" },
  { objectName: "cert-pfx", objectType: "secret", objectAlias: "tls/bundle.pem" },
  { objectName: "s-multi", objectType: "secret", objectVersionHistory: 2, filePermission: "0440" },
];

const CLASSES: Record<string, Array<Record<string, string | number>> | string> = {
  rich: RICH_OBJECTS,
  "workload-identity": [{ objectName: "s-plain", objectType: "secret" }, { objectName: "key-rsa", objectType: "key" }],
  "alias-dot-slash": [{ objectName: "s-plain", objectType: "secret", objectAlias: "./x" }],
  "alias-duplicate": [
    { objectName: "s-plain", objectType: "secret", objectAlias: "same" },
    { objectName: "s-hex", objectType: "secret", objectAlias: "same" },
  ],
  "alias-file-and-dir": [
    { objectName: "s-plain", objectType: "secret", objectAlias: "a" },
    { objectName: "s-hex", objectType: "secret", objectAlias: "a/b" },
  ],
  "mode-999": [{ objectName: "s-plain", objectType: "secret", filePermission: "999" }],
  "objects-empty": "array: []\n",
  // this provider's extensions: a pattern with a prefix alias, and an optional object Key Vault does not have
  extensions: [
    { objectName: "s-plain", objectType: "secret" },
    { objectName: "ext-*", objectType: "secret", objectAlias: "ext/" },
    { objectName: "nope", objectType: "secret", optional: "true" },
  ],
};

describe("our driver with upstream's provider, upstream's driver with ours", () => {
  let base: string;
  let kc: KubeConfig;
  let custom: CustomObjectsApi;
  let world: World;
  const processes: Array<{ stop(): Promise<void> }> = [];
  const pairings: Pairing[] = [];
  let n = 0;

  const pairing = (driver: Side, provider: Side) => pairings.find((p) => p.driver === driver && p.provider === provider)!;

  async function publish(p: Pairing, spc: string, options: { identity?: "sp" | "wi"; tokensIn?: "volume_context" | "secrets"; group?: string } = {}) {
    const vol = join(base, "pods", p.uid, "volumes", "kubernetes.io~csi", `${spc}-${++n}`);
    await mkdir(vol, { recursive: true });
    const target = join(vol, "mount");
    const volumeContext: Record<string, string> = {
      secretProviderClass: spc,
      "csi.storage.k8s.io/pod.name": p.pod,
      "csi.storage.k8s.io/pod.namespace": NS,
      "csi.storage.k8s.io/pod.uid": p.uid,
      "csi.storage.k8s.io/serviceAccount.name": "app",
      "csi.storage.k8s.io/ephemeral": "true",
    };
    let secrets: Record<string, string> = { clientid: SP.clientId, clientsecret: SP.clientSecret };
    if (options.identity === "wi") {
      secrets = {};
      const tokens = tokensAttribute(world.emulator.issueServiceAccountToken({ namespace: NS, serviceAccount: "app" }));
      if (options.tokensIn === "secrets") secrets[TOKENS] = tokens;
      else volumeContext[TOKENS] = tokens;
    }
    const mount = options.group === undefined ? {} : { volume_mount_group: options.group };
    const request = { volume_id: `csi-${n}`, target_path: target, volume_capability: { mount, access_mode: { mode: "SINGLE_NODE_WRITER" } }, readonly: true, secrets, volume_context: volumeContext };
    return { target, call: () => p.csi.call("Node", "NodePublishVolume", request, 120_000) };
  }

  async function podStatus(p: Pairing, spc: string): Promise<{ metadata: { labels?: Record<string, string>; ownerReferences?: Array<{ uid: string; kind: string; name: string }> }; status: Record<string, unknown> }> {
    // Our driver writes it just after the publish has answered, upstream's just before.
    return (await waitFor(
      () => custom.getNamespacedCustomObject({ group: GROUP, version: "v1", namespace: NS, plural: "secretproviderclasspodstatuses", name: `${p.pod}-${NS}-${spc}` }) as Promise<object>,
      { description: `the status object of ${spc}` },
    )) as never;
  }

  async function publishError(p: Pairing, spc: string): Promise<{ code: number; details: string; target: string }> {
    const { target, call } = await publish(p, spc);
    try {
      await call();
    } catch (err) {
      const e = err as ServiceError;
      return { code: e.code, details: e.details, target };
    }
    throw new Error(`${p.id}: NodePublishVolume of ${spc} succeeded`);
  }

  beforeAll(async () => {
    requireRoot();
    kc = kubeConfigFromInjected();
    custom = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    await createNamespace(kc, NS);
    await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: "app" } } });
    world = await startWorld({ settings: ["defaults"] });
    processes.push(world);
    const params = (name: string): Record<string, string> => ({
      keyvaultName: VAULT,
      tenantID: world.emulator.tenantId,
      objects: typeof CLASSES[name] === "string" ? (CLASSES[name] as string) : objectsYaml(CLASSES[name] as Array<Record<string, string | number>>),
      ...(name === "workload-identity" ? { clientID: WI_APP } : {}),
    });
    for (const name of Object.keys(CLASSES)) {
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: "v1",
        namespace: NS,
        plural: "secretproviderclasses",
        body: { apiVersion: `${GROUP}/v1`, kind: "SecretProviderClass", metadata: { name }, spec: { provider: "azure", parameters: params(name) } },
      });
    }

    base = await mkdtemp(join(tmpdir(), "interop-drivers-"));
    const pair = world.pairs[0]!;
    const providerDir = { ours: dirname(pair.ours.socket), upstream: dirname(pair.upstream.socket) };
    for (const driver of ["ours", "upstream"] as const) {
      for (const provider of ["ours", "upstream"] as const) {
        const id = `${driver}-driver-${provider}-provider`;
        const pod = await core.createNamespacedPod({
          namespace: NS,
          body: { metadata: { name: id }, spec: { nodeName: id, serviceAccountName: "app", containers: [{ name: "c", image: "registry.k8s.io/pause:3.10" }] } },
        });
        const socket = join(base, `${id}.sock`);
        let proc: DriverProcess | UpstreamDriver;
        if (driver === "ours") {
          proc = await startDriverProcess(socket, [
            `--nodeid=${id}`,
            `--kubeconfig=${inject("kubeconfig")}`,
            `--provider-volume=${providerDir[provider]}`,
            `--additional-provider-volume-paths=${join(base, "none")}`,
            `--kubelet-dir=${base}`,
            "--metrics-addr=127.0.0.1:0",
            "--health-addr=",
          ]);
        } else {
          proc = await startUpstreamDriver(socket, { kubeconfig: inject("kubeconfig"), nodeId: id, providerDir: providerDir[provider] });
        }
        processes.push(proc);
        pairings.push({ id, driver, provider, pod: id, uid: pod.metadata!.uid!, csi: csiClient(socket) });
      }
    }
  }, 600_000);

  afterAll(async () => {
    for (const p of pairings) p.csi.close();
    await Promise.allSettled(processes.reverse().map((p) => p.stop()));
    await removeTestTree(base);
  });

  it("every pairing mounts the same volume and records the same pod status", async () => {
    const volumes: Record<string, Record<string, string>> = {};
    const statuses: Record<string, unknown> = {};
    for (const p of pairings) {
      const { target, call } = await publish(p, "rich");
      await call();
      expect((await listMounts()).some((m) => m.mountPoint === target && m.fsType === "tmpfs"), `${p.id}: tmpfs at the target`).toBe(true);
      const files = await volumeFiles(target);
      volumes[p.id] = volumeDigest(files);
      expect([...files.keys()].sort(), p.id).toEqual(["config/blob.bin", "key-p256", "s-multi/0", "s-multi/1", "s-multi/2", "s-plain", "tls/bundle.pem", "tls/leaf.pem"]);
      expect(files.get("config/blob.bin")!.mode, p.id).toBe(0o600);
      expect(files.get("s-multi/1")!.mode, p.id).toBe(0o440);
      expect(files.get("s-plain")!.mode, p.id).toBe(0o644);
      expect(files.get("s-plain")!.contents.toString(), p.id).toBe("héllo wörld\nline two");
      // the volume's root: upstream leaves tmpfs's 1777, ours is 0755 (README, compatibility)
      expect((await stat(target)).mode & 0o7777, p.id).toBe(p.driver === "upstream" ? 0o1777 : 0o755);

      const spcps = await podStatus(p, "rich");
      expect(spcps.metadata.labels?.["internal.secrets-store.csi.k8s.io/node-name"], p.id).toBe(p.id);
      expect(spcps.metadata.ownerReferences, p.id).toEqual([expect.objectContaining({ kind: "Pod", name: p.pod, uid: p.uid })]);
      expect(spcps.status, p.id).toMatchObject({ podName: p.pod, secretProviderClassName: "rich", mounted: true, targetPath: target });
      statuses[p.id] = spcps.status.objects;
    }
    const reference = volumes["upstream-driver-upstream-provider"]!;
    for (const p of pairings) expect(volumes[p.id], `${p.id} volume equals upstream's pair's`).toEqual(reference);

    // objects: one per id, sorted, with the versions Key Vault holds
    const versions = async (collection: "secrets" | "keys" | "certificates", name: string) => (await world.versions(collection, name)).at(-1);
    const multi = await world.versions("secrets", "s-multi"); // oldest first; the 4th of 5 is disabled
    const expected = [
      { id: "cert/cert-pfx", version: await versions("certificates", "cert-pfx") },
      { id: "key/key-p256", version: await versions("keys", "key-p256") },
      { id: "secret/cert-pfx", version: await versions("secrets", "cert-pfx") },
      { id: "secret/s-b64", version: await versions("secrets", "s-b64") },
      { id: "secret/s-multi/0", version: multi[4] },
      { id: "secret/s-multi/1", version: multi[2] },
      { id: "secret/s-multi/2", version: multi[1] },
      { id: "secret/s-plain", version: await versions("secrets", "s-plain") },
    ];
    for (const p of pairings) expect(statuses[p.id], `${p.id} pod status objects`).toEqual(expected);
  });

  for (const tokensIn of ["volume_context", "secrets"] as const) {
    it(`workload identity with kubelet's token in ${tokensIn} works in every pairing`, async () => {
      const volumes: Record<string, Record<string, string>> = {};
      for (const p of pairings) {
        const { target, call } = await publish(p, "workload-identity", { identity: "wi", tokensIn });
        await call();
        volumes[p.id] = volumeDigest(await volumeFiles(target));
      }
      expect(Object.keys(volumes["ours-driver-upstream-provider"]!).sort()).toEqual(["key-rsa", "s-plain"]);
      for (const p of pairings) expect(volumes[p.id], p.id).toEqual(volumes["upstream-driver-upstream-provider"]);
    });
  }

  it("upstream's driver refuses what the parity test says it refuses, and the other pairings agree", async () => {
    const upstream = pairing("upstream", "upstream");
    expect((await publishError(upstream, "alias-dot-slash")).details).toContain('invalid filepath: "./x"');
    // its atomic writer walks a Go map, so the order is random: either it writes "a" and cannot make the
    // directory "a/", or it makes "a/" for "a/b" and cannot open "a" as a file
    expect((await publishError(upstream, "alias-file-and-dir")).details).toMatch(
      /^failed to mount secrets store objects for pod interop\/upstream-driver-upstream-provider, err: (mkdir .*\/a\/: file exists|open .*\/a: is a directory)$/,
    );
    expect((await publishError(upstream, "objects-empty")).details).toContain("missing object versions");
    // our driver refuses the same unclean path from upstream's provider
    expect((await publishError(pairing("ours", "upstream"), "alias-dot-slash")).details).toMatch(/"\.\/x"/);
    // ours mounts the clean path, with either driver
    for (const p of [pairing("ours", "ours"), pairing("upstream", "ours")]) {
      const { target, call } = await publish(p, "alias-dot-slash");
      await call();
      expect([...(await volumeFiles(target)).keys()], p.id).toEqual(["x"]);
    }
  });

  it("what upstream's pair mounts broken (one object lost, a mode-0 file), ours refuses with what to change", async () => {
    const upstream = pairing("upstream", "upstream");
    const dup = await publish(upstream, "alias-duplicate");
    await dup.call();
    const dupFiles = await volumeFiles(dup.target);
    expect([...dupFiles.keys()]).toEqual(["same"]);
    expect(dupFiles.get("same")!.contents.toString()).not.toBe("héllo wörld\nline two"); // the first object is gone
    const zero = await publish(upstream, "mode-999");
    await zero.call();
    expect((await volumeFiles(zero.target)).get("s-plain")!.mode).toBe(0);

    for (const p of [pairing("ours", "ours"), pairing("upstream", "ours")]) {
      const dupError = await publishError(p, "alias-duplicate");
      expect(dupError.details, p.id).toMatch(/file "same" would be written by both .* give one of them a different objectAlias/);
      const modeError = await publishError(p, "mode-999");
      expect(modeError.details, p.id).toMatch(/filePermission "999" is not an octal file mode such as 0644/);
    }
    // a refused first mount leaves no tmpfs behind with our driver
    const refused = await publishError(pairing("ours", "ours"), "mode-999");
    expect((await listMounts()).some((m) => m.mountPoint === refused.target)).toBe(false);
    expect(existsSync(refused.target)).toBe(false);
  });

  it("our provider's extensions work under upstream's driver too: the matches, and the missing optional object recorded in the pod status", async () => {
    for (const p of [pairing("ours", "ours"), pairing("upstream", "ours")]) {
      const { target, call } = await publish(p, "extensions");
      await call();
      const files = await volumeFiles(target);
      expect([...files.keys()].sort(), p.id).toEqual(["ext/ext-a", "ext/ext-b", "s-plain"]);
      expect(files.get("ext/ext-a")!.contents.toString(), p.id).toBe("gold value");
      const objects = (await podStatus(p, "extensions")).status.objects as Array<{ id: string; version: string }>;
      expect(objects, p.id).toEqual([
        { id: "secret/ext-a", version: (await world.versions("secrets", "ext-a")).at(-1) },
        { id: "secret/ext-b", version: (await world.versions("secrets", "ext-b")).at(-1) },
        { id: "secret/nope", version: "(missing) nope" },
        { id: "secret/s-plain", version: (await world.versions("secrets", "s-plain")).at(-1) },
      ]);
    }
    // upstream's provider does not know them: a pattern is a name Key Vault refuses
    for (const p of [pairing("ours", "upstream"), pairing("upstream", "upstream")]) {
      expect((await publishError(p, "extensions")).details, p.id).toMatch(/objectName:ext-\*/);
    }
  });

  it("our driver gives upstream's provider's files the pod's fsGroup; upstream's driver ignores it", async () => {
    const ours = await publish(pairing("ours", "upstream"), "rich", { group: "2000" });
    await ours.call();
    const root = await stat(ours.target);
    expect([root.gid, root.mode & 0o7777]).toEqual([2000, 0o2750]);
    const files = await volumeFiles(ours.target);
    expect(files.get("config/blob.bin")!.mode).toBe(0o640); // 0600 asked, group read added
    expect(files.get("s-plain")!.mode).toBe(0o644);
    for (const path of files.keys()) expect((await stat(join(ours.target, path))).gid, path).toBe(2000);

    const upstream = await publish(pairing("upstream", "upstream"), "rich", { group: "2000" });
    await upstream.call();
    expect((await stat(join(upstream.target, "s-plain"))).gid).toBe(0);
  });

  it("NodeUnpublishVolume removes every pairing's volume", async () => {
    for (const p of pairings) {
      const { target, call } = await publish(p, "rich");
      await call();
      await p.csi.call("Node", "NodeUnpublishVolume", { volume_id: `csi-${n}`, target_path: target });
      expect((await listMounts()).some((m) => m.mountPoint === target), p.id).toBe(false);
      expect(existsSync(target), p.id).toBe(false);
    }
  });
});
