// Event-driven rotation by pull, end to end on real parts: the emulator's
// vault system topic delivers to an Event Grid namespace topic, and the
// controller program reads its queue subscription with
// @azure/eventgrid-namespaces, authenticated as its own workload identity (a
// token of its service account from the API server, exchanged with the
// emulated Entra ID). An event is acknowledged once the SecretSyncs are
// synced and the nodes asked, released with a delay when that failed, and
// rejected when it is not a readable event. No polling helps.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AzureKeyCredential, EventGridSenderClient } from "@azure/eventgrid-namespaces";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// This test's own client reaches the namespace's host name through the emulator's DNS hook.
import "../../src/emulator/dns-hook.ts";
import { waitFor } from "../harness/kube.ts";
import { requireRoot } from "../support/driver-process.ts";
import { eventOutcomes, startNodeDriver, waitForOutcome, type NodeDriver } from "./event-stack.ts";
import { AUDIENCE, CONTROLLER_SA, metricValue, secretProviderClassBody, secretSyncBody, SPC_GROUP, SS_GROUP, SS_VERSION, startSyncStack, type ControllerProcess, type SyncStack } from "./stack.ts";

const NS = "evt-pull";
const SYSTEM_NS = "evt-pull-system";
const SA = "app";
const VAULT = "evt-pull-kv";
const NODE = "evt-pull-node";
const NAMESPACE = "evt-pull-ns";
const TOPIC = "keyvault";
const SUBSCRIPTION = "controller";
const CONTROLLER_CLIENT_ID = "54444444-4444-4444-8444-444444444444";
const PODS = ["web-0", "web-1"];

let stack: SyncStack;
let node: NodeDriver;
let controller: ControllerProcess;
let dir: string;

const secretText = async (name: string) => {
  const s = await stack.core.readNamespacedSecret({ name, namespace: NS });
  return Buffer.from(s.data?.password ?? "", "base64").toString("utf8");
};
const allFiles = async (value: string) => {
  for (const pod of PODS) if ((await readFile(join(node.targets.get(pod)!, "db-password"), "utf8")) !== value) return false;
  return true;
};
const queue = () => stack.emulator.events.namespace(NAMESPACE)!.topics.find((t) => t.name === TOPIC)!.subscriptions.find((s) => s.name === SUBSCRIPTION)!;

beforeAll(async () => {
  requireRoot();
  stack = await startSyncStack({
    systemNamespace: SYSTEM_NS,
    workloads: [[NS, SA]],
    vaults: [{ name: VAULT, secrets: [{ name: "db-password", value: "db-v1" }] }],
    chartValues: { events: { pull: { enabled: true, namespaceEndpoint: "https://x.eastus-1.eventgrid.azure.net", topic: TOPIC, subscription: SUBSCRIPTION } } },
    // Event Grid's clock ten times faster: a 10 s release delay takes 1 s.
    eventTimeScale: 0.1,
  });
  // The controller's own identity, federated with its service account, may receive from the namespace.
  await stack.emulator.seed({
    applications: [{ name: "controller", clientId: CONTROLLER_CLIENT_ID, federatedCredentials: [{ issuer: stack.issuer, subject: `system:serviceaccount:${SYSTEM_NS}:${CONTROLLER_SA}` }] }],
  } as never);
  const namespace = stack.emulator.events.addNamespace({
    name: NAMESPACE,
    roleAssignments: [{ principal: CONTROLLER_CLIENT_ID, role: "EventGrid Data Receiver" }],
    topics: [{ name: TOPIC, vaults: [VAULT], subscriptions: [{ name: SUBSCRIPTION, receiveLockDurationInSeconds: 60 }] }],
  });

  await stack.core.createNamespace({ body: { metadata: { name: NS } } });
  await stack.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: SA } } });
  await stack.custom.createNamespacedCustomObject({
    group: SPC_GROUP,
    version: "v1",
    namespace: NS,
    plural: "secretproviderclasses",
    body: secretProviderClassBody("kv", VAULT, stack.emulator.tenantId, ["objectName: db-password\nobjectType: secret"]),
  });
  await stack.custom.createNamespacedCustomObject({
    group: SS_GROUP,
    version: SS_VERSION,
    namespace: NS,
    plural: "secretsyncs",
    body: secretSyncBody("app-secrets", { secretProviderClassName: "kv", serviceAccountName: SA, secretObject: { type: "Opaque", data: [{ sourcePath: "db-password", targetKey: "password" }] } }),
  });
  node = await startNodeDriver(stack, NODE);
  for (const pod of PODS) {
    await node.createPod(NS, pod, SA);
    await node.publish(NS, pod, "kv", SA);
  }

  // What the workload identity webhook gives the controller's pod: a projected token and three variables.
  dir = await mkdtemp(join(tmpdir(), "events-pull-"));
  const token = await stack.core.createNamespacedServiceAccountToken({ name: CONTROLLER_SA, namespace: SYSTEM_NS, body: { spec: { audiences: [AUDIENCE], expirationSeconds: 3600 } } });
  const tokenFile = join(dir, "azure-identity-token");
  await writeFile(tokenFile, token.status!.token!, { mode: 0o600 });
  controller = await stack.startController({
    azure: true,
    args: [
      "--rotation-poll-interval=0",
      `--event-namespace-endpoint=${namespace.endpoint}`,
      `--event-namespace-topic=${TOPIC}`,
      `--event-namespace-subscription=${SUBSCRIPTION}`,
      `--event-namespace-client-id=${CONTROLLER_CLIENT_ID}`,
    ],
    env: { AZURE_CLIENT_ID: CONTROLLER_CLIENT_ID, AZURE_TENANT_ID: stack.emulator.tenantId, AZURE_FEDERATED_TOKEN_FILE: tokenFile, AZURE_AUTHORITY_HOST: "https://login.microsoftonline.com/" },
  });
  await waitFor(async () => (await secretText("app-secrets")) === "db-v1", { description: "the first sync of app-secrets", timeoutMs: 60_000 });
  // The receiver is polling the queue (receive long-polls), as its workload identity.
  await waitFor(() => (stack.emulator.counters()[`receiveCloudEvents:${NAMESPACE}`] ?? 0) > 0, { description: "the controller to receive from the namespace", timeoutMs: 60_000 });
}, 300_000);

