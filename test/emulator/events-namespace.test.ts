// Pull delivery: the vaults' events reach an Event Grid namespace topic and
// are read with the real EventGridReceiverClient (@azure/eventgrid-namespaces)
// over HTTPS: receive under locks, acknowledge, release with a delay, reject,
// renew, lock expiry and redelivery, dead-lettering at maxDeliveryCount;
// authenticated with Entra ID tokens (service principal, workload identity)
// from the emulator or with a shared access key. Event Grid's clock runs 20
// times faster (a 60 s lock lasts 3 s, a 60 s release delay too).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { AzureKeyCredential, EventGridReceiverClient, EventGridSenderClient } from "@azure/eventgrid-namespaces";
import { ClientAssertionCredential, type AccessToken, type TokenCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";
import { EMULATOR_SERVICE_ACCOUNT_ISSUER, startEmulator, type Emulator, type QueueSubscriptionConfig } from "../../src/emulator/index.ts";
import { clientOptions, secretCredential } from "./helpers.ts";

const VAULT = "kv-pull";
const NAMESPACE = "ns-events";
const CONTROLLER = { clientId: "e7e70000-0000-4000-8000-000000000001", secret: "controller-secret" };
const OUTSIDER = { clientId: "e7e70000-0000-4000-8000-000000000002", secret: "outsider-secret" };
const WORKLOAD = "e7e70000-0000-4000-8000-000000000003";

let emulator: Emulator;
let secrets: SecretClient;
let topicCount = 0;

beforeAll(async () => {
  emulator = await startEmulator({
    eventTimeScale: 0.05,
    seed: {
      vaults: [{ name: VAULT }],
      applications: [
        { name: "controller", clientId: CONTROLLER.clientId, clientSecret: CONTROLLER.secret, roleAssignments: [{ vault: "*", role: "Key Vault Administrator" }] },
        { name: "outsider", clientId: OUTSIDER.clientId, clientSecret: OUTSIDER.secret },
        { name: "workload", clientId: WORKLOAD, federatedCredentials: [{ issuer: EMULATOR_SERVICE_ACCOUNT_ISSUER, subject: "system:serviceaccount:kube-system:secrets-store-controller" }] },
      ],
      eventGridNamespaces: [
        {
          name: NAMESPACE,
          roleAssignments: [
            { principal: "controller", role: "EventGrid Data Receiver" },
            { principal: WORKLOAD, role: "EventGrid Data Contributor" },
          ],
        },
      ],
    },
  });
  secrets = new SecretClient(emulator.vaultUrl(VAULT), secretCredential(emulator, CONTROLLER), clientOptions(emulator));
});

afterAll(async () => {
  await emulator?.close();
});

/** A fresh topic of the namespace (so each test sees only its own events) with one queue subscription. */
function newTopic(subscription: Partial<QueueSubscriptionConfig> = {}): { topic: string; subscription: string } {
  const topic = `kv-topic-${++topicCount}`;
  emulator.events.addNamespaceTopic(NAMESPACE, { name: topic, vaults: [VAULT], subscriptions: [{ name: "controller", receiveLockDurationInSeconds: 300, ...subscription }] });
  return { topic, subscription: "controller" };
}

function receiver(credential: TokenCredential | AzureKeyCredential, where: { topic: string; subscription: string }): EventGridReceiverClient {
  return new EventGridReceiverClient(emulator.events.namespace(NAMESPACE)!.endpoint, credential, where.topic, where.subscription, {
    tlsOptions: { ca: emulator.caCertPem },
    retryOptions: { maxRetries: 0 },
  });
}

function controllerCredential(): TokenCredential {
  return secretCredential(emulator, CONTROLLER);
}

function queueStatus(where: { topic: string; subscription: string }) {
  return emulator.events.namespace(NAMESPACE)!.topics.find((t) => t.name === where.topic)!.subscriptions.find((s) => s.name === where.subscription)!;
}

async function statusOf(promise: Promise<unknown>): Promise<number | undefined> {
  return promise.then(
    () => 200,
    (err: unknown) => (err as { statusCode?: number }).statusCode,
  );
}

describe("receiving with locks", () => {
  it("receives a new version's CloudEvent under a lock, acknowledges it, and long-polls for the next", async () => {
    const where = newTopic();
    const client = receiver(controllerCredential(), where);
    const written = await secrets.setSecret("db-password", "v1");
    const first = await client.receiveEvents({ maxEvents: 10, maxWaitTime: 10 });
    expect(first.details).toHaveLength(1);
    const [detail] = first.details;
    expect(detail!.brokerProperties.deliveryCount).toBe(1);
    expect(detail!.event).toMatchObject({ type: "Microsoft.KeyVault.SecretNewVersionCreated", subject: "db-password", specVersion: "1.0" });
    expect(detail!.event.source).toMatch(/\/providers\/Microsoft\.KeyVault\/vaults\/kv-pull$/);
    expect(detail!.event.data).toMatchObject({ VaultName: VAULT, ObjectType: "Secret", ObjectName: "db-password", Version: written.properties.version, NBF: null, EXP: null });
    expect(queueStatus(where)).toMatchObject({ locked: 1, available: 0 });

    const acknowledged = await client.acknowledgeEvents([detail!.brokerProperties.lockToken]);
    expect(acknowledged).toEqual({ succeededLockTokens: [detail!.brokerProperties.lockToken], failedLockTokens: [] });
    expect(queueStatus(where)).toMatchObject({ locked: 0, available: 0, counters: { acknowledged: 1, delivered: 1 } });

    const waiting = client.receiveEvents({ maxEvents: 10, maxWaitTime: 60 });
    const next = await secrets.setSecret("db-password", "v2");
    const second = await waiting;
    expect(second.details.map((d) => (d.event.data as { Version: string }).Version)).toEqual([next.properties.version]);
    await client.acknowledgeEvents(second.details.map((d) => d.brokerProperties.lockToken));
    expect(emulator.counters()).toMatchObject({ [`receiveCloudEvents:${NAMESPACE}`]: 2, [`acknowledgeCloudEvents:${NAMESPACE}`]: 2 });
  });

  it("releases with a delay (60 s, 3 s scaled); the event comes back with deliveryCount 2", async () => {
    const where = newTopic();
    const client = receiver(controllerCredential(), where);
    await secrets.setSecret("released", "x");
    const [detail] = (await client.receiveEvents({ maxWaitTime: 10 })).details;
    const released = await client.releaseEvents([detail!.brokerProperties.lockToken], { releaseDelay: "60" });
    expect(released.succeededLockTokens).toEqual([detail!.brokerProperties.lockToken]);
    expect(queueStatus(where)).toMatchObject({ delayed: 1, available: 0, locked: 0 });
    const [again] = (await client.receiveEvents({ maxWaitTime: 10 })).details;
    expect(again!.event.id).toBe(detail!.event.id);
    expect(again!.brokerProperties.deliveryCount).toBe(2);
    expect(again!.brokerProperties.lockToken).not.toBe(detail!.brokerProperties.lockToken);
    await client.acknowledgeEvents([again!.brokerProperties.lockToken]);
  });

  it("redelivers when a lock expires, and the expired token is lost", async () => {
    const where = newTopic({ receiveLockDurationInSeconds: 60 });
    const client = receiver(controllerCredential(), where);
    await secrets.setSecret("forgotten", "x");
    const [detail] = (await client.receiveEvents({ maxWaitTime: 10 })).details;
    const [redelivered] = (await client.receiveEvents({ maxWaitTime: 30 })).details;
    expect(redelivered!.event.id).toBe(detail!.event.id);
    expect(redelivered!.brokerProperties.deliveryCount).toBe(2);
    const stale = await client.acknowledgeEvents([detail!.brokerProperties.lockToken]);
    expect(stale.succeededLockTokens).toEqual([]);
    expect(stale.failedLockTokens).toEqual([{ lockToken: detail!.brokerProperties.lockToken, error: expect.objectContaining({ code: "TokenLost" }) }]);
    expect((await client.acknowledgeEvents([redelivered!.brokerProperties.lockToken])).succeededLockTokens).toHaveLength(1);
    expect(queueStatus(where).counters).toMatchObject({ lockExpired: 1, acknowledged: 1, delivered: 2 });
  });

  it("renews locks", async () => {
    const where = newTopic();
    const client = receiver(controllerCredential(), where);
    await secrets.setSecret("renewed", "x");
    const [detail] = (await client.receiveEvents({ maxWaitTime: 10 })).details;
    const token = detail!.brokerProperties.lockToken;
    expect(await client.renewEventLocks([token])).toEqual({ succeededLockTokens: [token], failedLockTokens: [] });
    expect((await client.acknowledgeEvents([token])).succeededLockTokens).toEqual([token]);
    expect(queueStatus(where).counters).toMatchObject({ renewed: 1, acknowledged: 1 });
  });

  it("dead-letters at maxDeliveryCount and on reject", async () => {
    const where = newTopic({ maxDeliveryCount: 2 });
    const client = receiver(controllerCredential(), where);
    await secrets.setSecret("poison", "x");
    await secrets.setSecret("refused", "x");
    const [poison, refused] = (await client.receiveEvents({ maxEvents: 2, maxWaitTime: 10 })).details;
    expect(poison!.event.subject).toBe("poison");
    await client.rejectEvents([refused!.brokerProperties.lockToken]);
    await client.releaseEvents([poison!.brokerProperties.lockToken]);
    const [again] = (await client.receiveEvents({ maxEvents: 2, maxWaitTime: 10 })).details;
    expect(again!.event.id).toBe(poison!.event.id);
    expect(again!.brokerProperties.deliveryCount).toBe(2);
    await client.releaseEvents([again!.brokerProperties.lockToken]);
    const status = queueStatus(where);
    expect(status).toMatchObject({ available: 0, locked: 0, counters: { deadLettered: 2, rejected: 1, released: 2 } });
    expect(status.deadLetters.map((d) => [d.reason, d.deliveryCount])).toEqual([
      ["Rejected", 1],
      ["MaxDeliveryCountExceeded", 2],
    ]);
  });

  it("hands out at most maxEvents, in the order held events were released", async () => {
    const where = newTopic();
    const client = receiver(controllerCredential(), where);
    const destination = `${NAMESPACE}/${where.topic}/${where.subscription}`;
    emulator.events.hold(destination);
    for (const name of ["first", "second", "third"]) await secrets.setSecret(name, "x");
    expect(emulator.events.release(destination, "reverse")).toBe(3);
    const batch = await client.receiveEvents({ maxEvents: 2, maxWaitTime: 10 });
    expect(batch.details.map((d) => d.event.subject)).toEqual(["third", "second"]);
    const rest = await client.receiveEvents({ maxEvents: 2, maxWaitTime: 10 });
    expect(rest.details.map((d) => d.event.subject)).toEqual(["first"]);
    const invalidDelay = client.releaseEvents([rest.details[0]!.brokerProperties.lockToken], { releaseDelay: "5" });
    expect(await statusOf(invalidDelay)).toBe(400);
  });
});

describe("authentication", () => {
  it("accepts a shared access key and refuses a wrong one", async () => {
    const where = newTopic();
    await secrets.setSecret("keyed", "x");
    const keyed = receiver(new AzureKeyCredential(emulator.events.namespace(NAMESPACE)!.accessKeys[1]!), where);
    expect((await keyed.receiveEvents({ maxWaitTime: 10 })).details).toHaveLength(1);
    const wrong = receiver(new AzureKeyCredential("bm90IHRoZSBrZXk="), where);
    expect(await statusOf(wrong.receiveEvents({ maxWaitTime: 10 }))).toBe(401);
  });

  it("accepts a workload identity's token and refuses principals without a role or tokens for another audience", async () => {
    const where = newTopic();
    await secrets.setSecret("federated", "x");
    const serviceAccountToken = emulator.issueServiceAccountToken({ namespace: "kube-system", serviceAccount: "secrets-store-controller" });
    const workload = new ClientAssertionCredential(emulator.tenantId, WORKLOAD, () => Promise.resolve(serviceAccountToken), {
      authorityHost: emulator.authorityHost,
      disableInstanceDiscovery: true,
      tlsOptions: { ca: emulator.caCertPem },
    });
    const received = await receiver(workload, where).receiveEvents({ maxWaitTime: 10 });
    expect(received.details.map((d) => d.event.subject)).toEqual(["federated"]);

    expect(await statusOf(receiver(secretCredential(emulator, OUTSIDER), where).receiveEvents({ maxWaitTime: 10 }))).toBe(403);
    const vaultToken: TokenCredential = {
      getToken: (): Promise<AccessToken> => Promise.resolve({ token: emulator.issueAccessToken({ audience: "https://vault.azure.net", appId: CONTROLLER.clientId }), expiresOnTimestamp: Date.now() + 3600_000 }),
    };
    expect(await statusOf(receiver(vaultToken, where).receiveEvents({ maxWaitTime: 10 }))).toBe(401);
    expect(emulator.counters()).toMatchObject({ [`eventGridForbidden:${NAMESPACE}`]: 1 });
  });

  it("lets a sender publish CloudEvents that receivers then get (for events Key Vault would never raise)", async () => {
    const where = newTopic();
    const serviceAccountToken = emulator.issueServiceAccountToken({ namespace: "kube-system", serviceAccount: "secrets-store-controller" });
    const credential = new ClientAssertionCredential(emulator.tenantId, WORKLOAD, () => Promise.resolve(serviceAccountToken), {
      authorityHost: emulator.authorityHost,
      disableInstanceDiscovery: true,
      tlsOptions: { ca: emulator.caCertPem },
    });
    const sender = new EventGridSenderClient(emulator.events.namespace(NAMESPACE)!.endpoint, credential, where.topic, { tlsOptions: { ca: emulator.caCertPem } });
    await sender.sendEvents({
      id: randomUUID(),
      type: "Microsoft.KeyVault.SecretNewVersionCreated",
      source: "/subscriptions/x/resourceGroups/y/providers/Microsoft.KeyVault/vaults/kv-pull",
      subject: "hand-made",
      data: { Id: "https://kv-pull.vault.azure.net/secrets/hand-made/0123", "ObjectName ": "hand-made", Version: " 0123", NBF: "1559081980", EXP: "1559082102" },
    });
    const [detail] = (await receiver(controllerCredential(), where).receiveEvents({ maxWaitTime: 10 })).details;
    expect(detail!.event.subject).toBe("hand-made");
    expect(detail!.event.data).toMatchObject({ NBF: "1559081980", "ObjectName ": "hand-made" });
    // the controller only receives: publishing needs a Sender or Contributor role
    const notSender = new EventGridSenderClient(emulator.events.namespace(NAMESPACE)!.endpoint, controllerCredential(), where.topic, { tlsOptions: { ca: emulator.caCertPem }, retryOptions: { maxRetries: 0 } });
    expect(await statusOf(notSender.sendEvents({ id: randomUUID(), type: "t", source: "s", data: {} }))).toBe(403);
  });
});
