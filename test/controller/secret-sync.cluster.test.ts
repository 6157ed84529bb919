// The SecretSync controller end to end on real parts (test/controller/stack.ts):
// kube-apiserver with the chart's RBAC and admission policies, garbage
// collection, the Key Vault emulator over HTTPS with workload identity, our
// Azure provider, and the controller program running as its service account.
// First with rotation off, so every sync below is caused by what the test
// does (a new SecretSync, forceSynchronization, a class change); then again
// after a restart with rotation on.
import { X509Certificate, createPrivateKey } from "node:crypto";
import { PatchStrategy, setHeaderOptions, type V1Secret } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SecretSync } from "../../src/controller/api/secret-sync.ts";
import { computeSyncHash, syncHashInput } from "../../src/controller/reconcile/sync-hash.ts";
import type { SecretProviderClass } from "../../src/shared/kube/kube-types.ts";
import { apiErrorCode, auditLogOffset, readAuditEvents, waitFor } from "../harness/kube.ts";
import {
  metricValue,
  secretProviderClassBody,
  secretSyncBody,
  SPC_GROUP,
  SS_GROUP,
  SS_VERSION,
  startSyncStack,
  type ControllerProcess,
  type SyncStack,
} from "./stack.ts";

const NS = "ssc-e2e";
const SYSTEM_NS = "ssc-system";
const SA = "app";
const VAULT = "ssc-kv";
const SHARED_VAULT = "ssc-shared";
const SHARED = 10;

let stack: SyncStack;
let controller: ControllerProcess;
let auditFrom = 0;

const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

