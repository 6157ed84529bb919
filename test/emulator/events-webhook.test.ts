// Push delivery of Key Vault events: writes through the real Key Vault SDK
// clients raise events that reach an HTTPS webhook in the Event Grid schema
// or as CloudEvents, after the validation handshake, read back with
// @azure/eventgrid's EventGridDeserializer; query secrets, Entra ID bearer
// tokens checked against the emulator's OpenID configuration, retries,
// dead-lettering, batching, duplicates and reordering. Proofs by counts and
// order; Event Grid's clock runs 100 times faster (retries at 100 ms, 300 ms…).
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createPublicKey, generateKeyPairSync, verify } from "node:crypto";
import { EventGridDeserializer } from "@azure/eventgrid";
import { CertificateClient } from "@azure/keyvault-certificates";
import { KeyClient } from "@azure/keyvault-keys";
import { SecretClient } from "@azure/keyvault-secrets";
import { createCertificateAuthority, issueServerCertificate } from "../../src/emulator/crypto/certificate-authority.ts";
import { createCertificate, EKU_SERVER_AUTH } from "../../src/emulator/crypto/x509.ts";
import { encodePem } from "../../src/shared/crypto/pem.ts";
import { EVENT_GRID_APP_ID, SECURE_WEBHOOK_ROLE, startEmulator, type Emulator, type KeyVaultEvent } from "../../src/emulator/index.ts";
import { APP_OFFICER, clientOptions, eventually, secretCredential } from "./helpers.ts";
import { WebhookReceiver, wellBehaved, type ReceivedRequest } from "./webhook-receiver.ts";

const VAULT = "kv-events";
const WEBHOOK_APP_URI = "api://secrets-store-webhook";
const deserializer = new EventGridDeserializer();

let emulator: Emulator;
let receiver: WebhookReceiver;
let secrets: SecretClient;

beforeAll(async () => {
  emulator = await startEmulator({
    eventTimeScale: 0.01,
    seed: {
      vaults: [{ name: VAULT, secrets: [{ name: "seeded", value: "before any subscription" }] }, { name: "kv-quiet" }],
      applications: [{ clientId: APP_OFFICER.clientId, clientSecret: APP_OFFICER.secret, roleAssignments: [{ vault: "*", role: "Key Vault Administrator" }] }],
    },
  });
  receiver = await WebhookReceiver.start(await emulator.issueServerCertificate(["127.0.0.1"]));
  secrets = new SecretClient(emulator.vaultUrl(VAULT), secretCredential(emulator, APP_OFFICER), clientOptions(emulator));
});

afterEach(() => {
  for (const subscription of emulator.events.webhookSubscriptions()) emulator.events.removeWebhookSubscription(subscription.name);
});

afterAll(async () => {
  await receiver?.close();
  await emulator?.close();
});

function bodyOf(request: ReceivedRequest): unknown {
  return JSON.parse(request.body) as unknown;
}

/** The Event Grid events of every notification on a path, in arrival order. */
async function eventGridEvents(path: string) {
  const all = [];
  for (const request of receiver.notifications(path)) all.push(...(await deserializer.deserializeEventGridEvents(request.body)));
  return all;
}

