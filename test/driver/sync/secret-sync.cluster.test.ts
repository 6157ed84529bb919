// The secretObjects syncer against a real kube-apiserver, with the driver's own
// RBAC from deploy/, and real garbage collection by kube-controller-manager:
// Secrets are created with their owners in one write, left alone when nothing
// changed, patched when something did, never taken over when someone else owns
// the name, and deleted by GC exactly when the last owner goes.
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type CoreV1Event,
  type KubeConfig,
  type V1OwnerReference,
  type V1Secret,
} from "@kubernetes/client-node";
import forge from "node-forge";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeVolumeFiles } from "../../../src/driver/volume/atomic-writer.ts";
import type { VolumeMount } from "../../../src/driver/volume/target-state.ts";
import { TargetLocks } from "../../../src/driver/volume/target-locks.ts";
import type { DriverContext } from "../../../src/driver/context.ts";
import { KubeClient, type PodRef } from "../../../src/driver/kube/kube-client.ts";
import { loadKubeConnection } from "../../../src/shared/kube/kube-connection.ts";
import { SecretsApi } from "../../../src/driver/sync/secret-api.ts";
import { MANAGED_SECRET_LABEL, type SecretObject, type SecretProviderClass } from "../../../src/shared/kube/kube-types.ts";
import { DriverMetrics } from "../../../src/driver/metrics.ts";
import { MountedVolumes, type MountedVolume } from "../../../src/driver/volume/mounted-volumes.ts";
import { parseDriverOptions } from "../../../src/driver/options.ts";
import { buildPodStatus, podStatusName } from "../../../src/driver/kube/pod-status.ts";
import { SecretSyncer } from "../../../src/driver/sync/secret-sync.ts";
import { createLogger } from "../../../src/shared/logger.ts";
import {
  apiErrorCode,
  applyYaml,
  auditLogOffset,
  createNamespace,
  kubeConfigFromInjected,
  kubeconfigFor,
  readAuditEvents,
  startControllerManager,
  waitFor,
} from "../../harness/kube.ts";
import { removeTestTree, requireRoot } from "../../support/driver-process.ts";
import { csiTarget, mountTmpfsVolume } from "../../support/tmpfs-volume.ts";

const NS = "secret-sync";
const NODE = "node-a";
const SPCPS_API_VERSION = "secrets-store.csi.x-k8s.io/v1";
const DRIVER_USER = "secret-sync-test-driver";
const NO_SYNC_USER = "secret-sync-test-no-sync";
const GC_TIMEOUT_MS = 90_000;
const SPC_GROUP = "secrets-store.csi.x-k8s.io";
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** Every secret value used in this file: none may appear in a log line or an event. */
const secretValues: string[] = [];
function secretValue(label: string): string {
  const v = `${label}-${randomBytes(12).toString("hex")}`;
  secretValues.push(v);
  return v;
}
const b64 = (v: string | Buffer) => Buffer.from(v).toString("base64");

