// Proves the real-Kubernetes harness: the API server, our CRDs as served by it,
// garbage collection by the real controller manager, RBAC for least-privilege
// users, service-account tokens and the audit log.
import { randomBytes } from "node:crypto";
import {
  ApiextensionsV1Api,
  AppsV1Api,
  AuthenticationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  RbacAuthorizationV1Api,
  VersionApi,
  type V1CustomResourceDefinition,
  type V1Pod,
} from "@kubernetes/client-node";
import { beforeAll, describe, expect, inject, it } from "vitest";
import {
  apiErrorCode,
  applyYaml,
  auditLogOffset,
  createNamespace,
  kubeConfigFromInjected,
  kubeconfigFor,
  loadKubeConfig,
  rawRequest,
  readAuditEvents,
  startControllerManager,
  waitFor,
} from "./kube.ts";

const GROUP = "secrets-store.csi.x-k8s.io";
const SPC = "secretproviderclasses";
const SPCPS = "secretproviderclasspodstatuses";
const DEPRECATION = "secrets-store.csi.x-k8s.io/v1alpha1 is deprecated. Use secrets-store.csi.x-k8s.io/v1 instead.";

const kc = kubeConfigFromInjected();
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const suffix = randomBytes(3).toString("hex");
const ns = `harness-${suffix}`;

