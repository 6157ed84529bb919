// The chart's ValidatingAdmissionPolicies, enforced by a real kube-apiserver
// (ValidatingAdmissionPolicy is GA and on by default since Kubernetes 1.30):
// the controller's service account may not delete Secrets, write a Secret no
// SecretSync owns, write a service-account-token Secret or request a token
// for another audience or lifetime, even when someone grants it the RBAC
// rights to; and no other service account may write a Secret a SecretSync
// owns. Requests are made directly with each identity.
import { randomUUID } from "node:crypto";
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import YAML from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiErrorCode, applyYaml, createNamespace, kubeConfigFromInjected, kubeconfigFor, loadKubeConfig, rawRequest, waitFor } from "../harness/kube.ts";
import { AUDIENCE, CONTROLLER_SA, controllerChartObjects, removeChartObjects, SS_GROUP, SS_VERSION } from "./stack.ts";

const SYSTEM_NS = "ssc-admission-system";
const NS = "ssc-admission";

let admin: KubeConfig;
let controller: KubeConfig;
let intruder: KubeConfig;
/** The uid of the SecretSync of each name owned() is called with (garbage collection deletes a Secret whose owner it cannot find). */
const owners = new Map<string, string>();
const chartObjects = controllerChartObjects(SYSTEM_NS);

const secretPath = (name = "") => `/api/v1/namespaces/${NS}/secrets${name ? `/${name}` : ""}`;
const owned = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: {
    name,
    labels: { "secrets-store.sync.x-k8s.io": "" },
    ownerReferences: [{ apiVersion: `${SS_GROUP}/${SS_VERSION}`, kind: "SecretSync", name, uid: owners.get(name) ?? "no-such-secretsync" }],
  },
  type: "Opaque",
  data: { value: Buffer.from("v").toString("base64") },
  ...extra,
});
const message = (res: { json: unknown; body: string }) => (res.json as { message?: string } | undefined)?.message ?? res.body;

beforeAll(async () => {
  admin = kubeConfigFromInjected();
  await createNamespace(admin, SYSTEM_NS);
  await createNamespace(admin, NS);
  const core = admin.makeApiClient(CoreV1Api);
  for (const sa of ["app", "intruder"]) {
    await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: sa } } }).catch((err: unknown) => {
      if (apiErrorCode(err) !== 409) throw err;
    });
  }
  await applyYaml(admin, chartObjects.map((o) => YAML.stringify(o)).join("---\n"));
  // More RBAC than the chart grants, so that the policies, not RBAC, are what refuses.
  await applyYaml(
    admin,
    YAML.stringify({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "too-much", namespace: NS },
      rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["get", "create", "update", "patch", "delete"] }],
    }) +
      "---\n" +
      YAML.stringify({
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "too-much", namespace: NS },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "too-much" },
        subjects: [
          { kind: "ServiceAccount", name: CONTROLLER_SA, namespace: SYSTEM_NS },
          { kind: "ServiceAccount", name: "intruder", namespace: NS },
        ],
      }),
  );
  // No controller runs here: the SecretSyncs only own the Secrets the test writes.
  const custom = admin.makeApiClient(CustomObjectsApi);
  for (const name of ["synced", "unlabelled", "probe-label", "probe-writers", "token-type"]) {
    const ss = (await custom.createNamespacedCustomObject({
      group: SS_GROUP,
      version: SS_VERSION,
      namespace: NS,
      plural: "secretsyncs",
      body: { apiVersion: `${SS_GROUP}/${SS_VERSION}`, kind: "SecretSync", metadata: { name }, spec: { secretProviderClassName: "kv", serviceAccountName: "app", secretObject: { type: "Opaque", data: [{ sourcePath: "a", targetKey: "a" }] } } },
    })) as { metadata: { uid: string } };
    owners.set(name, ss.metadata.uid);
  }
  controller = loadKubeConfig(await kubeconfigFor(`system:serviceaccount:${SYSTEM_NS}:${CONTROLLER_SA}`, ["system:serviceaccounts", `system:serviceaccounts:${SYSTEM_NS}`]));
  intruder = loadKubeConfig(await kubeconfigFor(`system:serviceaccount:${NS}:intruder`, ["system:serviceaccounts", `system:serviceaccounts:${NS}`]));
  // Policies are enforced a moment after they are created: wait until each
  // kind of refusal is seen on a throw-away object (undoing what got through).
  const probe = (name: string) => ({ apiVersion: "v1", kind: "Secret", metadata: { name }, type: "Opaque", data: {} });
  await untilRefused("the create policy", () => rawRequest(controller, "POST", secretPath(), probe("probe-create")), () => rawRequest(admin, "DELETE", secretPath("probe-create")));
  await untilRefused(
    "the delete policy",
    async () => {
      await rawRequest(admin, "POST", secretPath(), probe("probe-delete"));
      return rawRequest(controller, "DELETE", secretPath("probe-delete"));
    },
    async () => undefined,
  );
  await untilRefused("the secret writers policy", () => rawRequest(intruder, "POST", secretPath(), owned("probe-writers")), () => rawRequest(admin, "DELETE", secretPath("probe-writers")));
  await untilRefused(
    "the token policy",
    () => rawRequest(controller, "POST", `/api/v1/namespaces/${NS}/serviceaccounts/app/token`, { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences: ["api://probe"], expirationSeconds: 600 } }),
    async () => undefined,
  );
  const unlabelled = owned("probe-label");
  delete (unlabelled.metadata as { labels?: unknown }).labels;
  await untilRefused(
    "the label policy",
    async () => {
      await rawRequest(admin, "POST", secretPath(), unlabelled);
      return rawRequest(controller, "PATCH", `${secretPath("probe-label")}?fieldManager=secrets-store-sync-controller&force=true`, JSON.stringify(owned("probe-label")), {
        "content-type": "application/apply-patch+yaml",
      });
    },
    () => rawRequest(admin, "DELETE", secretPath("probe-label")),
    422,
  );
  // The controller writes its Secret (allowed), the one the others then try to touch.
  const created = await rawRequest(controller, "POST", secretPath(), owned("synced"));
  if (created.status !== 201) throw new Error(`the controller could not create its own Secret: ${created.status} ${message(created)}`);
}, 120_000);