describe("SecretSyncer against a real kube-apiserver", () => {
  let admin: KubeConfig;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let base: string;
  let driverKube: KubeClient;
  let ctx: DriverContext;
  let syncer: SecretSyncer;
  const logLines: string[] = [];
  let volumes = 0;
  const mounts = new Map<string, VolumeMount>();

  const logger = createLogger({
    name: "secret-sync-test",
    level: "debug",
    destination: new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString("utf8"));
        done();
      },
    }),
  });

  function makeContext(kube: KubeClient, argv: string[] = []): DriverContext {
    const metrics = new DriverMetrics({ defaultMetrics: false });
    // The test's provider counts as installed on the node, as its socket would.
    metrics.knowProviders((provider) => provider === "fake");
    return {
      options: parseDriverOptions([`--nodeid=${NODE}`, `--kubelet-dir=${base}`, ...argv]),
      logger,
      metrics,
      // The syncer needs neither mounts nor providers.
      mounter: undefined as never,
      providers: undefined as never,
      volumes: new MountedVolumes(),
      locks: new TargetLocks(),
      kube,
    };
  }

  /** A mounted volume: a real tmpfs written with the atomic writer, as NodePublishVolume mounts and writes it. */
  async function mount(files: Record<string, string | Buffer>): Promise<string> {
    const target = await csiTarget(base, "sync-pod", `vol-${++volumes}`);
    mounts.set(target, await mountTmpfsVolume(base, target));
    await rewrite(target, files);
    return target;
  }

  async function rewrite(target: string, files: Record<string, string | Buffer>): Promise<void> {
    await writeVolumeFiles(
      target,
      Object.entries(files).map(([path, c]) => ({ path, mode: 0o644, contents: Buffer.isBuffer(c) ? c : Buffer.from(c) })),
    );
  }

  async function createPod(name: string, ownerReferences?: V1OwnerReference[]): Promise<PodRef> {
    const pod = await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name, ...(ownerReferences ? { ownerReferences } : {}) },
        spec: { containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] },
      },
    });
    return { name, namespace: NS, uid: pod.metadata!.uid! };
  }

  /** Records the pod status object as NodePublishVolume does, and returns its uid. */
  async function recordPodStatus(pod: PodRef, spcName: string, target: string): Promise<string> {
    await driverKube.upsertPodStatus(buildPodStatus({ pod, spcName, nodeName: NODE, targetPath: target, objectVersions: [] }));
    const status = await driverKube.getPodStatus(NS, podStatusName(pod.name, NS, spcName));
    return status!.metadata.uid!;
  }

  function volumeOf(pod: PodRef, target: string, spcName: string): MountedVolume {
    const now = Date.now();
    return {
      targetPath: target,
      volumeId: `csi-${volumes}`,
      // The syncer reads only from the recorded tmpfs.
      mount: mounts.get(target) ?? { id: 0, dev: "0:0", source: "none", birthtimeNs: 0n },
      pod,
      spcName,
      provider: "fake",
      volumeContext: {},
      secrets: {},
      objectVersions: [],
      lastRefresh: now,
      lastChange: now,
      failures: 0,
    };
  }

  const spcOf = (name: string, secretObjects: SecretObject[]): SecretProviderClass => ({
    apiVersion: SPCPS_API_VERSION,
    kind: "SecretProviderClass",
    metadata: { name, namespace: NS },
    spec: { provider: "fake", parameters: { objects: "x" }, secretObjects },
  });

  async function readSecret(name: string): Promise<V1Secret | undefined> {
    try {
      return await core.readNamespacedSecret({ name, namespace: NS });
    } catch (err) {
      if (apiErrorCode(err) === 404) return undefined;
      throw err;
    }
  }

  async function eventsOf(pod: PodRef): Promise<CoreV1Event[]> {
    const list = await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.uid=${pod.uid}` });
    return list.items;
  }

  /** create/update/patch/delete requests on the Secret since the audit-log offset. */
  async function secretWrites(name: string, fromOffset: number): Promise<string[]> {
    const events = await readAuditEvents({ fromOffset });
    return events
      .filter((e) => e.stage === "ResponseComplete" && e.objectRef?.resource === "secrets" && e.objectRef.namespace === NS && e.objectRef.name === name)
      .filter((e) => ["create", "update", "patch", "delete"].includes(e.verb))
      .map((e) => `${e.verb}:${e.user.username}:${e.responseStatus?.code ?? "?"}`);
  }

  const readPodStatus = (name: string): Promise<unknown> =>
    admin.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group: SPC_GROUP,
      version: "v1",
      namespace: NS,
      plural: "secretproviderclasspodstatuses",
      name,
    });

  async function waitGone(what: string, read: () => Promise<unknown>): Promise<void> {
    await waitFor(
      async () => {
        try {
          await read();
          return false;
        } catch (err) {
          if (apiErrorCode(err) === 404) return true;
          throw err;
        }
      },
      { description: `${what} to be deleted by garbage collection`, timeoutMs: GC_TIMEOUT_MS, intervalMs: 250 },
    );
  }

  beforeAll(async () => {
    requireRoot();
    admin = kubeConfigFromInjected();
    core = admin.makeApiClient(CoreV1Api);
    apps = admin.makeApiClient(AppsV1Api);
    // Garbage collection, deployments and replica sets are what this file is about.
    await startControllerManager();
    await createNamespace(admin, NS);

    // The driver runs with the ClusterRoles the project ships, bound to a test user.
    const repo = join(import.meta.dirname, "..", "..", "..");
    await applyYaml(admin, await readFile(join(repo, "deploy", "rbac-secretproviderclass.yaml"), "utf8"));
    await applyYaml(admin, await readFile(join(repo, "deploy", "rbac-secretprovidersyncing.yaml"), "utf8"));
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    const bind = async (name: string, role: string, user: string) => {
      const body = {
        metadata: { name },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
      };
      await rbac.createClusterRoleBinding({ body }).catch((err: unknown) => {
        if (apiErrorCode(err) !== 409) throw err;
      });
    };
    await bind(`${DRIVER_USER}-driver`, "secretproviderclasses-role", DRIVER_USER);
    await bind(`${DRIVER_USER}-sync`, "secretprovidersyncing-role", DRIVER_USER);
    await bind(`${NO_SYNC_USER}-driver`, "secretproviderclasses-role", NO_SYNC_USER);

    driverKube = new KubeClient(await loadKubeConnection(await kubeconfigFor(DRIVER_USER)), logger, { nodeName: NODE });
    // RBAC bindings take effect asynchronously in the authorizer cache.
    // A get of a Secret that does not exist answers 404 once the driver may read Secrets (403 before).
    await waitFor(
      async () =>
        new SecretsApi(driverKube.rest).get(NS, "rbac-probe").then(
          () => true,
          (err: unknown) => {
            if (apiErrorCode(err) === 404) return true;
            throw err;
          },
        ),
      { description: "the driver's RBAC to allow reading secrets" },
    );
    base = await mkdtemp(join(tmpdir(), "secret-sync-"));
    ctx = makeContext(driverKube);
    syncer = new SecretSyncer(ctx);
  });

  afterAll(async () => {
    await removeTestTree(base);
  });

  describe("a bare pod's Opaque Secret", () => {
    let pod: PodRef;
    let target: string;
    let statusUid: string;
    let password: string;
    const binary = Buffer.concat([Buffer.from([0x00, 0xff, 0xfe, 0x80]), randomBytes(512)]);
    secretValues.push(binary.toString("base64"));
    const objects = (extra: Partial<SecretObject> = {}): SecretObject[] => [
      {
        secretName: "opaque",
        type: "Opaque",
        labels: { app: "web" },
        annotations: { "example.com/note": "synced" },
        data: [
          { objectName: "db-password", key: "password" },
          { objectName: "blob", key: "blob.bin" },
          { objectName: "multi/0", key: "zero" },
        ],
        ...extra,
      },
    ];

    beforeAll(async () => {
      pod = await createPod("opaque-app");
      password = secretValue("password");
      target = await mount({ "db-password": password, blob: binary, "multi/0": "zero-value" });
      statusUid = await recordPodStatus(pod, "opaque-spc", target);
    });

    it("is created in one write with labels, annotations, the managed label and the pod status as owner", async () => {
      const offset = await auditLogOffset();
      const result = await syncer.syncVolume(volumeOf(pod, target, "opaque-spc"), spcOf("opaque-spc", objects()));
      expect(result).toEqual({ created: ["opaque"], updated: [], unchanged: [], failed: [] });

      const secret = (await readSecret("opaque"))!;
      expect(secret.type).toBe("Opaque");
      expect(secret.metadata!.labels).toEqual({ app: "web", [MANAGED_SECRET_LABEL]: "true" });
      expect(secret.metadata!.annotations).toEqual({ "example.com/note": "synced" });
      expect(secret.data).toEqual({ password: b64(password), "blob.bin": binary.toString("base64"), zero: b64("zero-value") });
      const owners = secret.metadata!.ownerReferences!;
      expect(owners).toHaveLength(1);
      expect(owners[0]).toMatchObject({
        apiVersion: SPCPS_API_VERSION,
        kind: "SecretProviderClassPodStatus",
        name: `opaque-app-${NS}-opaque-spc`,
        uid: statusUid,
      });
      // Never the controller, never blocking the owner's deletion.
      expect(owners[0]!.controller).toBeUndefined();
      expect(owners[0]!.blockOwnerDeletion).toBeUndefined();
      // Exactly one write, by the driver's identity: there was never a Secret without owners.
      expect(await secretWrites("opaque", offset)).toEqual([`create:${DRIVER_USER}:201`]);
    });

    it("is not written at all when nothing changed", async () => {
      const before = (await readSecret("opaque"))!;
      const offset = await auditLogOffset();
      const result = await syncer.syncVolume(volumeOf(pod, target, "opaque-spc"), spcOf("opaque-spc", objects()));
      expect(result).toEqual({ created: [], updated: [], unchanged: ["opaque"], failed: [] });
      const after = (await readSecret("opaque"))!;
      expect(after.metadata!.resourceVersion).toBe(before.metadata!.resourceVersion);
      expect(await secretWrites("opaque", offset)).toEqual([]);
    });

    it("is patched when the mounted data changes, keeping what others added, with a rotation event", async () => {
      // Another controller adds its own label and annotation meanwhile.
      await core.patchNamespacedSecret(
        { name: "opaque", namespace: NS, body: { metadata: { labels: { other: "kept" }, annotations: { "other.example/x": "kept" } } } },
        mergePatch,
      );
      const before = (await readSecret("opaque"))!;
      password = secretValue("password-v2");
      await rewrite(target, { "db-password": password, blob: binary, "multi/0": "zero-value" });

      const offset = await auditLogOffset();
      const result = await syncer.syncVolume(volumeOf(pod, target, "opaque-spc"), spcOf("opaque-spc", objects()));
      expect(result).toEqual({ created: [], updated: ["opaque"], unchanged: [], failed: [] });

      const after = (await readSecret("opaque"))!;
      expect(after.metadata!.resourceVersion).not.toBe(before.metadata!.resourceVersion);
      expect(after.data).toEqual({ password: b64(password), "blob.bin": binary.toString("base64"), zero: b64("zero-value") });
      expect(after.metadata!.labels).toEqual({ app: "web", other: "kept", [MANAGED_SECRET_LABEL]: "true" });
      expect(after.metadata!.annotations).toEqual({ "example.com/note": "synced", "other.example/x": "kept" });
      expect(after.metadata!.ownerReferences).toEqual(before.metadata!.ownerReferences);
      expect(await secretWrites("opaque", offset)).toEqual([`patch:${DRIVER_USER}:200`]);

      const events = await eventsOf(pod);
      const rotated = events.filter((e) => e.reason === "SecretRotationComplete");
      expect(rotated).toHaveLength(1);
      expect(rotated[0]!.type).toBe("Normal");
      expect(rotated[0]!.message).toBe("successfully rotated K8s secret opaque");
      expect(rotated[0]!.source?.component).toBe("csi-secrets-store-controller");
    });

    it("follows secretObjects edits: a new label alone is patched without a rotation event, a removed key disappears", async () => {
      const offset = await auditLogOffset();
      let result = await syncer.syncVolume(
        volumeOf(pod, target, "opaque-spc"),
        spcOf("opaque-spc", objects({ labels: { app: "web", tier: "db" } })),
      );
      expect(result.updated).toEqual(["opaque"]);
      let secret = (await readSecret("opaque"))!;
      expect(secret.metadata!.labels).toEqual({ app: "web", tier: "db", other: "kept", [MANAGED_SECRET_LABEL]: "true" });
      expect((await eventsOf(pod)).filter((e) => e.reason === "SecretRotationComplete")).toHaveLength(1);

      const fewer = objects({ labels: { app: "web", tier: "db" } });
      fewer[0]!.data = fewer[0]!.data!.filter((d) => d.key !== "zero");
      result = await syncer.syncVolume(volumeOf(pod, target, "opaque-spc"), spcOf("opaque-spc", fewer));
      expect(result.updated).toEqual(["opaque"]);
      secret = (await readSecret("opaque"))!;
      expect(Object.keys(secret.data!).sort()).toEqual(["blob.bin", "password"]);
      expect(await secretWrites("opaque", offset)).toEqual([`patch:${DRIVER_USER}:200`, `patch:${DRIVER_USER}:200`]);
    });

    it("is deleted by garbage collection with the pod (via its pod status), and a late sync does not bring it back", async () => {
      const statusName = podStatusName(pod.name, NS, "opaque-spc");
      expect(await readSecret("opaque")).toBeDefined();
      await core.deleteNamespacedPod({ name: pod.name, namespace: NS });
      await waitGone(`pod status ${statusName}`, () => readPodStatus(statusName));
      await waitGone("secret opaque", () => core.readNamespacedSecret({ name: "opaque", namespace: NS }));

      // A refresh racing with the deletion finds the pod gone and writes nothing.
      const offset = await auditLogOffset();
      const result = await syncer.syncVolume(volumeOf(pod, target, "opaque-spc"), spcOf("opaque-spc", objects()));
      expect(result).toEqual({ created: [], updated: [], unchanged: [], failed: [] });
      expect(await readSecret("opaque")).toBeUndefined();
      expect(await secretWrites("opaque", offset)).toEqual([]);
    });
  });

  describe("kubernetes.io/tls", () => {
    let pod: PodRef;
    let certPem: string;
    let keyPkcs1: string;
    let pfx: Buffer;

    beforeAll(async () => {
      pod = await createPod("tls-app");
      const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 });
      const cert = forge.pki.createCertificate();
      cert.publicKey = keys.publicKey;
      cert.serialNumber = "01";
      cert.validity.notBefore = new Date(Date.now() - 60_000);
      cert.validity.notAfter = new Date(Date.now() + 86_400_000);
      cert.setSubject([{ name: "commonName", value: "tls.example.test" }]);
      cert.setIssuer([{ name: "commonName", value: "tls.example.test" }]);
      cert.sign(keys.privateKey, forge.md.sha256.create());
      certPem = forge.pki.certificateToPem(cert).replace(/\r\n/g, "\n");
      keyPkcs1 = forge.pki.privateKeyToPem(keys.privateKey).replace(/\r\n/g, "\n");
      pfx = Buffer.from(forge.asn1.toDer(forge.pkcs12.toPkcs12Asn1(keys.privateKey, [cert], "", { algorithm: "3des" })).getBytes(), "binary");
      secretValues.push(keyPkcs1.split("\n")[1]!, pfx.toString("base64").slice(0, 64));
    });

    it("derives tls.crt and tls.key from a PEM bundle (PKCS#8 key) and from a PFX archive", async () => {
      const pkcs8 = forge.pki.privateKeyInfoToPem(forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(forge.pki.privateKeyFromPem(keyPkcs1))));
      const target = await mount({ "bundle.pem": `${pkcs8}${certPem}`, "cert.pfx": pfx });
      await recordPodStatus(pod, "tls-spc", target);
      const data = (objectName: string) => [
        { objectName, key: "tls.crt" },
        { objectName, key: "tls.key" },
      ];
      const result = await syncer.syncVolume(
        volumeOf(pod, target, "tls-spc"),
        spcOf("tls-spc", [
          { secretName: "tls-from-pem", type: "kubernetes.io/tls", data: data("bundle.pem") },
          { secretName: "tls-from-pfx", type: "kubernetes.io/tls", data: data("cert.pfx") },
        ]),
      );
      expect(result).toEqual({ created: ["tls-from-pem", "tls-from-pfx"], updated: [], unchanged: [], failed: [] });
      for (const name of ["tls-from-pem", "tls-from-pfx"]) {
        const secret = (await readSecret(name))!;
        expect(secret.type).toBe("kubernetes.io/tls");
        expect(Object.keys(secret.data!).sort()).toEqual(["tls.crt", "tls.key"]);
        expect(Buffer.from(secret.data!["tls.crt"]!, "base64").toString()).toBe(certPem);
        expect(Buffer.from(secret.data!["tls.key"]!, "base64").toString()).toBe(keyPkcs1);
      }
    });

    it("refuses keys other than tls.crt/tls.key with upstream's error, as a Warning event", async () => {
      const target = await mount({ "bundle.pem": `${keyPkcs1}${certPem}` });
      await recordPodStatus(pod, "tls-bad-spc", target);
      const result = await syncer.syncVolume(
        volumeOf(pod, target, "tls-bad-spc"),
        spcOf("tls-bad-spc", [{ secretName: "tls-bad", type: "kubernetes.io/tls", data: [{ objectName: "bundle.pem", key: "ca.crt" }] }]),
      );
      const message = `failed to get data in spc ${NS}/tls-bad-spc for secret tls-bad, err: failed to get cert data from file ${join(target, "bundle.pem")}, err: key 'ca.crt' is not supported. Only 'tls.key' and 'tls.crt' are supported`;
      expect(result.failed).toEqual([{ secretName: "tls-bad", reason: message }]);
      expect(await readSecret("tls-bad")).toBeUndefined();
      const events = (await eventsOf(pod)).filter((e) => e.reason === "FailedToCreateSecret");
      expect(events.map((e) => [e.type, e.message])).toContainEqual(["Warning", message]);
    });
  });

  describe("Secrets the driver does not manage", () => {
    let pod: PodRef;
    let target: string;

    beforeAll(async () => {
      pod = await createPod("guard-app");
      target = await mount({ value: secretValue("mounted") });
      await recordPodStatus(pod, "guard-spc", target);
    });

    it("leaves a pre-existing unmanaged Secret byte for byte untouched, warns on the pod, and still syncs the others", async () => {
      const theirs = secretValue("theirs");
      await core.createNamespacedSecret({
        namespace: NS,
        body: { metadata: { name: "taken", labels: { owner: "someone-else" } }, type: "Opaque", data: { value: b64(theirs) } },
      });
      const before = JSON.stringify(await readSecret("taken"));
      const offset = await auditLogOffset();
      const result = await syncer.syncVolume(
        volumeOf(pod, target, "guard-spc"),
        spcOf("guard-spc", [
          { secretName: "taken", type: "Opaque", data: [{ objectName: "value", key: "value" }] },
          { secretName: "free", type: "Opaque", data: [{ objectName: "value", key: "value" }] },
        ]),
      );
      expect(result.created).toEqual(["free"]);
      expect(result.failed).toHaveLength(1);
      expect(result.failed[0]!.secretName).toBe("taken");
      expect(result.failed[0]!.reason).toMatch(/already exists and is not managed by the secrets-store csi driver/);

      expect(JSON.stringify(await readSecret("taken"))).toBe(before);
      expect(await secretWrites("taken", offset)).toEqual([]);

      const warnings = (await eventsOf(pod)).filter((e) => e.type === "Warning" && e.reason === "FailedToCreateSecret");
      expect(warnings.map((e) => e.message)).toContainEqual(
        `secret ${NS}/taken already exists and is not managed by the secrets-store csi driver (no label ${MANAGED_SECRET_LABEL}=true); it was left unchanged`,
      );
      expect(warnings[0]!.source?.component).toBe("csi-secrets-store-controller");
    });

    it("reports a changed type instead of writing (the type of a Secret is immutable)", async () => {
      const spc = (type: string) => spcOf("guard-spc", [{ secretName: "typed", type, data: [{ objectName: "value", key: "username" }] }]);
      expect((await syncer.syncVolume(volumeOf(pod, target, "guard-spc"), spc("Opaque"))).created).toEqual(["typed"]);
      const before = JSON.stringify(await readSecret("typed"));
      const offset = await auditLogOffset();
      const result = await syncer.syncVolume(volumeOf(pod, target, "guard-spc"), spc("kubernetes.io/basic-auth"));
      expect(result.failed.map((f) => f.secretName)).toEqual(["typed"]);
      expect(JSON.stringify(await readSecret("typed"))).toBe(before);
      expect(await secretWrites("typed", offset)).toEqual([]);
      const events = (await eventsOf(pod)).filter((e) => e.reason === "SecretRotationFailed");
      expect(events).toHaveLength(1);
      expect(events[0]!.type).toBe("Warning");
      expect(events[0]!.message).toMatch(/its type is Opaque but secretObjects wants kubernetes\.io\/basic-auth/);
    });

    it("adds its owner to a managed Secret and never strips the owners already there", async () => {
      const cm = await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: "other-owner" } } });
      const otherOwner = { apiVersion: "v1", kind: "ConfigMap", name: "other-owner", uid: cm.metadata!.uid! };
      await core.createNamespacedSecret({
        namespace: NS,
        body: {
          metadata: { name: "shared", labels: { [MANAGED_SECRET_LABEL]: "true" }, ownerReferences: [otherOwner] },
          type: "Opaque",
          data: { stale: b64("old") },
        },
      });
      const offset = await auditLogOffset();
      const result = await syncer.syncVolume(
        volumeOf(pod, target, "guard-spc"),
        spcOf("guard-spc", [{ secretName: "shared", type: "Opaque", data: [{ objectName: "value", key: "value" }] }]),
      );
      expect(result.updated).toEqual(["shared"]);
      const secret = (await readSecret("shared"))!;
      expect(secret.metadata!.ownerReferences!.map((o) => [o.kind, o.name])).toEqual([
        ["ConfigMap", "other-owner"],
        ["SecretProviderClassPodStatus", podStatusName(pod.name, NS, "guard-spc")],
      ]);
      expect(Object.keys(secret.data!)).toEqual(["value"]);
      expect(await secretWrites("shared", offset)).toEqual([`patch:${DRIVER_USER}:200`]);
    });

    it("reports invalid secretObjects and missing files as Warning events and syncs the valid ones", async () => {
      const result = await syncer.syncVolume(
        volumeOf(pod, target, "guard-spc"),
        spcOf("guard-spc", [
          { secretName: "", type: "Opaque", data: [{ objectName: "value", key: "v" }] },
          { secretName: "no-type", type: "", data: [{ objectName: "value", key: "v" }] },
          { secretName: "missing-file", type: "Opaque", data: [{ objectName: "nope", key: "v" }] },
          { secretName: "valid", type: "Opaque", data: [{ objectName: "value", key: "v" }] },
        ]),
      );
      expect(result.created).toEqual(["valid"]);
      expect(result.failed.map((f) => f.reason)).toEqual([
        `failed validation for secret object in spc ${NS}/guard-spc, err: secret name is empty`,
        `failed validation for secret object in spc ${NS}/guard-spc, err: secret type is empty`,
        `failed to get data in spc ${NS}/guard-spc for secret missing-file, err: file matching objectName nope not found in the pod`,
      ]);
      const messages = (await eventsOf(pod)).filter((e) => e.type === "Warning").map((e) => e.message);
      for (const f of result.failed) expect(messages).toContain(f.reason);
      expect(await readSecret("missing-file")).toBeUndefined();
    });

    it("reports unreadable mounted files for every secretObject, once, as a Warning event", async () => {
      const gone = await csiTarget(base, "sync-pod", "no-such-volume");
      const result = await syncer.syncVolume(
        volumeOf(pod, gone, "guard-spc"),
        spcOf("guard-spc", [
          { secretName: "files-a", type: "Opaque", data: [{ objectName: "value", key: "v" }] },
          { secretName: "files-b", type: "Opaque", data: [{ objectName: "value", key: "v" }] },
        ]),
      );
      expect(result.failed.map((f) => f.secretName)).toEqual(["files-a", "files-b"]);
      expect(result.failed[0]!.reason).toMatch(/^failed to get mounted files, err: target path .* is gone/);
      const events = (await eventsOf(pod)).filter((e) => e.type === "Warning" && e.message?.startsWith("failed to get mounted files"));
      expect(events).toHaveLength(1);
      expect(await readSecret("files-a")).toBeUndefined();
    });

    it("without Secret RBAC fails cleanly and logs the syncSecret.enabled hint", async () => {
      const kube = new KubeClient(await loadKubeConnection(await kubeconfigFor(NO_SYNC_USER)), logger, { nodeName: NODE });
      await waitFor(async () => (await kube.getPodStatus(NS, podStatusName(pod.name, NS, "guard-spc"))) !== undefined, {
        description: "the no-sync user's RBAC to allow reading pod statuses",
      });
      const restricted = new SecretSyncer(makeContext(kube));
      const linesBefore = logLines.length;
      const result = await restricted.syncVolume(
        volumeOf(pod, target, "guard-spc"),
        spcOf("guard-spc", [{ secretName: "forbidden", type: "Opaque", data: [{ objectName: "value", key: "v" }] }]),
      );
      expect(result.failed.map((f) => f.secretName)).toEqual(["forbidden"]);
      expect(result.failed[0]!.reason).toMatch(/^failed to get secret secret-sync\/forbidden, err: .*forbidden/);
      expect(logLines.slice(linesBefore).join("")).toContain(
        "The secret operation failed with forbidden error. If you installed the CSI driver using helm, ensure syncSecret.enabled=true is set.",
      );
      expect(await readSecret("forbidden")).toBeUndefined();
    });

    it("does nothing when sync is disabled", async () => {
      const disabled = new SecretSyncer(makeContext(driverKube, ["--enable-secret-sync=false"]));
      const offset = await auditLogOffset();
      const result = await disabled.syncVolume(
        volumeOf(pod, target, "guard-spc"),
        spcOf("guard-spc", [{ secretName: "disabled", type: "Opaque", data: [{ objectName: "value", key: "v" }] }]),
      );
      expect(result).toEqual({ created: [], updated: [], unchanged: [], failed: [] });
      expect(await readSecret("disabled")).toBeUndefined();
      expect(await secretWrites("disabled", offset)).toEqual([]);
    });
  });

  describe("a Deployment's Secret", () => {
    it(
      "is owned by the ReplicaSet, survives scale to zero and back, and is deleted by GC with the Deployment",
      async () => {
        const name = "web";
        await apps.createNamespacedDeployment({
          namespace: NS,
          body: {
            metadata: { name },
            spec: {
              replicas: 1,
              selector: { matchLabels: { app: name } },
              template: {
                metadata: { labels: { app: name } },
                spec: { containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] },
              },
            },
          },
        });
        const replicaSet = await waitFor(
          async () => (await apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: `app=${name}` })).items[0],
          { description: "the Deployment's ReplicaSet", timeoutMs: 60_000 },
        );
        const rsOwner = { apiVersion: "apps/v1", kind: "ReplicaSet", name: replicaSet.metadata!.name!, uid: replicaSet.metadata!.uid! };
        // No scheduler runs, so the controller's pod stays Pending; it is a real pod owned by the ReplicaSet.
        const podOf = async () =>
          waitFor(
            async () =>
              (await core.listNamespacedPod({ namespace: NS, labelSelector: `app=${name}` })).items.find((p) => !p.metadata?.deletionTimestamp),
            { description: "the ReplicaSet's pod", timeoutMs: 60_000 },
          );
        const first = await podOf();
        expect(first.metadata!.ownerReferences!.map((o) => o.uid)).toEqual([rsOwner.uid]);
        const pod1: PodRef = { name: first.metadata!.name!, namespace: NS, uid: first.metadata!.uid! };
        const target = await mount({ token: secretValue("deploy-token") });
        await recordPodStatus(pod1, "web-spc", target);
        const spc = spcOf("web-spc", [{ secretName: "web-secret", type: "Opaque", data: [{ objectName: "token", key: "token" }] }]);

        expect((await syncer.syncVolume(volumeOf(pod1, target, "web-spc"), spc)).created).toEqual(["web-secret"]);
        const created = (await readSecret("web-secret"))!;
        expect(created.metadata!.ownerReferences).toHaveLength(1);
        expect(created.metadata!.ownerReferences![0]).toMatchObject(rsOwner);
        expect(created.metadata!.ownerReferences![0]!.controller).toBeUndefined();

        // A sentinel owned by the pod proves that GC processed the pod's deletion.
        await core.createNamespacedConfigMap({
          namespace: NS,
          body: { metadata: { name: "pod1-sentinel", ownerReferences: [{ apiVersion: "v1", kind: "Pod", name: pod1.name, uid: pod1.uid }] } },
        });
        await apps.patchNamespacedDeploymentScale({ name, namespace: NS, body: { spec: { replicas: 0 } } }, mergePatch);
        await waitGone(`pod ${pod1.name}`, () => core.readNamespacedPod({ name: pod1.name, namespace: NS }));
        await waitGone("the pod's sentinel ConfigMap", () => core.readNamespacedConfigMap({ name: "pod1-sentinel", namespace: NS }));
        await waitGone(`pod status of ${pod1.name}`, () => readPodStatus(podStatusName(pod1.name, NS, "web-spc")));
        // GC has run for the pod; the ReplicaSet (scaled to 0) still owns the Secret.
        await new Promise((r) => setTimeout(r, 2000));
        const kept = await readSecret("web-secret");
        expect(kept?.metadata?.resourceVersion).toBe(created.metadata!.resourceVersion);
        expect((await apps.readNamespacedReplicaSet({ name: rsOwner.name, namespace: NS })).spec!.replicas).toBe(0);

        // Scale back: the new pod belongs to the same ReplicaSet, so the Secret is already right.
        await apps.patchNamespacedDeploymentScale({ name, namespace: NS, body: { spec: { replicas: 1 } } }, mergePatch);
        const second = await podOf();
        const pod2: PodRef = { name: second.metadata!.name!, namespace: NS, uid: second.metadata!.uid! };
        expect(pod2.uid).not.toBe(pod1.uid);
        await recordPodStatus(pod2, "web-spc", target);
        const offset = await auditLogOffset();
        expect((await syncer.syncVolume(volumeOf(pod2, target, "web-spc"), spc)).unchanged).toEqual(["web-secret"]);
        expect(await secretWrites("web-secret", offset)).toEqual([]);

        // The Deployment is the last owner (through its ReplicaSet): GC really deletes the Secret.
        expect(await readSecret("web-secret")).toBeDefined();
        await apps.deleteNamespacedDeployment({ name, namespace: NS, propagationPolicy: "Background" });
        await waitGone(`ReplicaSet ${rsOwner.name}`, () => apps.readNamespacedReplicaSet({ name: rsOwner.name, namespace: NS }));
        await waitGone("secret web-secret", () => core.readNamespacedSecret({ name: "web-secret", namespace: NS }));
      },
      4 * GC_TIMEOUT_MS,
    );
  });

  it("counts syncs and failures in upstream's metrics, with no free text in labels", async () => {
    const created = await ctx.metrics.syncK8sSecret.get();
    const total = created.values.find((v) => v.labels.provider === "fake" && v.labels.os_type === "linux");
    // opaque(create + 3 patches), tls x2, free, typed, shared(patch), valid, web-secret
    expect(total?.value).toBe(11);
    const errors = (await ctx.metrics.syncK8sSecretError.get()).values;
    const byType = Object.fromEntries(errors.map((v) => [v.labels.error_type, v.value]));
    expect(byType).toEqual({
      FailedToGetSecretData: 2,
      SecretNotManaged: 1,
      SecretTypeImmutable: 1,
      InvalidSecretObject: 2,
      FailedToGetMountedFiles: 2,
    });
    const duration = await ctx.metrics.syncK8sSecretDuration.get();
    const count = duration.values.find((v) => (v as { metricName?: string }).metricName === "k8s_secret_duration_sec_count");
    // opaque 6, tls 2, guard 6 (forbidden and disabled use their own context), web 2
    expect(count?.value).toBe(16);
  });

  it("never put a secret value in a log line or an event", async () => {
    expect(secretValues.length).toBeGreaterThan(5);
    const logs = logLines.join("");
    expect(logs.length).toBeGreaterThan(0);
    const events = (await core.listNamespacedEvent({ namespace: NS })).items.map((e) => e.message ?? "").join("\n");
    expect(events.length).toBeGreaterThan(0);
    for (const v of secretValues) {
      expect(logs).not.toContain(v);
      expect(events).not.toContain(v);
      expect(logs).not.toContain(b64(v));
    }
  });
});