describe("Event Grid schema", () => {
  it("validates with the handshake, then delivers SecretNewVersionCreated with Key Vault's PascalCase data", async () => {
    const status = await emulator.events.addWebhookSubscription({ name: "eg-schema", endpointUrl: receiver.url("/eg", "code=s3cret"), vaults: [VAULT] });
    expect(status.provisioningState).toBe("Succeeded");
    const [handshake] = receiver.handshakes("/eg");
    expect(handshake!.headers["aeg-event-type"]).toBe("SubscriptionValidation");
    const [validation] = await deserializer.deserializeEventGridEvents(handshake!.body);
    expect(validation!.eventType).toBe("Microsoft.EventGrid.SubscriptionValidationEvent");
    expect(handshake!.query.get("code")).toBe("s3cret");

    const written = await secrets.setSecret("db-password", "v1");
    await eventually(() => expect(receiver.notifications("/eg")).toHaveLength(1));
    const [delivery] = receiver.notifications("/eg");
    expect(delivery!.query.get("code")).toBe("s3cret");
    expect(delivery!.headers).toMatchObject({ "aeg-event-type": "Notification", "aeg-subscription-name": "EG-SCHEMA", "aeg-delivery-count": "0" });
    expect(String(delivery!.headers["content-type"])).toMatch(/^application\/json/);
    expect(Array.isArray(bodyOf(delivery!))).toBe(true);

    const [event] = await deserializer.deserializeEventGridEvents(delivery!.body);
    expect(event).toMatchObject({
      eventType: "Microsoft.KeyVault.SecretNewVersionCreated",
      subject: "db-password",
      topic: `/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/keyvault-emulator/providers/Microsoft.KeyVault/vaults/${VAULT}`,
      dataVersion: "1",
    });
    expect(event!.data).toEqual({
      Id: `https://${VAULT}.vault.azure.net/secrets/db-password/${written.properties.version}`,
      VaultName: VAULT,
      ObjectType: "Secret",
      ObjectName: "db-password",
      Version: written.properties.version,
      NBF: null,
      EXP: null,
    });
    // the seeded version predates the subscription: no event for it
    expect((await eventGridEvents("/eg")).map((e) => e.subject)).toEqual(["db-password"]);
    expect(emulator.events.webhookSubscription("eg-schema")!.counters).toMatchObject({ eventsDelivered: 1, deliveryAttempts: 1, deliveriesSucceeded: 1 });
  });

  it("announces keys, and a certificate's certificate, key and secret, each with the same version", async () => {
    await emulator.events.addWebhookSubscription({ name: "eg-objects", endpointUrl: receiver.url("/objects"), vaults: [VAULT] });
    const credential = secretCredential(emulator, APP_OFFICER);
    const key = await new KeyClient(emulator.vaultUrl(VAULT), credential, clientOptions(emulator)).createRsaKey("signing", { expiresOn: new Date("2031-01-01T00:00:00Z") });
    const certificates = new CertificateClient(emulator.vaultUrl(VAULT), credential, clientOptions(emulator));
    const poller = await certificates.beginCreateCertificate("web", { issuerName: "Self", subject: "CN=web.example.com" }, { intervalInMs: 10 });
    const certificate = await poller.pollUntilDone();

    await eventually(() => expect(receiver.notifications("/objects")).toHaveLength(4));
    const events = await eventGridEvents("/objects");
    const keyEvent = events.find((e) => e.eventType === "Microsoft.KeyVault.KeyNewVersionCreated" && e.subject === "signing")!;
    expect(keyEvent.data).toMatchObject({ ObjectType: "Key", Version: key.properties.version, EXP: Date.parse("2031-01-01T00:00:00Z") / 1000 });
    const version = certificate.properties.version!;
    const forCertificate = events.filter((e) => e.subject === "web").map((e) => [e.eventType, (e.data as { Version: string }).Version, (e.data as { Id: string }).Id]);
    expect(forCertificate.sort()).toEqual([
      ["Microsoft.KeyVault.CertificateNewVersionCreated", version, `https://${VAULT}.vault.azure.net/certificates/web/${version}`],
      ["Microsoft.KeyVault.KeyNewVersionCreated", version, `https://${VAULT}.vault.azure.net/keys/web/${version}`],
      ["Microsoft.KeyVault.SecretNewVersionCreated", version, `https://${VAULT}.vault.azure.net/secrets/web/${version}`],
    ]);
    const cert = events.find((e) => e.eventType === "Microsoft.KeyVault.CertificateNewVersionCreated")!;
    expect(cert.data).toMatchObject({ NBF: certificate.properties.notBefore!.getTime() / 1000, EXP: certificate.properties.expiresOn!.getTime() / 1000 });
  });

  it("filters by vault and event type", async () => {
    await emulator.events.addWebhookSubscription({ name: "eg-filtered", endpointUrl: receiver.url("/filtered"), vaults: ["kv-quiet"], includedEventTypes: ["Microsoft.KeyVault.SecretNearExpiry"] });
    await secrets.setSecret("elsewhere", "x");
    await emulator.setSecret("kv-quiet", "quiet", "y");
    emulator.events.raise({ type: "SecretNearExpiry", vault: "kv-quiet", name: "quiet" });
    await eventually(() => expect(receiver.notifications("/filtered")).toHaveLength(1));
    expect((await eventGridEvents("/filtered")).map((e) => e.eventType)).toEqual(["Microsoft.KeyVault.SecretNearExpiry"]);
    expect(emulator.events.webhookSubscription("eg-filtered")!.counters.eventsMatched).toBe(1);
  });

  it("validates through the validationUrl when the endpoint answers without the code", async () => {
    receiver.on("/manual", (request) => (request.headers["aeg-event-type"] === "SubscriptionValidation" ? { status: 200, body: "{}" } : undefined));
    const status = await emulator.events.addWebhookSubscription({ name: "eg-manual", endpointUrl: receiver.url("/manual") });
    expect(status.provisioningState).toBe("AwaitingManualAction");
    const [validation] = await deserializer.deserializeEventGridEvents(receiver.handshakes("/manual")[0]!.body);
    const validationUrl = (validation!.data as { validationUrl: string }).validationUrl;
    expect(new URL(validationUrl).hostname).toMatch(/\.eventgrid\.azure\.net$/);
    const answer = await fetchWithCa(validationUrl);
    expect(answer).toBe(200);
    expect(emulator.events.webhookSubscription("eg-manual")!.provisioningState).toBe("Succeeded");
  });
});