async function createSecretSync(name: string, spec: Parameters<typeof secretSyncBody>[1]): Promise<SecretSync> {
  return (await stack.custom.createNamespacedCustomObject({ group: SS_GROUP, version: SS_VERSION, namespace: NS, plural: "secretsyncs", body: secretSyncBody(name, spec) })) as SecretSync;
}
async function getSecretSync(name: string): Promise<SecretSync> {
  return (await stack.custom.getNamespacedCustomObject({ group: SS_GROUP, version: SS_VERSION, namespace: NS, plural: "secretsyncs", name })) as SecretSync;
}
async function patchSecretSync(name: string, patch: object): Promise<SecretSync> {
  return (await stack.custom.patchNamespacedCustomObject({ group: SS_GROUP, version: SS_VERSION, namespace: NS, plural: "secretsyncs", name, body: patch }, merge)) as SecretSync;
}
async function createClass(name: string, objects: string[], vault = VAULT): Promise<void> {
  await stack.custom.createNamespacedCustomObject({ group: SPC_GROUP, version: "v1", namespace: NS, plural: "secretproviderclasses", body: secretProviderClassBody(name, vault, stack.emulator.tenantId, objects) });
}
async function patchClass(name: string, objects: string[], vault = VAULT): Promise<void> {
  const body = secretProviderClassBody(name, vault, stack.emulator.tenantId, objects) as { spec: unknown };
  await stack.custom.patchNamespacedCustomObject({ group: SPC_GROUP, version: "v1", namespace: NS, plural: "secretproviderclasses", name, body: { spec: body.spec } }, merge);
}
async function getClass(name: string): Promise<SecretProviderClass> {
  return (await stack.custom.getNamespacedCustomObject({ group: SPC_GROUP, version: "v1", namespace: NS, plural: "secretproviderclasses", name })) as SecretProviderClass;
}
async function readSecret(name: string): Promise<V1Secret | undefined> {
  try {
    return await stack.core.readNamespacedSecret({ name, namespace: NS });
  } catch (err) {
    if (apiErrorCode(err) === 404) return undefined;
    throw err;
  }
}
const text = (s: V1Secret | undefined, key: string) => (s?.data?.[key] === undefined ? undefined : Buffer.from(s.data[key]!, "base64").toString("utf8"));
const condition = (ss: SecretSync, type: string) => ss.status?.conditions?.find((c) => c.type === type);
async function waitForCondition(name: string, type: string, reason: string, timeoutMs = 30_000): Promise<SecretSync> {
  return waitFor(
    async () => {
      const ss = await getSecretSync(name);
      return condition(ss, type)?.reason === reason ? ss : undefined;
    },
    { description: `secretsync ${NS}/${name} condition ${type} with reason ${reason}`, timeoutMs },
  );
}
async function eventsOf(name: string, reason: string): Promise<{ type?: string; message?: string }[]> {
  const list = await stack.core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.kind=SecretSync,involvedObject.name=${name},reason=${reason}` });
  return list.items;
}
const obj = (name: string, extra = "") => `objectName: ${name}\nobjectType: secret${extra ? `\n${extra}` : ""}`;

beforeAll(async () => {
  stack = await startSyncStack({
    systemNamespace: SYSTEM_NS,
    workloads: [[NS, SA]],
    vaults: [
      {
        name: VAULT,
        secrets: [
          { name: "db-password", value: "hunter2" },
          { name: "api-key", value: "key-one" },
          { name: "extra", value: "extra-one" },
        ],
        certificates: [{ name: "web", issuer: "chain", subject: "CN=web.ssc.example", dnsNames: ["web.ssc.example"] }],
      },
      { name: SHARED_VAULT, secrets: [{ name: "shared", value: "shared-one" }] },
    ],
  });
  const { core } = stack;
  await core.createNamespace({ body: { metadata: { name: NS } } }).catch((err: unknown) => {
    if (apiErrorCode(err) !== 409) throw err;
  });
  for (const sa of ["default", SA]) {
    await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: sa } } }).catch((err: unknown) => {
      if (apiErrorCode(err) !== 409) throw err;
    });
  }
  await createClass("kv", [obj("db-password"), obj("api-key")]);
  auditFrom = await auditLogOffset();
  controller = await stack.startController({ args: ["--rotation-poll-interval=0"] });
}, 240_000);

afterAll(async () => {
  await stack?.core.deleteNamespace({ name: NS }).catch(() => undefined);
  await stack?.stop();
});

describe("with rotation off: every sync is caused by a change", () => {
  let created: SecretSync;

  it("creates the Secret a SecretSync names, written as upstream's controller writes it", async () => {
    created = await createSecretSync("db", {
      secretProviderClassName: "kv",
      serviceAccountName: SA,
      secretObject: { type: "Opaque", data: [{ sourcePath: "db-password", targetKey: "password" }], labels: { team: "a" }, annotations: { "example.com/note": "from Key Vault" } },
    });
    const secret = await waitFor(() => readSecret("db"), { description: "secret db", timeoutMs: 60_000 });
    expect(secret.type).toBe("Opaque");
    expect(text(secret, "password")).toBe("hunter2");
    expect(secret.metadata!.labels).toEqual({ team: "a", "secrets-store.sync.x-k8s.io": "" });
    expect(secret.metadata!.annotations).toEqual({ "example.com/note": "from Key Vault" });
    expect(secret.metadata!.ownerReferences).toEqual([{ apiVersion: "secret-sync.x-k8s.io/v1alpha1", kind: "SecretSync", name: "db", uid: created.metadata.uid }]);
    const managers = (secret.metadata!.managedFields ?? []).map((f) => `${f.manager} ${f.operation}`);
    expect(managers).toEqual(["secrets-store-sync-controller Apply"]);

    const ss = await waitForCondition("db", "SecretUpdated", "SecretUpToDate");
    expect(condition(ss, "SecretCreated")).toMatchObject({ status: "True", reason: "CreateSuccessful", message: "Secret created successfully." });
    expect(condition(ss, "SecretUpdated")).toMatchObject({ status: "True", reason: "SecretUpToDate", message: "Secret contains last observed values." });
    expect(Date.parse(ss.status!.lastSuccessfulSyncTime!)).toBeGreaterThan(0);
    // syncHash as upstream computes it from the data and the two objects' identities.
    const spc = await getClass("kv");
    expect(ss.status!.syncHash).toBe(await computeSyncHash(syncHashInput(new Map([["password", Buffer.from("hunter2")]]), spc, ss)));
    await waitFor(async () => (await eventsOf("db", "SecretCreated")).length === 1, { description: "a SecretCreated event" });
  });

  it("syncs at once when forceSynchronization changes", async () => {
    await stack.emulator.setSecret(VAULT, "db-password", "hunter3");
    const before = (await getSecretSync("db")).status!.syncHash;
    await patchSecretSync("db", { spec: { forceSynchronization: "rotate-1" } });
    await waitFor(async () => text(await readSecret("db"), "password") === "hunter3", { description: "the forced sync of db", timeoutMs: 30_000 });
    const ss = await waitFor(async () => {
      const s = await getSecretSync("db");
      return s.status?.syncHash !== before ? s : undefined;
    }, { description: "a new syncHash" });
    expect(condition(ss, "SecretUpdated")?.reason).toBe("SecretUpToDate");
    await waitFor(async () => (await eventsOf("db", "SecretUpdated")).length >= 1, { description: "a SecretUpdated event" });
  });

  it("reports a missing sourcePath in one line naming the files and the fix, and syncs within seconds of the class changing (no rotation)", async () => {
    await createSecretSync("multi", {
      secretProviderClassName: "kv",
      serviceAccountName: SA,
      secretObject: {
        type: "Opaque",
        data: [
          { sourcePath: "db-password", targetKey: "password" },
          { sourcePath: "api-key", targetKey: "key" },
          { sourcePath: "extra", targetKey: "extra" },
        ],
      },
    });
    const failed = await waitForCondition("multi", "SecretCreated", "RemoteSecretStoreFetchFailed");
    const message = `secretsync ${NS}/multi: sourcePath "extra" is not among the files the provider returned for secretproviderclass ${NS}/kv: api-key, db-password; fix spec.secretObject.data[2].sourcePath or add the object to the class`;
    expect(condition(failed, "SecretCreated")).toMatchObject({ status: "False", message });
    expect(await readSecret("multi")).toBeUndefined();
    await waitFor(async () => (await eventsOf("multi", "RemoteSecretStoreFetchFailed")).some((e) => e.type === "Warning" && e.message === message), { description: "a Warning event" });

    const dbBefore = (await getSecretSync("db")).status!.syncHash;
    await patchClass("kv", [obj("db-password"), obj("api-key"), obj("extra")]);
    const secret = await waitFor(() => readSecret("multi"), { description: "secret multi after the class change", timeoutMs: 30_000 });
    expect([text(secret, "password"), text(secret, "key"), text(secret, "extra")]).toEqual(["hunter3", "key-one", "extra-one"]);
    // The other SecretSync of the class was synced again too (its syncHash holds the class generation).
    await waitFor(async () => (await getSecretSync("db")).status?.syncHash !== dbBefore, { description: "db synced again after the class change" });
  });

  it("keeps the last good Secret, untouched, when a sync fails", async () => {
    const good = (await readSecret("db"))!;
    await patchSecretSync("db", { spec: { secretObject: { data: [{ sourcePath: "db-password", targetKey: "password" }, { sourcePath: "no-such-file", targetKey: "x" }] } } });
    const failed = await waitForCondition("db", "SecretUpdated", "RemoteSecretStoreFetchFailed");
    expect(condition(failed, "SecretUpdated")?.status).toBe("False");
    expect(condition(failed, "SecretCreated")?.reason).toBe("CreateSuccessful");
    const after = (await readSecret("db"))!;
    expect(after.metadata!.resourceVersion).toBe(good.metadata!.resourceVersion);
    expect(after.data).toEqual(good.data);
    await patchSecretSync("db", { spec: { secretObject: { data: [{ sourcePath: "db-password", targetKey: "password" }] } } });
    await waitForCondition("db", "SecretUpdated", "SecretUpToDate");
  });

  it("reports a provider error with the provider, class and service account, and writes nothing", async () => {
    await createClass("kv-broken", [obj("no-such-secret")]);
    await createSecretSync("broken", { secretProviderClassName: "kv-broken", serviceAccountName: SA, secretObject: { type: "Opaque", data: [{ sourcePath: "no-such-secret", targetKey: "x" }] } });
    const ss = await waitForCondition("broken", "SecretCreated", "ProviderError");
    expect(condition(ss, "SecretCreated")?.message).toMatch(new RegExp(`^provider "azure" failed for secretproviderclass ${NS}/kv-broken and serviceaccount ${NS}/${SA}: .*no-such-secret`));
    expect(condition(ss, "SecretCreated")?.message).not.toContain("\n");
    expect(await readSecret("broken")).toBeUndefined();
    await waitFor(async () => (await eventsOf("broken", "ProviderError")).length > 0, { description: "a ProviderError event" });
  });

  it("writes kubernetes.io/tls Secrets from a PEM and from a PFX certificate", async () => {
    await createClass("kv-tls", [obj("web", "objectAlias: web.pem"), obj("web", "objectAlias: web.pfx\nobjectFormat: pfx\nobjectEncoding: base64")]);
    for (const source of ["web.pem", "web.pfx"]) {
      await createSecretSync(`tls-${source.replace(".", "-")}`, {
        secretProviderClassName: "kv-tls",
        serviceAccountName: SA,
        secretObject: {
          type: "kubernetes.io/tls",
          data: [
            { sourcePath: source, targetKey: "tls.crt" },
            { sourcePath: source, targetKey: "tls.key" },
          ],
        },
      });
    }
    for (const name of ["tls-web-pem", "tls-web-pfx"]) {
      const secret = await waitFor(() => readSecret(name), { description: `secret ${name}`, timeoutMs: 60_000 });
      expect(secret.type).toBe("kubernetes.io/tls");
      const crt = new X509Certificate(Buffer.from(secret.data!["tls.crt"]!, "base64"));
      expect(crt.subject).toContain("CN=web.ssc.example");
      const key = Buffer.from(secret.data!["tls.key"]!, "base64").toString();
      expect(key).toMatch(/^-----BEGIN (RSA|EC) PRIVATE KEY-----\n/);
      expect(crt.checkPrivateKey(createPrivateKey(key))).toBe(true);
    }
  });

  it("leaves a Secret of that name alone when no SecretSync owns it (one the driver synced, here), and says so", async () => {
    await stack.core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: "taken", labels: { "secrets-store.csi.k8s.io/managed": "true" } }, stringData: { password: "the driver's" } },
    });
    const before = (await readSecret("taken"))!;
    await createSecretSync("taken", { secretProviderClassName: "kv", serviceAccountName: SA, secretObject: { type: "Opaque", data: [{ sourcePath: "db-password", targetKey: "password" }] } });
    const ss = await waitForCondition("taken", "SecretCreated", "ControllerPatchError");
    expect(condition(ss, "SecretCreated")?.message).toBe(
      `secret ${NS}/taken exists and is not owned by secretsync ${NS}/taken (it lacks the secrets-store.sync.x-k8s.io label or the SecretSync as its owner), so it was left unchanged: delete or rename that Secret, or give the SecretSync another name`,
    );
    const after = (await readSecret("taken"))!;
    expect(after.metadata!.resourceVersion).toBe(before.metadata!.resourceVersion);
    expect(text(after, "password")).toBe("the driver's");
  });

  it("refuses to write a service-account-token Secret itself, whatever the policies", async () => {
    await createSecretSync("sat", { secretProviderClassName: "kv", serviceAccountName: SA, secretObject: { type: "kubernetes.io/service-account-token", data: [{ sourcePath: "db-password", targetKey: "token" }] } });
    const ss = await waitForCondition("sat", "SecretCreated", "ControllerPatchError");
    expect(condition(ss, "SecretCreated")?.message).toContain("type kubernetes.io/service-account-token is refused");
    expect(await readSecret("sat")).toBeUndefined();
  });

  it("leaves out the key of an optional object the vault does not hold, and syncs the rest", async () => {
    await createClass("kv-optional", [obj("db-password"), obj("feature-flag", 'optional: "true"')]);
    await createSecretSync("optional", {
      secretProviderClassName: "kv-optional",
      serviceAccountName: SA,
      secretObject: { type: "Opaque", data: [{ sourcePath: "db-password", targetKey: "password" }, { sourcePath: "feature-flag", targetKey: "flag" }] },
    });
    const secret = await waitFor(() => readSecret("optional"), { description: "secret optional", timeoutMs: 60_000 });
    expect(Object.keys(secret.data ?? {})).toEqual(["password"]);
    // the vault's current value (an earlier case changed it), as secret db has it
    expect(text(secret, "password")).toBe(text(await readSecret("db"), "password"));
    await waitForCondition("optional", "SecretUpdated", "SecretUpToDate");
  });

  it("waits for a missing class and syncs as soon as it is created", async () => {
    await createSecretSync("late", { secretProviderClassName: "kv-late", serviceAccountName: SA, secretObject: { type: "Opaque", data: [{ sourcePath: "api-key", targetKey: "key" }] } });
    const ss = await waitForCondition("late", "SecretCreated", "SecretProviderClassMisconfigured");
    expect(condition(ss, "SecretCreated")?.message).toBe(`secretproviderclass ${NS}/kv-late named by secretsync ${NS}/late does not exist: create it or fix spec.secretProviderClassName`);
    await createClass("kv-late", [obj("api-key")]);
    await waitFor(async () => text(await readSecret("late"), "key") === "key-one", { description: "secret late after its class appeared", timeoutMs: 30_000 });
  });

  it("never deletes a Secret: deleting the SecretSync lets garbage collection remove it", async () => {
    await stack.custom.deleteNamespacedCustomObject({ group: SS_GROUP, version: SS_VERSION, namespace: NS, plural: "secretsyncs", name: "late" });
    await waitFor(async () => (await readSecret("late")) === undefined, { description: "secret late to be garbage-collected", timeoutMs: 60_000 });
  });
});

describe("after a restart, with rotation on", () => {
  it("writes nothing for SecretSyncs whose data did not change", async () => {
    const names = ["db", "multi", "tls-web-pem", "tls-web-pfx"];
    const secrets = await Promise.all(names.map(async (n) => (await readSecret(n))!.metadata!.resourceVersion));
    const statuses = await Promise.all(names.map(async (n) => (await getSecretSync(n)).metadata.resourceVersion));
    expect(await controller.stop()).toBe(0);
    controller = await stack.startController({ args: ["--rotation-poll-interval=3s"] });
    // Every SecretSync reconciled twice (start, then a rotation tick), all found unchanged.
    await waitFor(async () => metricValue(await controller.metrics(), "secretsync_reconcile_total", { outcome: "unchanged" }) >= 2 * names.length, {
      description: "two rounds of unchanged reconciles",
      timeoutMs: 60_000,
    });
    expect(await Promise.all(names.map(async (n) => (await readSecret(n))!.metadata!.resourceVersion))).toEqual(secrets);
    expect(await Promise.all(names.map(async (n) => (await getSecretSync(n)).metadata.resourceVersion))).toEqual(statuses);
    const metrics = await controller.metrics();
    expect(metricValue(metrics, "secretsync_secret_writes_total")).toBe(0);
    expect(await controller.ready()).toBe(200);
  });

  it("rotates a value changed in the vault within an interval", async () => {
    await stack.emulator.setSecret(VAULT, "api-key", "key-two");
    await waitFor(async () => text(await readSecret("multi"), "key") === "key-two", { description: "the rotated value in secret multi", timeoutMs: 30_000 });
    await waitFor(async () => (await eventsOf("multi", "SecretUpdated")).length > 0, { description: "a SecretUpdated event for multi" });
  });

  it("reads Key Vault once per tick for all the SecretSyncs that share a class and service account", async () => {
    await createClass("kv-shared", [obj("shared")], SHARED_VAULT);
    const keys = Array.from({ length: SHARED }, (_, i) => `shared-${i}`);
    for (const name of keys) {
      await createSecretSync(name, { secretProviderClassName: "kv-shared", serviceAccountName: SA, secretObject: { type: "Opaque", data: [{ sourcePath: "shared", targetKey: "value" }] } });
    }
    for (const name of keys) await waitFor(() => readSecret(name), { description: `secret ${name}`, timeoutMs: 60_000 });
    stack.emulator.resetCounters();
    const logFrom = controller.output().length;
    const reconciles = () => controller.output().slice(logFrom).split("\n").filter((l) => l.includes('"secret up to date"') && keys.some((k) => l.includes(`"${NS}/${k}"`))).length;
    await waitFor(() => reconciles() >= 3 * SHARED, { description: "three rounds of the shared SecretSyncs", timeoutMs: 60_000 });
    const seen = reconciles();
    const reads = stack.emulator.counters()[`getSecret:${SHARED_VAULT}`] ?? 0;
    console.log(`${seen} reconciles of ${SHARED} SecretSyncs sharing one class: ${reads} Key Vault reads (one per SecretSync would be ${seen})`);
    expect(reads).toBeGreaterThanOrEqual(2);
    expect(reads).toBeLessThanOrEqual(Math.ceil(seen / SHARED) + 1);
  });

  it("used exactly the rights the chart grants it, and nothing it was refused", async () => {
    interface Rule {
      apiGroups: string[];
      resources: string[];
      verbs: string[];
    }
    const granted = new Set<string>();
    for (const role of stack.chartObjects.filter((o) => o.kind === "ClusterRole" && o.metadata.name === "secrets-store-sync-controller-manager-role")) {
      for (const rule of (role as unknown as { rules: Rule[] }).rules) for (const g of rule.apiGroups) for (const r of rule.resources) for (const v of rule.verbs) granted.add(`${g || "core"} ${r} ${v}`);
    }
    const events = (await readAuditEvents({ fromOffset: auditFrom })).filter((e) => e.user.username === stack.controllerUser && e.objectRef?.resource);
    expect(events.filter((e) => e.annotations?.["authorization.k8s.io/decision"] === "forbid").map((e) => `${e.verb} ${e.requestURI}`)).toEqual([]);
    const used = new Set<string>();
    for (const e of events) {
      const what = `${e.objectRef!.apiGroup || "core"} ${e.objectRef!.resource}${e.objectRef!.subresource ? `/${e.objectRef!.subresource}` : ""}`;
      used.add(`${what} ${e.verb}`);
      // A server-side apply that creates the object is authorized as a create too.
      if (e.verb === "patch" && e.responseStatus?.code === 201) used.add(`${what} create`);
    }
    console.log(`controller API calls by (group resource verb):\n  ${[...used].sort().join("\n  ")}`);
    expect([...granted].filter((g) => !used.has(g)).sort(), "granted but never used").toEqual([]);
    expect([...used].filter((u) => !granted.has(u)).sort(), "used but not granted").toEqual([]);
  });
});
