// The chart's RBAC is exactly what the programs call. The driver runs as the
// chart's ServiceAccount, bound to the chart's rendered ClusterRoles in a real
// kube-apiserver, through every code path that touches the API (publish with
// Secret sync, rotation, events, on-demand refresh by pod annotation and by
// status-object annotation, restart recovery, unpublish). The audit log must
// show no forbidden request, and the set of (group, resource, verb) it used
// must equal the set the chart grants.
import { mkdir, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyYaml, auditLogOffset, createNamespace, kubeConfigFromInjected, kubeconfigFor, readAuditEvents, waitFor } from "../harness/kube.ts";
import { csiClient } from "../support/csi-client.ts";
import { removeTestTree, requireRoot, startDriverProcess, type DriverProcess } from "../support/driver-process.ts";
import { startFakeProvider, type FakeProvider } from "../support/fake-provider.ts";
import { find, podSpec, providerDaemonSet, render, rolesBoundTo, type K8sObject } from "./chart.ts";

const GROUP = "secrets-store.csi.x-k8s.io";
const NS = "rbac-test";
const NODE = "rbac-node";

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

function granted(roles: K8sObject[]): Set<string> {
  const out = new Set<string>();
  for (const role of roles) {
    for (const rule of (role as unknown as { rules: Rule[] }).rules) {
      for (const g of rule.apiGroups) for (const r of rule.resources) for (const v of rule.verbs) out.add(`${g || "core"} ${r} ${v}`);
    }
  }
  return out;
}