describe("CloudEvents 1.0 schema", () => {
  it("validates with OPTIONS and WebHook-Allowed-Origin, then delivers application/cloudevents+json", async () => {
    const status = await emulator.events.addWebhookSubscription({ name: "ce-single", endpointUrl: receiver.url("/ce"), eventDeliverySchema: "CloudEventSchemaV1_0", vaults: [VAULT] });
    expect(status.provisioningState).toBe("Succeeded");
    const [handshake] = receiver.handshakes("/ce");
    expect(handshake!.method).toBe("OPTIONS");
    expect(handshake!.headers["webhook-request-origin"]).toBe("eventgrid.azure.net");

    const written = await secrets.setSecret("api-key", "ce");
    await eventually(() => expect(receiver.notifications("/ce")).toHaveLength(1));
    const [delivery] = receiver.notifications("/ce");
    expect(String(delivery!.headers["content-type"])).toMatch(/^application\/cloudevents\+json/);
    expect(Array.isArray(bodyOf(delivery!))).toBe(false);
    const [event] = await deserializer.deserializeCloudEvents(delivery!.body);
    expect(event).toMatchObject({ type: "Microsoft.KeyVault.SecretNewVersionCreated", subject: "api-key", specversion: "1.0" });
    expect(event!.source).toMatch(/\/providers\/Microsoft\.KeyVault\/vaults\/kv-events$/);
    expect(event!.data).toMatchObject({ ObjectName: "api-key", Version: written.properties.version, VaultName: VAULT });
  });

  it("leaves a subscription whose endpoint fails the handshake Failed, and delivers nothing to it", async () => {
    receiver.on("/no-origin", (request) => (request.method === "OPTIONS" ? { status: 200 } : undefined));
    const first = await emulator.events.addWebhookSubscription({
      name: "ce-refused",
      endpointUrl: receiver.url("/no-origin"),
      eventDeliverySchema: "CloudEventSchemaV1_0",
      maxDeliveryAttempts: 2,
    });
    expect(first.provisioningState).toBe("Creating");
    expect(first.lastValidationError).toContain("WebHook-Allowed-Origin");
    await eventually(() => expect(emulator.events.webhookSubscription("ce-refused")!.provisioningState).toBe("Failed"));
    await secrets.setSecret("unseen", "x");
    await eventually(() => expect(emulator.events.webhookSubscription("ce-refused")!.counters.eventsDropped).toBe(1));
    expect(receiver.handshakes("/no-origin")).toHaveLength(2);
    expect(receiver.notifications("/no-origin")).toHaveLength(0);
    expect(emulator.events.webhookSubscription("ce-refused")!.counters).toMatchObject({ deliveryAttempts: 0, eventsDelivered: 0 });

    // the receiver fixed: validating again lets events through
    receiver.on("/no-origin", (request) => wellBehaved(request));
    expect((await emulator.events.revalidate("ce-refused")).provisioningState).toBe("Succeeded");
    await secrets.setSecret("seen", "x");
    await eventually(() => expect(receiver.notifications("/no-origin")).toHaveLength(1));
  });

  it("sends batches as application/cloudevents-batch+json, at most maxEventsPerBatch per request", async () => {
    await emulator.events.addWebhookSubscription({ name: "ce-batch", endpointUrl: receiver.url("/ce-batch"), eventDeliverySchema: "CloudEventSchemaV1_0", maxEventsPerBatch: 3, vaults: [VAULT] });
    emulator.events.hold("ce-batch");
    for (let i = 1; i <= 5; i++) await secrets.setSecret(`batched-${i}`, String(i));
    expect(emulator.events.webhookSubscription("ce-batch")!.held).toBe(5);
    expect(emulator.events.release("ce-batch")).toBe(5);
    await eventually(() => expect(emulator.events.webhookSubscription("ce-batch")!.counters.eventsDelivered).toBe(5));
    const batches = receiver.notifications("/ce-batch");
    expect(batches.map((b) => String(b.headers["content-type"]).split(";")[0])).toEqual(["application/cloudevents-batch+json", "application/cloudevents-batch+json"]);
    const subjects = [];
    for (const batch of batches) subjects.push((await deserializer.deserializeCloudEvents(batch.body)).map((e) => e.subject));
    expect(subjects).toEqual([
      ["batched-1", "batched-2", "batched-3"],
      ["batched-4", "batched-5"],
    ]);
  });
});