async function untilRefused(what: string, attempt: () => Promise<{ status: number }>, undo: () => Promise<unknown>, status = 403): Promise<void> {
  await waitFor(
    async () => {
      const res = await attempt();
      if (res.status === status) return true;
      await undo();
      return false;
    },
    { description: `${what} to be enforced`, timeoutMs: 60_000, intervalMs: 500 },
  );
}

afterAll(async () => {
  await removeChartObjects(admin, chartObjects);
  await admin.makeApiClient(CoreV1Api).deleteNamespace({ name: NS }).catch(() => undefined);
});

describe("the chart's admission policies", () => {
  it("refuse the controller deleting a Secret, even one it owns and may delete by RBAC", async () => {
    const res = await rawRequest(controller, "DELETE", secretPath("synced"));
    expect(res.status).toBe(403);
    expect(message(res)).toContain("The controller is not allowed to delete secrets.");
    expect(message(res)).toContain("secrets-store-sync-controller-delete-policy");
  });

  it("refuse the controller writing a Secret that no SecretSync of the same name owns", async () => {
    const unowned = await rawRequest(controller, "POST", secretPath(), { apiVersion: "v1", kind: "Secret", metadata: { name: "loose" }, type: "Opaque", data: {} });
    expect(unowned.status).toBe(403);
    expect(message(unowned)).toContain("The controller can only create or update secrets in the allowed types list with a single secretsync owner.");
    const misnamed = owned("other-name");
    misnamed.metadata.ownerReferences[0] = { ...misnamed.metadata.ownerReferences[0]!, name: "synced", uid: owners.get("synced")! };
    expect((await rawRequest(controller, "POST", secretPath(), misnamed)).status).toBe(403);
  });

  it("refuse the controller writing a service-account-token Secret", async () => {
    const res = await rawRequest(
      controller,
      "POST",
      secretPath(),
      owned("token-type", { type: "kubernetes.io/service-account-token", metadata: { ...owned("token-type").metadata, annotations: { "kubernetes.io/service-account.name": "app" } } }),
    );
    expect(res.status).toBe(403);
    // Both upstream's type policies refuse it; the API server names the first one it evaluated.
    expect(message(res)).toMatch(/The controller is not allowed to create or update secrets with this type\.|The controller can only create or update secrets in the allowed types list/);
  });

  it("refuse the controller updating a Secret without the controller's label", async () => {
    const plain = owned("unlabelled");
    delete (plain.metadata as { labels?: unknown }).labels;
    expect((await rawRequest(admin, "POST", secretPath(), plain)).status).toBe(201);
    const res = await rawRequest(controller, "PATCH", `${secretPath("unlabelled")}?fieldManager=secrets-store-sync-controller&force=true`, JSON.stringify(owned("unlabelled")), {
      "content-type": "application/apply-patch+yaml",
    });
    expect(res.status).toBe(422);
    expect(message(res)).toContain("because it does not have the correct label");
  });

  it("refuse a token for another audience or another lifetime, and allow the configured one", async () => {
    const token = (audiences: string[], expirationSeconds: number) =>
      rawRequest(controller, "POST", `/api/v1/namespaces/${NS}/serviceaccounts/app/token`, { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences, expirationSeconds } });
    const other = await token(["api://someone-else"], 600);
    expect(other.status).toBe(403);
    expect(message(other)).toContain("token in the ssc-admission namespace. Check the configuration.");
    expect((await token([AUDIENCE], 3600)).status).toBe(403);
    expect((await token([AUDIENCE, "api://someone-else"], 600)).status).toBe(403);
    const allowed = await token([AUDIENCE], 600);
    expect(allowed.status).toBe(201);
  });

  it("refuse any other service account writing a Secret a SecretSync owns, but not its own Secrets", async () => {
    const patch = await rawRequest(intruder, "PATCH", secretPath("synced"), JSON.stringify({ data: { value: Buffer.from("forged").toString("base64") } }), {
      "content-type": "application/merge-patch+json",
    });
    expect(patch.status).toBe(403);
    expect(message(patch)).toContain(`system:serviceaccount:${NS}:intruder may not UPDATE secret synced in the ${NS} namespace: a SecretSync owns it`);
    const forged = await rawRequest(intruder, "POST", secretPath(), owned(`forged-${randomUUID().slice(0, 6)}`));
    expect(forged.status).toBe(403);
    // Taking the label away is an update of a SecretSync's Secret too.
    const unlabel = await rawRequest(intruder, "PATCH", secretPath("synced"), JSON.stringify({ metadata: { labels: null } }), { "content-type": "application/merge-patch+json" });
    expect(unlabel.status).toBe(403);
    const own = await rawRequest(intruder, "POST", secretPath(), { apiVersion: "v1", kind: "Secret", metadata: { name: "intruders-own" }, type: "Opaque", data: {} });
    expect(own.status).toBe(201);
    // People (here the cluster admin) stay free to fix things by hand.
    expect((await rawRequest(admin, "PATCH", secretPath("synced"), JSON.stringify({ metadata: { annotations: { fixed: "by hand" } } }), { "content-type": "application/merge-patch+json" })).status).toBe(200);
  });

  it("refuse a SecretSync whose Secret labels are not valid labels", async () => {
    const res = await rawRequest(admin, "POST", `/apis/${SS_GROUP}/${SS_VERSION}/namespaces/${NS}/secretsyncs`, {
      apiVersion: `${SS_GROUP}/${SS_VERSION}`,
      kind: "SecretSync",
      metadata: { name: "bad-label" },
      spec: { secretProviderClassName: "kv", serviceAccountName: "app", secretObject: { type: "Opaque", labels: { team: "not a label value!" }, data: [{ sourcePath: "a", targetKey: "a" }] } },
    });
    expect(res.status).toBe(422);
    expect(message(res)).toContain("one of spec.secretObject.labels is not a valid label");
  });

  it("and the CRD's own rules refuse reserved label and annotation keys and other keys in a TLS Secret, as upstream's", async () => {
    const create = (name: string, secretObject: object) =>
      rawRequest(admin, "POST", `/apis/${SS_GROUP}/${SS_VERSION}/namespaces/${NS}/secretsyncs`, {
        apiVersion: `${SS_GROUP}/${SS_VERSION}`,
        kind: "SecretSync",
        metadata: { name },
        spec: { secretProviderClassName: "kv", serviceAccountName: "app", secretObject },
      });
    const label = await create("reserved-label", { type: "Opaque", labels: { "secrets-store.sync.x-k8s.io/x": "" }, data: [{ sourcePath: "a", targetKey: "a" }] });
    expect(label.status).toBe(422);
    expect(message(label)).toContain("Labels should not contain secrets-store.sync.x-k8s.io. This key is reserved for the controller.");
    const annotation = await create("reserved-annotation", { type: "Opaque", annotations: { "secrets-store.sync.x-k8s.io": "x" }, data: [{ sourcePath: "a", targetKey: "a" }] });
    expect(annotation.status).toBe(422);
    expect(message(annotation)).toContain("Annotations should not contain secrets-store.sync.x-k8s.io.");
    const tls = await create("tls-key", { type: "kubernetes.io/tls", data: [{ sourcePath: "a", targetKey: "cert.pem" }] });
    expect(tls.status).toBe(422);
    expect(message(tls)).toContain("A kubernetes.io/tls Secret takes only the keys tls.crt and tls.key.");
    const defaulted = await create("default-type", { data: [{ sourcePath: "a", targetKey: "a" }] });
    expect(defaulted.status).toBe(201);
    expect((defaulted.json as { spec: { secretObject: { type: string } } }).spec.secretObject.type).toBe("Opaque");
  });
});
