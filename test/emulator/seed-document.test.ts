// Seed validation names the offending path (pure unit test).
import { describe, expect, it } from "vitest";
import { SeedError, validateSeedDocument } from "../../src/emulator/seed-document.ts";

describe("validateSeedDocument", () => {
  it("accepts the documented shapes", () => {
    expect(() =>
      validateSeedDocument({
        tenantId: "t",
        vaults: [
          {
            name: "kv1",
            secrets: [{ name: "a", value: "1" }, { name: "b", versions: [{ value: "1", enabled: false }, { value: "2" }] }],
            keys: [{ name: "k", kty: "EC", curve: "P-256" }],
            certificates: [{ name: "c", issuer: "chain" }],
          },
        ],
        apps: [{ clientId: "id", clientSecret: "s", roleAssignments: [{ vault: "kv1", role: "Key Vault Secrets User" }] }],
        managedIdentities: [{ clientId: "mi", systemAssigned: true }],
        roleAssignments: [{ principal: "id", vault: "*", permissions: ["secrets"] }],
        webhookSubscriptions: [{ name: "controller", endpointUrl: "https://webhook.example/events?code=x", eventDeliverySchema: "CloudEventSchemaV1_0", maxEventsPerBatch: 10 }],
        eventGridNamespaces: [
          {
            name: "ns1",
            region: "westeurope",
            roleAssignments: [{ principal: "id", role: "EventGrid Data Receiver" }],
            topics: [{ name: "kv-events", vaults: ["kv1"], subscriptions: [{ name: "controller", receiveLockDurationInSeconds: 120, maxDeliveryCount: 5 }] }],
          },
        ],
      }),
    ).not.toThrow();
  });

  it.each([
    [{ vaults: [{ secrets: [] }] }, "seed.vaults[0].name is required"],
    [{ vaults: [{ name: "v", secrets: [{ name: "s" }] }] }, "seed.vaults[0].secrets[0].value is required"],
    [{ vaults: [{ name: "v", certificates: [{ name: "c", issuer: "ca" }] }] }, 'seed.vaults[0].certificates[0].issuer must be "self" or "chain"'],
    [{ applications: [{ clientId: "x", roleAssignments: [{ vault: "v" }] }] }, "seed.applications[0].roleAssignments[0] needs a role"],
    [{ vault: [] }, "seed.vault is not a known field"],
    [{ webhookSubscriptions: [{ name: "hook-1", endpointUrl: "http://webhook.example/" }] }, "seed.webhookSubscriptions[0].endpointUrl must be an https URL"],
    [{ webhookSubscriptions: [{ name: "hook-1", endpointUrl: "https://w/", includedEventTypes: ["Microsoft.KeyVault.SecretChanged"] }] }, 'unknown event type "Microsoft.KeyVault.SecretChanged"'],
    [
      { eventGridNamespaces: [{ name: "ns1", topics: [{ name: "topic-1", subscriptions: [{ name: "sub-1", maxDeliveryCount: 11 }] }] }] },
      "seed.eventGridNamespaces[0].topics[0].subscriptions[0].maxDeliveryCount must be an integer from 1 to 10",
    ],
    [{ eventGridNamespaces: [{ name: "ns1", roleAssignments: [{ principal: "p", role: "Owner" }] }] }, "seed.eventGridNamespaces[0].roleAssignments[0].role must be one of"],
  ])("rejects %j", (doc, message) => {
    expect(() => validateSeedDocument(doc)).toThrow(SeedError);
    expect(() => validateSeedDocument(doc)).toThrow(message);
  });
});