describe("authentication", () => {
  it("sends an Entra ID token for the webhook app that validates against the emulator's OpenID configuration", async () => {
    await emulator.events.addWebhookSubscription({ name: "eg-entra", endpointUrl: receiver.url("/entra"), azureActiveDirectoryApplicationIdOrUri: WEBHOOK_APP_URI, vaults: [VAULT] });
    await secrets.setSecret("guarded", "x");
    await eventually(() => expect(receiver.notifications("/entra")).toHaveLength(1));
    const keys = await signingKeys();
    for (const request of [receiver.handshakes("/entra")[0]!, receiver.notifications("/entra")[0]!]) {
      const claims = verifyJwt(String(request.headers.authorization).replace(/^Bearer /, ""), keys);
      expect(claims).toMatchObject({ aud: WEBHOOK_APP_URI, iss: `https://sts.windows.net/${emulator.tenantId}/`, tid: emulator.tenantId, appid: EVENT_GRID_APP_ID, roles: [SECURE_WEBHOOK_ROLE] });
      expect(claims.exp as number).toBeGreaterThan(Date.now() / 1000);
    }
  });

  it("can send tokens a receiver must refuse: no role, expired, signed by another key", async () => {
    const keys = await signingKeys();
    await emulator.events.addWebhookSubscription({ name: "eg-no-role", endpointUrl: receiver.url("/no-role"), azureActiveDirectoryApplicationIdOrUri: WEBHOOK_APP_URI, tokenRoles: [] });
    await emulator.events.addWebhookSubscription({ name: "eg-expired", endpointUrl: receiver.url("/expired"), azureActiveDirectoryApplicationIdOrUri: WEBHOOK_APP_URI, tokenLifetimeSeconds: -600 });
    await emulator.events.addWebhookSubscription({ name: "eg-forged", endpointUrl: receiver.url("/forged"), azureActiveDirectoryApplicationIdOrUri: WEBHOOK_APP_URI, tokenSignedByForeignKey: true });
    const token = (path: string) => String(receiver.handshakes(path)[0]!.headers.authorization).replace(/^Bearer /, "");
    expect(verifyJwt(token("/no-role"), keys).roles).toBeUndefined();
    expect(verifyJwt(token("/expired"), keys).exp as number).toBeLessThan(Date.now() / 1000);
    expect(() => verifyJwt(token("/forged"), keys)).toThrow(/signature/);
  });

  it("trusts a given CA bundle for the endpoint, and refuses self-signed certificates", async () => {
    const testCa = await createCertificateAuthority("Receiver Test CA");
    const foreign = await WebhookReceiver.start(await issueServerCertificate(testCa, ["127.0.0.1"]));
    const selfSignedTls = selfSignedCertificate();
    const selfSigned = await WebhookReceiver.start(selfSignedTls);
    try {
      const untrusted = await emulator.events.addWebhookSubscription({ name: "tls-untrusted", endpointUrl: foreign.url("/tls"), maxDeliveryAttempts: 1 });
      expect(untrusted).toMatchObject({ provisioningState: "Failed" });
      const trusted = await emulator.events.addWebhookSubscription({ name: "tls-trusted", endpointUrl: foreign.url("/tls"), caCertificates: testCa.pem });
      expect(trusted.provisioningState).toBe("Succeeded");
      const self = await emulator.events.addWebhookSubscription({ name: "tls-self", endpointUrl: selfSigned.url("/tls"), caCertificates: selfSignedTls.certificatePem, maxDeliveryAttempts: 1 });
      expect(self.provisioningState).toBe("Failed");
      expect(self.lastValidationError).toContain("self-signed");
      expect(selfSigned.requests).toHaveLength(0);
    } finally {
      await foreign.close();
      await selfSigned.close();
    }
  });
});