describe("chart RBAC against the calls the driver makes", () => {
  let objects: K8sObject[];
  let driverSa: K8sObject;
  let base: string;
  let provider: FakeProvider;
  let driver: DriverProcess | undefined;

  beforeAll(async () => {
    requireRoot();
    objects = render({ syncSecret: { enabled: true }, enableSecretRotation: true });
    driverSa = find(objects, "ServiceAccount").find((o) => o.metadata.labels?.["app.kubernetes.io/component"] === "driver")!;
    expect(driverSa).toBeDefined();
    base = await mkdtemp(join(tmpdir(), "rbac-"));
    await mkdir(join(base, "providers"));
    provider = await startFakeProvider(join(base, "providers", "fake.sock"), (req) => ({
      object_version: [{ id: "secret/token", version: String(req.current_object_version.length > 0 ? Date.now() : 1) }],
      files: [{ path: "token", mode: 0o644, contents: `value-${req.current_object_version.length > 0 ? Date.now() : 1}` }],
    }));
  });

  afterAll(async () => {
    await driver?.stop();
    await provider?.stop();
    await removeTestTree(base);
  });

  it("the provider has no Kubernetes API access at all", () => {
    const spec = podSpec(providerDaemonSet(objects));
    expect(spec.automountServiceAccountToken).toBe(false);
    const providerSa = spec.serviceAccountName!;
    expect(rolesBoundTo(objects, providerSa)).toEqual([]);
    expect(find(objects, "RoleBinding")).toEqual([]);
  });

  it("grants the driver exactly the requests it makes, and it makes none it is not granted", async () => {
    const kc = kubeConfigFromInjected();
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const saNamespace = driverSa.metadata.namespace ?? "kube-system";
    const roles = rolesBoundTo(objects, driverSa.metadata.name);
    const bindings = find(objects, "ClusterRoleBinding").filter((b) => roles.some((r) => (b as unknown as { roleRef: { name: string } }).roleRef.name === r.metadata.name));
    await applyYaml(kc, [...roles, ...bindings].map((o) => stringify(o)).join("---\n"));

    await createNamespace(kc, NS);
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: "v1",
      namespace: NS,
      plural: "secretproviderclasses",
      body: {
        apiVersion: `${GROUP}/v1`,
        kind: "SecretProviderClass",
        metadata: { name: "app" },
        spec: { provider: "fake", parameters: { objects: "token" }, secretObjects: [{ secretName: "app-token", type: "Opaque", data: [{ objectName: "token", key: "token" }] }] },
      },
    });
    const pod = await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "app" },
        spec: {
          nodeName: NODE,
          // The CSI volume the driver's recovery proves the tmpfs against after its restart.
          volumes: [{ name: "secrets", csi: { driver: "secrets-store.csi.k8s.io", readOnly: true, volumeAttributes: { secretProviderClass: "app" } } }],
          containers: [{ name: "c", image: "registry.k8s.io/pause:3.10" }],
        },
      },
    });
    const uid = pod.metadata!.uid!;

    const user = `system:serviceaccount:${saNamespace}:${driverSa.metadata.name}`;
    const kubeconfig = await kubeconfigFor(user, ["system:serviceaccounts", `system:serviceaccounts:${saNamespace}`]);
    const offset = await auditLogOffset();
    const args = [
      `--nodeid=${NODE}`,
      `--kubelet-dir=${base}`,
      `--kubeconfig=${kubeconfig}`,
      `--provider-volume=${join(base, "providers")}`,
      "--additional-provider-volume-paths=",
      "--metrics-addr=",
      "--health-addr=",
      "--enable-secret-rotation=true",
      "--rotation-poll-interval=1s",
      "--enable-secret-sync=true",
    ];
    driver = await startDriverProcess(join(base, "csi.sock"), args);
    let csi = csiClient(driver.socketPath);
    const vol = join(base, "pods", uid, "volumes", "kubernetes.io~csi", "secrets");
    await mkdir(vol, { recursive: true });
    const target = join(vol, "mount");
    const request = {
      volume_id: "csi-rbac",
      target_path: target,
      volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
      readonly: true,
      volume_context: {
        secretProviderClass: "app",
        "csi.storage.k8s.io/pod.name": "app",
        "csi.storage.k8s.io/pod.namespace": NS,
        "csi.storage.k8s.io/pod.uid": uid,
        "csi.storage.k8s.io/serviceAccount.name": "default",
      },
    };
    // Each phase waits for what it must have done (not for a time), so every
    // code path has made its API calls before the audit log is read.
    const refreshes = () => provider.requests.filter((r) => r.current_object_version.length > 0).length;
    const eventsFor = async (reason: string) =>
      (await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=app,reason=${reason}` })).items.length;
    await csi.call("Node", "NodePublishVolume", request);
    // Rotation: new versions every refresh, so status updates, Secret patches and events happen.
    await waitFor(async () => (await eventsFor("MountRotationComplete")) > 0 && (await eventsFor("SecretRotationComplete")) > 0, {
      description: "a rotation of the volume and of its synced Secret",
    });
    const beforeAnnotation = refreshes();
    await core.patchNamespacedPod(
      { name: "app", namespace: NS, body: { metadata: { annotations: { "secrets-store.csi.k8s.io/refresh-requested-at": "1" } } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    await waitFor(() => refreshes() > beforeAnnotation, { description: "a refresh after the annotation" });
    // A refresh request from the controller, on the status object (the driver watches its node's).
    const beforeStatusRequest = refreshes();
    await custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: "v1",
        namespace: NS,
        plural: "secretproviderclasspodstatuses",
        name: `app-${NS}-app`,
        body: { metadata: { annotations: { "secrets-store.csi.k8s.io/refresh-requested-at": new Date().toISOString() } } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    await waitFor(() => driver!.output().includes('"msg":"refresh requested on a status object"') && refreshes() > beforeStatusRequest, {
      description: "a refresh requested on the status object",
    });
    await csi.call("Node", "NodePublishVolume", request);
    // A restart: recovery lists this node's status objects and reads the pod.
    csi.close();
    await driver.stop();
    driver = await startDriverProcess(join(base, "csi.sock"), args);
    csi = csiClient(driver.socketPath);
    const restarted = driver;
    await waitFor(() => restarted.output().includes('"msg":"recovered mounted volumes after restart"'), { description: "the restarted driver's recovery" });
    const afterRestart = refreshes();
    await waitFor(() => refreshes() > afterRestart, { description: "a refresh by the restarted driver" });
    await csi.call("Node", "NodeUnpublishVolume", { volume_id: "csi-rbac", target_path: target });
    csi.close();
    await driver.stop();
    driver = undefined;

    const events = (await readAuditEvents({ fromOffset: offset })).filter((e) => e.user.username === user && e.objectRef?.resource);
    const forbidden = events.filter((e) => e.responseStatus?.code === 403).map((e) => `${e.verb} ${e.requestURI}`);
    expect(forbidden, "requests the chart does not grant").toEqual([]);
    const used = new Set(events.map((e) => `${e.objectRef!.apiGroup || "core"} ${e.objectRef!.resource}${e.objectRef!.subresource ? "/" + e.objectRef!.subresource : ""} ${e.verb}`));
    const grants = granted(roles);
    console.log(`driver API calls by (group resource verb):\n  ${[...used].sort().join("\n  ")}`);
    expect([...grants].filter((g) => !used.has(g)).sort(), "granted but never used").toEqual([]);
    expect([...used].filter((u) => !grants.has(u)).sort(), "used but not granted").toEqual([]);
    // The Secret really was synced under this identity.
    const secret = await core.readNamespacedSecret({ name: "app-token", namespace: NS });
    expect(secret.metadata?.labels?.["secrets-store.csi.k8s.io/managed"]).toBe("true");
    expect(await readFile(join(base, "..", "nonexistent")).catch(() => "absent")).toBe("absent");
  });
});
