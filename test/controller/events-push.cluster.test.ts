// Event-driven rotation by push, end to end on real parts: the Key Vault
// emulator delivers Event Grid events over HTTPS to the controller program's
// webhook (running as the chart's service account, with the chart's RBAC for
// events and restart on rotation); the controller syncs SecretSyncs again
// through our Azure provider and asks the driver program (real tmpfs, the
// same API server) to refresh its node's volumes through their status
// objects; workloads that follow the content are rolled. No polling helps:
// the controller's rotation is off and the driver polls once an hour.
import { readFile } from "node:fs/promises";
import { mkdtemp, rm } from "node:fs/promises";
import { createPrivateKey, generateKeyPairSync, sign } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AppsV1Api, type V1Secret } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SECURE_WEBHOOK_ROLE } from "../../src/emulator/index.ts";
import { apiErrorCode, auditLogOffset, readAuditEvents, waitFor } from "../harness/kube.ts";
import { requireRoot } from "../support/driver-process.ts";
import {
  eventOutcomes,
  newVersionEvent,
  postToWebhook,
  QUERY_SECRETS,
  startNodeDriver,
  waitForOutcome,
  WEBHOOK_AUDIENCE,
  webhookArgs,
  webhookFiles,
  webhookPort,
  type NodeDriver,
} from "./event-stack.ts";
import { metricValue, secretProviderClassBody, secretSyncBody, SPC_GROUP, SS_GROUP, SS_VERSION, startSyncStack, type ControllerProcess, type SyncStack } from "./stack.ts";

const NS = "evt-push";
const SYSTEM_NS = "evt-push-system";
const SA = "app";
const VAULT = "evt-push-kv";
const NODE = "evt-push-node";
const PODS = ["web-0", "web-1", "web-2"];
const OBJECTS = 2;

let stack: SyncStack;
let node: NodeDriver;
let controller: ControllerProcess;
let port: number;
let dir: string;
let apps: AppsV1Api;
let auditFrom = 0;