describe("delivery rules", () => {
  it("retries a 500 on the schedule and succeeds, with the same event and a rising delivery count", async () => {
    receiver.on("/flaky", (_request, sameKind) => (_request.headers["aeg-event-type"] === "Notification" && sameKind < 2 ? { status: 500 } : undefined));
    await emulator.events.addWebhookSubscription({ name: "eg-flaky", endpointUrl: receiver.url("/flaky"), vaults: [VAULT] });
    await secrets.setSecret("retried", "x");
    await eventually(() => expect(emulator.events.webhookSubscription("eg-flaky")!.counters.eventsDelivered).toBe(1));
    const attempts = receiver.notifications("/flaky");
    expect(attempts.map((a) => a.headers["aeg-delivery-count"])).toEqual(["0", "1", "2"]);
    expect(new Set(attempts.map((a) => (bodyOf(a) as Array<{ id: string }>)[0]!.id)).size).toBe(1);
    expect(emulator.events.webhookSubscription("eg-flaky")!.counters).toMatchObject({ deliveryAttempts: 3, deliveriesFailed: 2, deliveriesSucceeded: 1, eventsDeadLettered: 0 });
  });

  it("does not retry 400, 401 or 413 and dead-letters at once", async () => {
    for (const status of [400, 401, 413]) {
      const path = `/refuse-${status}`;
      receiver.on(path, (request) => (request.headers["aeg-event-type"] === "Notification" ? { status } : undefined));
      await emulator.events.addWebhookSubscription({ name: `eg-refuse-${status}`, endpointUrl: receiver.url(path), vaults: [VAULT] });
    }
    await secrets.setSecret("refused", "x");
    for (const status of [400, 401, 413]) {
      await eventually(() => expect(emulator.events.webhookSubscription(`eg-refuse-${status}`)!.counters.eventsDeadLettered).toBe(1));
      const subscription = emulator.events.webhookSubscription(`eg-refuse-${status}`)!;
      expect(subscription).toMatchObject({ retrying: 0, counters: { deliveryAttempts: 1 } });
      expect(subscription.deadLetters).toEqual([expect.objectContaining({ reason: "NonRetriableHttpStatus", lastStatus: status, attempts: 1 })]);
      expect(receiver.notifications(`/refuse-${status}`)).toHaveLength(1);
    }
  });

  it("dead-letters after maxDeliveryAttempts failures (503, then dropped connections)", async () => {
    receiver.on("/down", (request, sameKind) => (request.headers["aeg-event-type"] !== "Notification" ? undefined : sameKind === 0 ? { status: 503 } : { status: 0, drop: true }));
    await emulator.events.addWebhookSubscription({ name: "eg-down", endpointUrl: receiver.url("/down"), maxDeliveryAttempts: 3, vaults: [VAULT] });
    await secrets.setSecret("undeliverable", "x");
    await eventually(() => expect(emulator.events.webhookSubscription("eg-down")!.counters.eventsDeadLettered).toBe(1));
    expect(receiver.notifications("/down")).toHaveLength(3);
    const [deadLetter] = emulator.events.webhookSubscription("eg-down")!.deadLetters;
    expect(deadLetter).toMatchObject({ reason: "MaxDeliveryAttemptsExceeded", attempts: 3 });
    expect(deadLetter!.lastStatus).toBeUndefined();
    expect(emulator.events.webhookSubscription("eg-down")!.counters).toMatchObject({ deliveryAttempts: 3, deliveriesFailed: 3, eventsDelivered: 0 });
  });

  it("batches the Event Grid schema up to maxEventsPerBatch", async () => {
    await emulator.events.addWebhookSubscription({ name: "eg-batch", endpointUrl: receiver.url("/eg-batch"), maxEventsPerBatch: 2, vaults: [VAULT] });
    emulator.events.hold("eg-batch");
    for (let i = 1; i <= 3; i++) await secrets.setSecret(`eg-batched-${i}`, String(i));
    emulator.events.release("eg-batch");
    await eventually(() => expect(emulator.events.webhookSubscription("eg-batch")!.counters.eventsDelivered).toBe(3));
    expect(receiver.notifications("/eg-batch").map((r) => (bodyOf(r) as unknown[]).length)).toEqual([2, 1]);
  });
});