async function expectStatus(promise: Promise<unknown>, code: number): Promise<void> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected the call to fail with HTTP ${code}`).toBeDefined();
  expect(apiErrorCode(caught), String(caught)).toBe(code);
}

async function createPod(name: string): Promise<V1Pod> {
  return core.createNamespacedPod({
    namespace: ns,
    body: { metadata: { name }, spec: { containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] } },
  });
}

function spcpsFor(pod: V1Pod, spcName: string): Record<string, unknown> {
  const podName = pod.metadata?.name ?? "";
  return {
    apiVersion: `${GROUP}/v1`,
    kind: "SecretProviderClassPodStatus",
    metadata: {
      name: `${podName}-${ns}-${spcName}`,
      namespace: ns,
      labels: { "internal.secrets-store.csi.k8s.io/node-name": "node-a" },
      ownerReferences: [{ apiVersion: "v1", kind: "Pod", name: podName, uid: pod.metadata?.uid ?? "" }],
    },
    status: {
      podName,
      secretProviderClassName: spcName,
      mounted: true,
      targetPath: `/var/lib/kubelet/pods/${pod.metadata?.uid ?? ""}/volumes/kubernetes.io~csi/secrets/mount`,
      objects: [
        { id: "secret/alpha", version: "v1" },
        { id: "secret/beta", version: "v7" },
      ],
    },
  };
}

async function readSpcps(name: string): Promise<Record<string, unknown>> {
  return (await custom.getNamespacedCustomObject({ group: GROUP, version: "v1", namespace: ns, plural: SPCPS, name })) as Record<
    string,
    unknown
  >;
}

beforeAll(async () => {
  await createNamespace(kc, ns);
});

describe("test cluster", () => {
  it("answers on the injected server with the admin kubeconfig", async () => {
    expect(kc.getCurrentCluster()?.server).toBe(inject("kubeServer"));
    const version = await kc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toMatch(/^v1\.35\./);
    const readyz = await rawRequest(kc, "GET", "/readyz");
    expect(readyz.status).toBe(200);
    expect(readyz.body).toBe("ok");
    const me = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    expect(me.status?.userInfo?.groups).toContain("system:masters");
  });

  it("establishes both CRDs: namespaced, v1 storage, v1alpha1 served and deprecated, no status subresource", async () => {
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    const expected = [
      { plural: SPC, kind: "SecretProviderClass", listKind: "SecretProviderClassList" },
      { plural: SPCPS, kind: "SecretProviderClassPodStatus", listKind: "SecretProviderClassPodStatusList" },
    ];
    for (const { plural, kind, listKind } of expected) {
      const crd: V1CustomResourceDefinition = await ext.readCustomResourceDefinition({ name: `${plural}.${GROUP}` });
      const conditions = Object.fromEntries((crd.status?.conditions ?? []).map((c) => [c.type, c.status]));
      expect(conditions).toMatchObject({ Established: "True", NamesAccepted: "True" });
      expect(crd.spec.scope).toBe("Namespaced");
      expect(crd.spec.names).toMatchObject({ plural, kind, listKind });
      expect(crd.spec.names.shortNames ?? []).toEqual([]);
      const versions = crd.spec.versions.map((v) => ({
        name: v.name,
        served: v.served,
        storage: v.storage,
        deprecated: v.deprecated ?? false,
        warning: v.deprecationWarning,
        subresources: v.subresources,
      }));
      expect(versions).toEqual([
        { name: "v1", served: true, storage: true, deprecated: false, warning: undefined, subresources: undefined },
        { name: "v1alpha1", served: true, storage: false, deprecated: true, warning: DEPRECATION, subresources: undefined },
      ]);
      expect(crd.status?.storedVersions).toEqual(["v1"]);
    }
    const discovery = await rawRequest(kc, "GET", `/apis/${GROUP}`);
    expect(discovery.json).toMatchObject({
      preferredVersion: { version: "v1" },
      versions: expect.arrayContaining([expect.objectContaining({ version: "v1alpha1" })]) as unknown,
    });
  });

  it("serves v1 without and v1alpha1 with the deprecation warning header", async () => {
    for (const plural of [SPC, SPCPS]) {
      const v1 = await rawRequest(kc, "GET", `/apis/${GROUP}/v1/namespaces/${ns}/${plural}`);
      expect(v1.status).toBe(200);
      expect(v1.headers.warning).toBeUndefined();
      const alpha = await rawRequest(kc, "GET", `/apis/${GROUP}/v1alpha1/namespaces/${ns}/${plural}`);
      expect(alpha.status).toBe(200);
      expect(alpha.headers.warning).toBe(`299 - "${DEPRECATION}"`);
    }
  });

  it("round-trips a SecretProviderClass with secretObjects in v1 and v1alpha1, pruning unknown fields", async () => {
    const spec = {
      provider: "azure",
      parameters: { keyvaultName: "kv", objects: "array:\n  - |\n    objectName: alpha\n    objectType: secret\n", tenantId: "t" },
      secretObjects: [
        {
          secretName: "synced",
          type: "Opaque",
          labels: { app: "demo" },
          annotations: { "example.com/note": "x" },
          data: [
            { objectName: "alpha", key: "username" },
            { objectName: "dir/beta", key: "password" },
          ],
        },
        { secretName: "tls", type: "kubernetes.io/tls", data: [{ objectName: "cert", key: "tls.crt" }] },
      ],
    };
    const body = {
      apiVersion: `${GROUP}/v1`,
      kind: "SecretProviderClass",
      metadata: { name: "spc-round-trip", namespace: ns },
      spec: { ...spec, notInSchema: "dropped", secretObjects: [{ ...spec.secretObjects[0], bogus: 1 }, spec.secretObjects[1]] },
    };
    await custom.createNamespacedCustomObject({ group: GROUP, version: "v1", namespace: ns, plural: SPC, body });
    for (const version of ["v1", "v1alpha1"]) {
      const got = (await custom.getNamespacedCustomObject({
        group: GROUP,
        version,
        namespace: ns,
        plural: SPC,
        name: "spc-round-trip",
      })) as { apiVersion: string; spec: unknown };
      expect(got.apiVersion).toBe(`${GROUP}/${version}`);
      expect(got.spec).toEqual(spec);
    }
    // The schema types are enforced: parameters are strings, secretObjects a list.
    await expectStatus(
      custom.createNamespacedCustomObject({
        group: GROUP,
        version: "v1",
        namespace: ns,
        plural: SPC,
        body: { ...body, metadata: { name: "spc-bad-params", namespace: ns }, spec: { provider: "azure", parameters: { n: 1 } } },
      }),
      422,
    );
    await expectStatus(
      custom.createNamespacedCustomObject({
        group: GROUP,
        version: "v1",
        namespace: ns,
        plural: SPC,
        body: { ...body, metadata: { name: "spc-bad-objects", namespace: ns }, spec: { provider: "azure", secretObjects: "x" } },
      }),
      422,
    );
    // applyYaml replaces an existing custom resource.
    const [applied] = await applyYaml(
      kc,
      `apiVersion: ${GROUP}/v1\nkind: SecretProviderClass\nmetadata:\n  name: spc-round-trip\n  namespace: ${ns}\nspec:\n  provider: vault\n  parameters:\n    roleName: r\n`,
    );
    expect((applied as unknown as { spec: unknown }).spec).toEqual({ provider: "vault", parameters: { roleName: "r" } });
  });

  it("stores a SecretProviderClassPodStatus owned by a Pod", async () => {
    const pod = await createPod("owner-pod");
    const body = spcpsFor(pod, "spc-round-trip");
    const name = (body.metadata as { name: string }).name;
    await custom.createNamespacedCustomObject({ group: GROUP, version: "v1", namespace: ns, plural: SPCPS, body });
    const got = (await readSpcps(name)) as { metadata: { ownerReferences?: unknown[]; labels?: unknown }; status: unknown };
    expect(got.status).toEqual(body.status);
    expect(got.metadata.labels).toEqual({ "internal.secrets-store.csi.k8s.io/node-name": "node-a" });
    expect(got.metadata.ownerReferences).toEqual([{ apiVersion: "v1", kind: "Pod", name: "owner-pod", uid: pod.metadata?.uid }]);
    await expectStatus(
      custom.createNamespacedCustomObject({
        group: GROUP,
        version: "v1",
        namespace: ns,
        plural: SPCPS,
        body: { ...body, metadata: { name: "bad-mounted", namespace: ns }, status: { mounted: "yes" } },
      }),
      422,
    );
  });

  it("garbage-collects the SecretProviderClassPodStatus of a deleted Pod (real controller manager)", async () => {
    await startControllerManager();
    const doomed = await createPod("doomed-pod");
    const survivor = await createPod("survivor-pod");
    const doomedStatus = spcpsFor(doomed, "gc");
    const survivorStatus = spcpsFor(survivor, "gc");
    for (const body of [doomedStatus, survivorStatus]) {
      await custom.createNamespacedCustomObject({ group: GROUP, version: "v1", namespace: ns, plural: SPCPS, body });
    }
    const doomedName = (doomedStatus.metadata as { name: string }).name;
    const survivorName = (survivorStatus.metadata as { name: string }).name;
    expect((await readSpcps(doomedName)).status).toBeDefined();

    const offset = await auditLogOffset();
    await core.deleteNamespacedPod({ name: "doomed-pod", namespace: ns, gracePeriodSeconds: 0 });
    await waitFor(
      async () => {
        try {
          await readSpcps(doomedName);
          return false;
        } catch (err) {
          if (apiErrorCode(err) === 404) return true;
          throw err;
        }
      },
      { timeoutMs: 60_000, description: `SPCPS ${ns}/${doomedName} to be garbage-collected after its pod was deleted` },
    );
    // Only the dependent of the deleted pod went away, and the deletion came from the garbage collector.
    expect((await readSpcps(survivorName)).status).toEqual(survivorStatus.status);
    const deletion = await waitFor(
      async () =>
        (await readAuditEvents({ fromOffset: offset })).find(
          (e) => e.verb === "delete" && e.objectRef?.resource === SPCPS && e.objectRef.name === doomedName,
        ),
      { description: `the audit event of the SPCPS ${doomedName} deletion` },
    );
    expect(deletion.userAgent).toContain("generic-garbage-collector");
  });

  it("runs Deployment and ReplicaSet controllers and cascades Deployment deletion", async () => {
    await startControllerManager();
    const apps = kc.makeApiClient(AppsV1Api);
    const labels = { app: "web" };
    const deployment = await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: "web" },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: { metadata: { labels }, spec: { containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] } },
        },
      },
    });
    const rs = await waitFor(
      async () =>
        (await apps.listNamespacedReplicaSet({ namespace: ns })).items.find((r) =>
          r.metadata?.ownerReferences?.some((o) => o.uid === deployment.metadata?.uid),
        ),
      { timeoutMs: 60_000, description: "the Deployment's ReplicaSet" },
    );
    const pod = await waitFor(
      async () =>
        (await core.listNamespacedPod({ namespace: ns })).items.find((p) =>
          p.metadata?.ownerReferences?.some((o) => o.uid === rs.metadata?.uid),
        ),
      { timeoutMs: 60_000, description: "the ReplicaSet's pod" },
    );
    expect(pod.status?.phase).toBe("Pending");

    await apps.deleteNamespacedDeployment({ name: "web", namespace: ns });
    await waitFor(
      async () => {
        const replicaSets = (await apps.listNamespacedReplicaSet({ namespace: ns })).items;
        const pods = (await core.listNamespacedPod({ namespace: ns })).items;
        return !replicaSets.some((r) => r.metadata?.uid === rs.metadata?.uid) && !pods.some((p) => p.metadata?.uid === pod.metadata?.uid);
      },
      { timeoutMs: 60_000, description: "the ReplicaSet and its pod to be garbage-collected" },
    );
  });

  it("issues ServiceAccount tokens (TokenRequest) that the API server accepts", async () => {
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "driver" } } });
    const token = await core.createNamespacedServiceAccountToken({
      name: "driver",
      namespace: ns,
      body: { spec: { audiences: ["https://kubernetes.default.svc.cluster.local"], expirationSeconds: 600 } },
    });
    expect(token.status?.token).toBeTruthy();
    const saConfig = new KubeConfig();
    saConfig.loadFromOptions({
      clusters: [{ name: "c", server: inject("kubeServer"), caData: kc.getCurrentCluster()?.caData }],
      users: [{ name: "sa", token: token.status?.token }],
      contexts: [{ name: "sa", cluster: "c", user: "sa" }],
      currentContext: "sa",
    });
    const me = await saConfig.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    expect(me.status?.userInfo?.username).toBe(`system:serviceaccount:${ns}:driver`);
  });

  it("gives a kubeconfigFor user no rights until RBAC grants them, and audits user, verb and resource", async () => {
    const user = `harness-user-${suffix}`;
    const userKc = loadKubeConfig(await kubeconfigFor(user, ["harness-team"]));
    const me = await userKc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    expect(me.status?.userInfo?.username).toBe(user);
    expect(me.status?.userInfo?.groups).toEqual(expect.arrayContaining(["harness-team", "system:authenticated"]));
    expect(me.status?.userInfo?.groups).not.toContain("system:masters");

    const userCustom = userKc.makeApiClient(CustomObjectsApi);
    const getSpc = (): Promise<unknown> =>
      userCustom.getNamespacedCustomObject({ group: GROUP, version: "v1", namespace: ns, plural: SPC, name: "spc-round-trip" });
    const offset = await auditLogOffset();
    await expectStatus(getSpc(), 403);
    await expectStatus(userKc.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace: ns }), 403);

    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: ns,
      body: { metadata: { name: "spc-reader" }, rules: [{ apiGroups: [GROUP], resources: [SPC], verbs: ["get"] }] },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: "spc-reader" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "spc-reader" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
      },
    });
    const spc = (await waitFor(getSpc, { description: `${user} to be allowed to get the SecretProviderClass` })) as {
      metadata: { name: string };
    };
    expect(spc.metadata.name).toBe("spc-round-trip");
    await expectStatus(userKc.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace: ns }), 403);

    const events = await waitFor(
      async () => {
        const all = (await readAuditEvents({ fromOffset: offset })).filter((e) => e.user.username === user);
        const allowed = all.some(
          (e) => e.verb === "get" && e.objectRef?.resource === SPC && e.responseStatus?.code === 200,
        );
        return allowed ? all : undefined;
      },
      { description: `audit events of ${user}` },
    );
    const spcGets = events.filter((e) => e.verb === "get" && e.objectRef?.resource === SPC);
    expect(spcGets.map((e) => e.responseStatus?.code)).toEqual(expect.arrayContaining([403, 200]));
    for (const e of spcGets) {
      expect(e.objectRef).toMatchObject({ apiGroup: GROUP, apiVersion: "v1", namespace: ns, name: "spc-round-trip" });
      expect(e.user.groups).toEqual(expect.arrayContaining(["harness-team"]));
      expect(e.stage).toBe("ResponseComplete");
    }
    const allowed = spcGets.find((e) => e.responseStatus?.code === 200);
    expect(allowed?.annotations?.["authorization.k8s.io/decision"]).toBe("allow");
    const secretLists = events.filter((e) => e.verb === "list" && e.objectRef?.resource === "secrets");
    expect(secretLists).toHaveLength(2);
    for (const e of secretLists) {
      expect(e.responseStatus?.code).toBe(403);
      expect(e.annotations?.["authorization.k8s.io/decision"]).toBe("forbid");
      expect(e.objectRef).toMatchObject({ apiVersion: "v1", namespace: ns });
    }
  });
});