const reads = () => stack.emulator.counters()[`getSecret:${VAULT}`] ?? 0;
const fileOf = (pod: string, name: string) => readFile(join(node.targets.get(pod)!, name), "utf8");
async function readSecret(name: string): Promise<V1Secret | undefined> {
  try {
    return await stack.core.readNamespacedSecret({ name, namespace: NS });
  } catch (err) {
    if (apiErrorCode(err) === 404) return undefined;
    throw err;
  }
}
const secretText = async (name: string, key: string) => {
  const s = await readSecret(name);
  return s?.data?.[key] === undefined ? undefined : Buffer.from(s.data[key]!, "base64").toString("utf8");
};
const obj = (name: string) => `objectName: ${name}\nobjectType: secret`;
async function allFiles(name: string, value: string): Promise<boolean> {
  for (const pod of PODS) if ((await fileOf(pod, name)) !== value) return false;
  return true;
}
async function generation(kind: "deployment" | "statefulset" | "daemonset", name: string): Promise<number> {
  const read = { deployment: () => apps.readNamespacedDeployment({ name, namespace: NS }), statefulset: () => apps.readNamespacedStatefulSet({ name, namespace: NS }), daemonset: () => apps.readNamespacedDaemonSet({ name, namespace: NS }) }[kind];
  return (await read()).metadata!.generation!;
}
async function rolloutEvents(name: string): Promise<string[]> {
  const list = await stack.core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${name},reason=RestartedForRotation` });
  return list.items.map((e) => e.message ?? "");
}
const eventGridDelivery = (body: unknown, query = `?code=${QUERY_SECRETS[0]}`, headers: Record<string, string> = {}) =>
  postToWebhook(stack, port, { path: `/${query}`, headers: { "content-type": "application/json", "aeg-event-type": "Notification", ...headers }, body: JSON.stringify(body) });

/** A pod template mounting class kv, and with `env` reading Secret app-secrets too. */
function podTemplate(app: string, env = false) {
  return {
    metadata: { labels: { app } },
    spec: {
      serviceAccountName: SA,
      containers: [
        { name: "c", image: "registry.k8s.io/pause:3.10", ...(env ? { env: [{ name: "DB_PASSWORD", valueFrom: { secretKeyRef: { name: "app-secrets", key: "password" } } }] } : {}) },
      ],
      volumes: [{ name: "secrets", csi: { driver: "secrets-store.csi.k8s.io", readOnly: true, volumeAttributes: { secretProviderClass: "kv" } } }],
    },
  };
}

beforeAll(async () => {
  requireRoot();
  stack = await startSyncStack({
    systemNamespace: SYSTEM_NS,
    workloads: [[NS, SA]],
    vaults: [
      {
        name: VAULT,
        secrets: [
          { name: "db-password", value: "db-v1" },
          { name: "api-key", value: "key-v1" },
          { name: "nobody-reads-me", value: "x" },
        ],
      },
    ],
    chartValues: {
      events: { webhook: { enabled: true, tlsSecretName: "events-tls", querySecret: { secretName: "events-query" } } },
      restartOnRotation: { enabled: true },
    },
    eventTimeScale: 0.05,
  });
  apps = stack.kc.makeApiClient(AppsV1Api);
  await stack.core.createNamespace({ body: { metadata: { name: NS } } });
  await stack.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: SA } } });
  await stack.custom.createNamespacedCustomObject({
    group: SPC_GROUP,
    version: "v1",
    namespace: NS,
    plural: "secretproviderclasses",
    body: secretProviderClassBody("kv", VAULT, stack.emulator.tenantId, [obj("db-password"), obj("api-key")]),
  });
  await stack.custom.createNamespacedCustomObject({
    group: SS_GROUP,
    version: SS_VERSION,
    namespace: NS,
    plural: "secretsyncs",
    body: secretSyncBody("app-secrets", { secretProviderClassName: "kv", serviceAccountName: SA, secretObject: { type: "Opaque", data: [{ sourcePath: "db-password", targetKey: "password" }] } }),
  });
  // Workloads that follow content, with Reloader's annotations and ours; one that follows nothing.
  const selector = (app: string) => ({ matchLabels: { app } });
  await apps.createNamespacedDeployment({
    namespace: NS,
    body: { metadata: { name: "env-app", annotations: { "secret.reloader.stakater.com/reload": "app-secrets" } }, spec: { replicas: 2, selector: selector("env-app"), template: podTemplate("env-app", true) } },
  });
  await apps.createNamespacedDeployment({
    namespace: NS,
    body: { metadata: { name: "file-app", annotations: { "secretproviderclass.reloader.stakater.com/reload": "kv" } }, spec: { replicas: 1, selector: selector("file-app"), template: podTemplate("file-app") } },
  });
  await apps.createNamespacedDeployment({
    namespace: NS,
    body: { metadata: { name: "bystander" }, spec: { replicas: 1, selector: selector("bystander"), template: podTemplate("bystander", true) } },
  });
  await apps.createNamespacedStatefulSet({
    namespace: NS,
    body: { metadata: { name: "sts-app", annotations: { "reloader.stakater.com/auto": "true" } }, spec: { replicas: 1, serviceName: "sts-app", selector: selector("sts-app"), template: podTemplate("sts-app") } },
  });
  await apps.createNamespacedDaemonSet({
    namespace: NS,
    body: { metadata: { name: "ds-app", annotations: { "secrets-store.csi.x-k8s.io/restart-on-rotation": "true" } }, spec: { selector: selector("ds-app"), template: podTemplate("ds-app") } },
  });

  node = await startNodeDriver(stack, NODE);
  for (const pod of PODS) {
    await node.createPod(NS, pod, SA);
    await node.publish(NS, pod, "kv", SA);
  }
  dir = await mkdtemp(join(tmpdir(), "events-push-"));
  auditFrom = await auditLogOffset();
  controller = await stack.startController({
    azure: true,
    args: ["--rotation-poll-interval=0", ...webhookArgs(stack, await webhookFiles(stack, dir)), "--restart-on-rotation", "--restart-min-interval=0s", "--max-tracked-events=100"],
  });
  port = await webhookPort(controller);
  await waitFor(() => secretText("app-secrets", "password").then((v) => v === "db-v1"), { description: "the first sync of app-secrets", timeoutMs: 60_000 });
}, 300_000);

afterAll(async () => {
  await controller?.kill();
  await node?.stop();
  await stack?.core.deleteNamespace({ name: NS }).catch(() => undefined);
  await stack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("push: Event Grid webhook", () => {
  it("passes Event Grid's handshake for both schemas, authenticated by query secret and by Entra ID token", async () => {
    const url = (query = "") => `https://127.0.0.1:${port}/keyvault-events${query}`;
    const eg = await stack.emulator.events.addWebhookSubscription({ name: "eg-query", endpointUrl: url(`?code=${QUERY_SECRETS[1]}`), vaults: [VAULT] });
    expect(eg.provisioningState).toBe("Succeeded");
    const ce = await stack.emulator.events.addWebhookSubscription({
      name: "ce-entra",
      endpointUrl: url(),
      eventDeliverySchema: "CloudEventSchemaV1_0",
      azureActiveDirectoryApplicationIdOrUri: WEBHOOK_AUDIENCE,
      vaults: [VAULT],
    });
    expect(ce.provisioningState).toBe("Succeeded");
    expect(metricValue(await controller.metrics(), "keyvault_event_deliveries_total", { result: "handshake" })).toBe(2);
    stack.emulator.events.removeWebhookSubscription("ce-entra");
  });

  it("rotates the mounted files of every pod and the synced Secret within seconds, reading once per identity", async () => {
    const refreshedBefore = await eventOutcomes(controller, "refreshed");
    stack.emulator.resetCounters();
    await stack.emulator.setSecret(VAULT, "db-password", "db-v2");
    await waitFor(() => allFiles("db-password", "db-v2"), { description: "db-v2 in every pod's file", timeoutMs: 30_000 });
    await waitFor(async () => (await secretText("app-secrets", "password")) === "db-v2", { description: "db-v2 in Secret app-secrets", timeoutMs: 30_000 });
    await waitForOutcome(controller, "refreshed", refreshedBefore + 1);
    // One provider call for the SecretSync's service account, one for the node's
    // refresh group (three pods, one identity): each reads the class's two
    // objects, unless the provider served both from one read (same identity,
    // same request, at the same time).
    expect(reads()).toBeGreaterThanOrEqual(OBJECTS);
    expect(reads()).toBeLessThanOrEqual(2 * OBJECTS);
    expect(await fileOf("web-0", "api-key")).toBe("key-v1");
  });

  it("rolls each following workload exactly once for that change, all replicas together, with an Event naming the version", async () => {
    for (const [kind, name] of [["deployment", "env-app"], ["deployment", "file-app"], ["statefulset", "sts-app"], ["daemonset", "ds-app"]] as const) {
      await waitFor(async () => (await generation(kind, name)) === 2, { description: `${kind} ${name} rolled`, timeoutMs: 30_000 });
    }
    expect(await generation("deployment", "bystander")).toBe(1);
    const env = await apps.readNamespacedDeployment({ name: "env-app", namespace: NS });
    expect(Object.keys(env.spec!.template.metadata!.annotations ?? {})).toEqual(["rotation.secrets-store.csi.x-k8s.io/secret.app-secrets"]);
    const file = await apps.readNamespacedDeployment({ name: "file-app", namespace: NS });
    expect(Object.keys(file.spec!.template.metadata!.annotations ?? {})).toEqual(["rotation.secrets-store.csi.x-k8s.io/spc.kv"]);
    const version = (await stack.custom.getNamespacedCustomObject({ group: SPC_GROUP, version: "v1", namespace: NS, plural: "secretproviderclasspodstatuses", name: `web-0-${NS}-kv` })) as {
      status: { objects: { id: string; version: string }[] };
    };
    const dbVersion = version.status.objects.find((o) => o.id === "secret/db-password")!.version;
    await waitFor(async () => (await rolloutEvents("file-app")).length === 1, { description: "the rollout Event of file-app" });
    expect((await rolloutEvents("file-app"))[0]).toContain(`secret/db-password version ${dbVersion}`);
    await waitFor(async () => (await rolloutEvents("env-app")).length === 1, { description: "the rollout Event of env-app" });
    expect((await rolloutEvents("env-app"))[0]).toBe(
      `restarting all replicas: secret ${NS}/app-secrets (synced by secretsync ${NS}/app-secrets) has new data (secret/db-password version ${dbVersion})`,
    );
  });

  it("delivers CloudEvents batches with an Entra ID token end to end", async () => {
    stack.emulator.events.removeWebhookSubscription("eg-query");
    await stack.emulator.events.addWebhookSubscription({
      name: "ce-entra-2",
      endpointUrl: `https://127.0.0.1:${port}/keyvault-events`,
      eventDeliverySchema: "CloudEventSchemaV1_0",
      // application/cloudevents-batch+json
      maxEventsPerBatch: 10,
      azureActiveDirectoryApplicationIdOrUri: WEBHOOK_AUDIENCE,
      vaults: [VAULT],
    });
    await stack.emulator.setSecret(VAULT, "api-key", "key-v2");
    await waitFor(() => allFiles("api-key", "key-v2"), { description: "key-v2 in every pod's file", timeoutMs: 30_000 });
    stack.emulator.events.removeWebhookSubscription("ce-entra-2");
    await stack.emulator.events.addWebhookSubscription({ name: "eg-main", endpointUrl: `https://127.0.0.1:${port}/?code=${QUERY_SECRETS[0]}`, vaults: [VAULT] });
  });

  it("refuses unauthenticated, wrongly signed, expired and wrong-audience deliveries, and refreshes nothing for them", async () => {
    const refusedBefore = metricValue(await controller.metrics(), "keyvault_event_deliveries_total", { result: "unauthorized" });
    stack.emulator.resetCounters();
    const body = [newVersionEvent("forged-1", VAULT, "db-password", "f".repeat(32))];
    const good = stack.emulator.issueAccessToken({ audience: WEBHOOK_AUDIENCE, roles: [SECURE_WEBHOOK_ROLE] });
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const [h, p] = good.split(".");
    const forged = `${h}.${p}.${sign("sha256", Buffer.from(`${h}.${p}`), createPrivateKey(privateKey.export({ type: "pkcs8", format: "pem" }))).toString("base64url")}`;
    const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
    const attempts: Array<[string, Promise<{ status: number }>]> = [
      ["no credentials", eventGridDelivery(body, "")],
      ["a wrong query secret", eventGridDelivery(body, "?code=not-the-secret-0123456789")],
      ["a wrongly signed token", eventGridDelivery(body, "", bearer(forged))],
      ["an expired token", eventGridDelivery(body, "", bearer(stack.emulator.issueAccessToken({ audience: WEBHOOK_AUDIENCE, roles: [SECURE_WEBHOOK_ROLE], expiresInSeconds: -600 })))],
      ["a token for another audience", eventGridDelivery(body, "", bearer(stack.emulator.issueAccessToken({ audience: "api://someone-else", roles: [SECURE_WEBHOOK_ROLE] })))],
      ["a token without the role", eventGridDelivery(body, "", bearer(stack.emulator.issueAccessToken({ audience: WEBHOOK_AUDIENCE })))],
      ["a handshake without credentials", postToWebhook(stack, port, { method: "OPTIONS", headers: { "webhook-request-origin": "eventgrid.azure.net" } })],
    ];
    for (const [what, attempt] of attempts) expect((await attempt).status, what).toBe(401);
    // The same token, rightly signed, is accepted: the refusals were about what they said they were.
    expect((await eventGridDelivery([], "", bearer(good))).status).toBe(200);
    // An emulator subscription whose tokens expired never gets validated.
    const expired = await stack.emulator.events.addWebhookSubscription({
      name: "eg-expired-token",
      endpointUrl: `https://127.0.0.1:${port}/`,
      azureActiveDirectoryApplicationIdOrUri: WEBHOOK_AUDIENCE,
      tokenLifetimeSeconds: -600,
      maxDeliveryAttempts: 1,
    });
    expect(expired.provisioningState).not.toBe("Succeeded");
    stack.emulator.events.removeWebhookSubscription("eg-expired-token");
    expect(metricValue(await controller.metrics(), "keyvault_event_deliveries_total", { result: "unauthorized" }) - refusedBefore).toBeGreaterThanOrEqual(attempts.length + 1);
    expect(reads()).toBe(0);
    expect(await allFiles("db-password", "db-v2")).toBe(true);
    expect(await eventOutcomes(controller, "refreshed", "NewVersionCreated")).toBe(2);
  });

  it("costs nothing for a duplicate, a reordered older version, or an event for an object no pod uses", async () => {
    const before = { duplicate: await eventOutcomes(controller, "duplicate"), stale: await eventOutcomes(controller, "stale"), unused: await eventOutcomes(controller, "unused"), refreshed: await eventOutcomes(controller, "refreshed") };
    // Two versions written while deliveries are held, then delivered newest first.
    stack.emulator.events.hold("eg-main");
    await stack.emulator.setSecret(VAULT, "db-password", "db-v3");
    // Event times are in milliseconds: the second version's event is strictly later.
    await new Promise((r) => setTimeout(r, 5));
    await stack.emulator.setSecret(VAULT, "db-password", "db-v4");
    stack.emulator.resetCounters();
    expect(stack.emulator.events.release("eg-main", "reverse")).toBe(2);
    await waitForOutcome(controller, "refreshed", before.refreshed + 1);
    await waitForOutcome(controller, "stale", before.stale + 1);
    await waitFor(() => allFiles("db-password", "db-v4"), { description: "db-v4 in every file", timeoutMs: 30_000 });
    expect(await eventOutcomes(controller, "refreshed")).toBe(before.refreshed + 1);
    expect(await secretText("app-secrets", "password")).toBe("db-v4");
    const afterReorder = reads();
    expect(afterReorder).toBeGreaterThanOrEqual(OBJECTS);
    expect(afterReorder).toBeLessThanOrEqual(2 * OBJECTS);
    // Event Grid delivering the newest one again (at least once): a duplicate.
    const newest = stack.emulator.events.published().filter((e) => e.subject === "db-password").at(-1)!;
    expect(stack.emulator.events.redeliver(newest.id, "eg-main")).toBe(1);
    await waitForOutcome(controller, "duplicate", before.duplicate + 1);
    // The same version under a new id (another subscription's copy): already held everywhere.
    const current = (newest.data as { Version: string }).Version;
    expect((await eventGridDelivery([newVersionEvent("copy-of-newest", VAULT, "db-password", current)])).status).toBe(200);
    // A new version of an object no class reads.
    await stack.emulator.setSecret(VAULT, "nobody-reads-me", "y");
    await waitForOutcome(controller, "unused", before.unused + 1);
    expect(reads()).toBe(afterReorder);
  });

  it("never rolls a workload for a refresh that changed nothing", async () => {
    const generations = async () => Promise.all([generation("deployment", "env-app"), generation("deployment", "file-app"), generation("statefulset", "sts-app"), generation("daemonset", "ds-app")]);
    // Rolled once per content change so far: db-v2, key-v2 (not env-app: its Secret has only the password), db-v4.
    await waitFor(async () => (await generations()).join() === "3,4,4,4", { description: "the rollouts of the changes so far", timeoutMs: 30_000 });
    stack.emulator.resetCounters();
    const refreshedBefore = await eventOutcomes(controller, "refreshed", "VaultAccessPolicyChanged");
    stack.emulator.events.raise({ type: "VaultAccessPolicyChanged", vault: VAULT });
    await waitForOutcome(controller, "refreshed", refreshedBefore + 1, "VaultAccessPolicyChanged");
    // Everything was read again (access re-checked), and found the same.
    await waitFor(() => reads() >= OBJECTS, { description: "the re-check's reads", timeoutMs: 30_000 });
    // A real change after it rolls exactly once more: the no-op before it rolled nothing.
    await stack.emulator.setSecret(VAULT, "db-password", "db-v5");
    await waitFor(async () => (await generations()).join() === "4,5,5,5", { description: "one more rollout each", timeoutMs: 30_000 });
    await waitFor(() => allFiles("db-password", "db-v5"), { description: "db-v5 in every file", timeoutMs: 30_000 });
    expect((await generations()).join()).toBe("4,5,5,5");
    expect(await generation("deployment", "bystander")).toBe(1);
  });

  it("warns on the pods and SecretSyncs that use an object near expiry, with its days left in a metric", async () => {
    const expires = Math.floor(Date.now() / 1000) + 12 * 86_400 + 3600;
    stack.emulator.events.raise({ type: "SecretNearExpiry", vault: VAULT, name: "db-password", data: { EXP: expires } });
    await waitForOutcome(controller, "warned", 1, "NearExpiry");
    for (const pod of PODS) {
      const events = await waitFor(
        async () => {
          const list = await stack.core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${pod},involvedObject.kind=Pod,reason=KeyVaultObjectNearExpiry` });
          return list.items.length > 0 ? list.items : undefined;
        },
        { description: `the NearExpiry Warning on pod ${pod}` },
      );
      expect(events[0]!.type).toBe("Warning");
      expect(events[0]!.message).toMatch(new RegExp(`^secret db-password \\(version [0-9a-f]{32}\\) in vault ${VAULT} expires on .* \\(in 12 days\\); read through secretproviderclass ${NS}/kv`));
    }
    const ss = await stack.core.listNamespacedEvent({ namespace: NS, fieldSelector: "involvedObject.name=app-secrets,involvedObject.kind=SecretSync,reason=KeyVaultObjectNearExpiry" });
    expect(ss.items.map((e) => e.type)).toEqual(["Warning"]);
    const metrics = await controller.metrics();
    expect(metricValue(metrics, "keyvault_object_expiry_days", { object_type: "secret" })).toBe(12);
    expect(metricValue(metrics, "keyvault_objects_expiring", { object_type: "secret", state: "near_expiry" })).toBe(1);
  });

  it("stays within its bounds under a flood of authenticated events with unique ids and names, and keeps working", async () => {
    const seriesOf = (text: string) => text.split("\n").filter((l) => /^keyvault_/.test(l));
    const seriesBefore = seriesOf(await controller.metrics()).length;
    stack.emulator.resetCounters();
    const floodVersions = 60;
    const deliveries = [];
    for (let i = 0; i < 300; i++) deliveries.push(newVersionEvent(`flood-${i}`, VAULT, `made-up-object-${i}`, i.toString(16).padStart(32, "0")));
    for (let i = 0; i < floodVersions; i++) deliveries.push(newVersionEvent(`flood-version-${i}`, VAULT, "api-key", (1000 + i).toString(16).padStart(32, "0")));
    for (let i = 0; i < deliveries.length; i += 60) expect((await eventGridDelivery(deliveries.slice(i, i + 60))).status).toBe(200);
    const metrics = await controller.metrics();
    for (const kind of ["ids", "versions", "objects", "vaults", "in_flight"]) expect(metricValue(metrics, "keyvault_event_memory_entries", { kind }), kind).toBeLessThanOrEqual(100);
    // No label grew with what the events said: at most a new outcome or two.
    const series = seriesOf(metrics);
    expect(series.join("\n")).not.toContain("made-up-object");
    expect(series.length).toBeLessThanOrEqual(seriesBefore + 3);
    // Refreshes were merged (one sync at a time per SecretSync, the node's rate per refresh group): fewer reads than events.
    expect(reads()).toBeLessThan(floodVersions * OBJECTS);
    // And a real change still comes through.
    await stack.emulator.setSecret(VAULT, "db-password", "db-v6");
    await waitFor(async () => (await secretText("app-secrets", "password")) === "db-v6", { description: "db-v6 in Secret app-secrets after the flood", timeoutMs: 60_000 });
  });

  it("used exactly the rights the chart grants it with events and restart on rotation, and never patched a pod", async () => {
    const granted = new Set<string>();
    for (const role of stack.chartObjects.filter((o) => o.kind === "ClusterRole" && o.metadata.name === "secrets-store-sync-controller-manager-role")) {
      for (const rule of (role as unknown as { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }).rules) {
        for (const g of rule.apiGroups) for (const r of rule.resources) for (const v of rule.verbs) granted.add(`${g || "core"} ${r} ${v}`);
      }
    }
    const events = (await readAuditEvents({ fromOffset: auditFrom })).filter((e) => e.user.username === stack.controllerUser && e.objectRef?.resource);
    expect(events.filter((e) => e.annotations?.["authorization.k8s.io/decision"] === "forbid").map((e) => `${e.verb} ${e.requestURI}`)).toEqual([]);
    const used = new Set<string>();
    for (const e of events) {
      const what = `${e.objectRef!.apiGroup || "core"} ${e.objectRef!.resource}${e.objectRef!.subresource ? `/${e.objectRef!.subresource}` : ""}`;
      used.add(`${what} ${e.verb}`);
      if (e.verb === "patch" && e.responseStatus?.code === 201) used.add(`${what} create`);
    }
    console.log(`controller API calls with events and restart on rotation:\n  ${[...used].sort().join("\n  ")}`);
    expect([...granted].filter((g) => !used.has(g)).sort(), "granted but never used").toEqual([]);
    expect([...used].filter((u) => !granted.has(u)).sort(), "used but not granted").toEqual([]);
    expect([...used].filter((u) => u.startsWith("core pods"))).toEqual([]);
  });
});