describe("test knobs", () => {
  it("delivers held events in reverse order, duplicates on demand, and raises expiry and access-policy events through the admin API", async () => {
    await emulator.events.addWebhookSubscription({ name: "eg-knobs", endpointUrl: receiver.url("/knobs"), vaults: [VAULT] });
    emulator.events.hold("eg-knobs");
    const v1 = await secrets.setSecret("rotating", "one");
    const v2 = await secrets.setSecret("rotating", "two");
    emulator.events.release("eg-knobs", "reverse");
    await eventually(() => expect(receiver.notifications("/knobs")).toHaveLength(2));
    const versions = (await eventGridEvents("/knobs")).map((e) => (e.data as { Version: string }).Version);
    expect(versions).toEqual([v2.properties.version, v1.properties.version]);

    const logged = emulator.events.published().filter((e: KeyVaultEvent) => e.subject === "rotating");
    expect(emulator.events.redeliver(logged[1]!.id, "eg-knobs")).toBe(1);
    await eventually(() => expect(receiver.notifications("/knobs")).toHaveLength(3));
    const ids = (await eventGridEvents("/knobs")).map((e) => e.id);
    expect(ids[2]).toBe(logged[1]!.id);

    await admin("events/raise", { type: "SecretNearExpiry", vault: VAULT, name: "rotating" });
    await admin("events/raise", { type: "Microsoft.KeyVault.VaultAccessPolicyChanged", vault: VAULT });
    await eventually(() => expect(receiver.notifications("/knobs")).toHaveLength(5));
    const raised = (await eventGridEvents("/knobs")).slice(3);
    expect(raised.map((e) => e.eventType)).toEqual(["Microsoft.KeyVault.SecretNearExpiry", "Microsoft.KeyVault.VaultAccessPolicyChanged"]);
    expect(raised[0]!.data).toMatchObject({ ObjectName: "rotating", Version: v2.properties.version });
    expect(raised[1]!.data).toMatchObject({ VaultName: VAULT, ObjectType: "Vault" });
  });

  it("is configured through the admin API too, which hides the endpoint's query", async () => {
    const [created] = (await admin("events/webhook-subscriptions", { name: "eg-admin", endpointUrl: receiver.url("/admin", "code=hidden") })) as Array<Record<string, unknown>>;
    expect(created).toMatchObject({ name: "eg-admin", provisioningState: "Succeeded", endpointBaseUrl: receiver.url("/admin") });
    expect(JSON.stringify(await admin("events/webhook-subscriptions", undefined, "GET"))).not.toContain("hidden");
    const refused = await fetch(`${adminBase()}events/webhook-subscriptions`, { method: "POST", body: JSON.stringify({ name: "eg-http", endpointUrl: "http://127.0.0.1:1/x" }) });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain("https");
  });
});