afterAll(async () => {
  delete process.env.SSCSI_EMULATOR_ADDRESS;
  await controller?.kill();
  await node?.stop();
  await stack?.core.deleteNamespace({ name: NS }).catch(() => undefined);
  await stack?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("pull: Event Grid namespace topic", () => {
  it("rotates the mounted files and the synced Secret, and acknowledges the event once done", async () => {
    const acknowledged = queue().counters.acknowledged;
    await stack.emulator.setSecret(VAULT, "db-password", "db-v2");
    await waitFor(() => allFiles("db-v2"), { description: "db-v2 in every pod's file", timeoutMs: 30_000 });
    await waitFor(async () => (await secretText("app-secrets")) === "db-v2", { description: "db-v2 in Secret app-secrets", timeoutMs: 30_000 });
    await waitFor(() => queue().counters.acknowledged === acknowledged + 1, { description: "the event acknowledged" });
    expect(queue()).toMatchObject({ available: 0, locked: 0 });
    expect(stack.emulator.counters().eventGridUnauthorized ?? 0).toBe(0);
  });

  it("releases an event whose refresh failed, and acknowledges it when its redelivery succeeds", async () => {
    const before = { ...queue().counters };
    const failedBefore = await eventOutcomes(controller, "failed");
    // Key Vault refuses reads for a while: the sync fails, the old value stays.
    stack.emulator.faults.add({ kind: "error", status: 403, operation: "getSecret", vault: VAULT, durationMs: 2500 });
    await stack.emulator.setSecret(VAULT, "db-password", "db-v3");
    await waitForOutcome(controller, "failed", failedBefore + 1);
    expect(await secretText("app-secrets")).toBe("db-v2");
    expect(await allFiles("db-v2")).toBe(true);
    await waitFor(() => queue().counters.released > before.released, { description: "the event released" });
    // Delivered again (deliveryCount 2) once the delay is over, and handled.
    await waitFor(async () => (await secretText("app-secrets")) === "db-v3", { description: "db-v3 in Secret app-secrets", timeoutMs: 60_000 });
    await waitFor(() => allFiles("db-v3"), { description: "db-v3 in every pod's file", timeoutMs: 60_000 });
    await waitFor(() => queue().counters.acknowledged === before.acknowledged + 1, { description: "the redelivered event acknowledged" });
    expect(queue().counters.delivered).toBeGreaterThanOrEqual(before.delivered + 2);
    expect(queue().counters.deadLettered).toBe(before.deadLettered);
  });

  it("acknowledges a duplicate without reading, and rejects what is not a Key Vault event it can read", async () => {
    const before = { ...queue().counters };
    const duplicates = await eventOutcomes(controller, "duplicate");
    stack.emulator.resetCounters();
    const newest = stack.emulator.events.published().filter((e) => e.subject === "db-password").at(-1)!;
    expect(stack.emulator.events.redeliver(newest.id, `${NAMESPACE}/${TOPIC}/${SUBSCRIPTION}`)).toBe(1);
    await waitForOutcome(controller, "duplicate", duplicates + 1);
    expect(stack.emulator.counters()[`getSecret:${VAULT}`] ?? 0).toBe(0);

    // Someone with the namespace's key publishes a malformed Key Vault event and an event of another kind.
    process.env.SSCSI_EMULATOR_ADDRESS = stack.emulatorAddress;
    const sender = new EventGridSenderClient(stack.emulator.events.namespace(NAMESPACE)!.endpoint, new AzureKeyCredential(stack.emulator.events.namespace(NAMESPACE)!.accessKeys[0]!), TOPIC, {
      tlsOptions: { ca: stack.emulator.caCertPem },
    });
    await sender.sendEvents([
      { type: "Microsoft.KeyVault.SecretNewVersionCreated", source: "/subscriptions/x/vaults/evt-pull-kv", id: "malformed-1", data: { VaultName: VAULT, ObjectName: "../../etc/passwd", Version: "1" } },
      { type: "Contoso.Items.ItemReceived", source: "/contoso", id: "other-1", data: { itemSku: "1" } },
    ]);
    await waitFor(() => queue().counters.rejected === before.rejected + 1, { description: "the malformed event rejected" });
    await waitFor(() => queue().counters.acknowledged === before.acknowledged + 2, { description: "the duplicate and the other event acknowledged" });
    expect(queue().deadLetters.at(-1)).toMatchObject({ reason: "Rejected" });
    const metrics = await controller.metrics();
    expect(metricValue(metrics, "keyvault_events_total", { source: "pull", outcome: "malformed" })).toBe(1);
    expect(metricValue(metrics, "keyvault_events_total", { source: "pull", outcome: "ignored" })).toBe(1);
    expect(metricValue(metrics, "keyvault_event_receives_total", { outcome: "failed" })).toBe(0);
  });
});