function adminBase(): string {
  return `${emulator.imdsEndpoint}/_emulator/`;
}

async function admin(path: string, body: unknown, method = "POST"): Promise<unknown> {
  const response = await fetch(`${adminBase()}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  expect(response.status).toBe(200);
  return response.json();
}

async function fetchWithCa(url: string): Promise<number> {
  const { request } = await import("node:https");
  return new Promise((resolve, reject) => {
    request(url, { ca: emulator.caCertPem }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on("error", reject)
      .end();
  });
}

/** The emulated Entra ID's signing keys, found the way a receiver finds them: OpenID configuration -> jwks_uri. */
async function signingKeys(): Promise<Array<Record<string, string>>> {
  const getJson = async (url: string): Promise<Record<string, unknown>> => {
    const { request } = await import("node:https");
    return new Promise((resolve, reject) => {
      request(url, { ca: emulator.caCertPem }, (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve(JSON.parse(text) as Record<string, unknown>));
      })
        .on("error", reject)
        .end();
    });
  };
  const configuration = await getJson(`${emulator.authorityHost}/${emulator.tenantId}/.well-known/openid-configuration`);
  expect(configuration.issuer).toBe(`https://sts.windows.net/${emulator.tenantId}/`);
  return ((await getJson(String(configuration.jwks_uri))).keys as Array<Record<string, string>>);
}

function verifyJwt(token: string, keys: Array<Record<string, string>>): Record<string, unknown> {
  const [header, payload, signature] = token.split(".");
  const { kid } = JSON.parse(Buffer.from(header!, "base64url").toString()) as { kid: string };
  const jwk = keys.find((k) => k.kid === kid);
  if (!jwk) throw new Error("no signing key with that kid");
  const key = createPublicKey({ key: { kty: jwk.kty!, n: jwk.n!, e: jwk.e! }, format: "jwk" });
  if (!verify("sha256", Buffer.from(`${header}.${payload}`), key, Buffer.from(signature!, "base64url"))) throw new Error("bad signature");
  return JSON.parse(Buffer.from(payload!, "base64url").toString()) as Record<string, unknown>;
}

function selfSignedCertificate(): { keyPem: string; certificatePem: string } {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const der = createCertificate({ subject: "CN=self-signed receiver", ipAddresses: ["127.0.0.1"], publicKey: privateKey, selfSigningKey: privateKey, extendedKeyUsage: [EKU_SERVER_AUTH] });
  return { keyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string, certificatePem: encodePem("CERTIFICATE", der) };
}
