import { describe, expect, it } from "vitest";
import { epochSeconds, parseEnvelope, splitEventType, validationCodeOf } from "../../../src/controller/events/key-vault-event.ts";

const VERSION = "0123456789abcdef0123456789abcdef";

const eventGrid = (data: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  id: "e-1",
  topic: "/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-one",
  subject: "db-password",
  eventType: "Microsoft.KeyVault.SecretNewVersionCreated",
  eventTime: "2026-03-01T10:00:00.000Z",
  dataVersion: "1",
  metadataVersion: "1",
  data,
  ...extra,
});

describe("Key Vault events", () => {
  it("reads an Event Grid schema event with Key Vault's PascalCase data", () => {
    const parsed = parseEnvelope(eventGrid({ Id: `https://kv-one.vault.azure.net/secrets/db-password/${VERSION}`, VaultName: "KV-One", ObjectType: "Secret", ObjectName: "db-password", Version: VERSION, NBF: null, EXP: 1780000000 }));
    expect(parsed).toEqual({
      event: { id: "e-1", kind: "NewVersionCreated", type: "Microsoft.KeyVault.SecretNewVersionCreated", vault: "kv-one", objectType: "Secret", objectName: "db-password", version: VERSION, time: Date.parse("2026-03-01T10:00:00.000Z"), expires: 1780000000 },
    });
  });

  it("reads a CloudEvent with camelCase data, string times with stray spaces, and a Date-less time", () => {
    const parsed = parseEnvelope({
      id: "ce-1",
      source: "/subscriptions/x/providers/Microsoft.KeyVault/vaults/kv-one",
      type: "Microsoft.KeyVault.CertificateNearExpiry",
      time: "2026-03-01T10:00:00Z",
      specversion: "1.0",
      data: { vaultName: "kv-one", objectType: "certificate", objectName: "web", version: VERSION, nbf: " 1559081980 ", exp: "1559082580" },
    });
    expect(parsed).toMatchObject({ event: { kind: "NearExpiry", objectType: "Certificate", objectName: "web", notBefore: 1559081980, expires: 1559082580 } });
  });

  it("reads VaultAccessPolicyChanged without an object", () => {
    const parsed = parseEnvelope(eventGrid({ VaultName: "kv-one", ObjectType: "Vault" }, { eventType: "Microsoft.KeyVault.VaultAccessPolicyChanged" }));
    expect(parsed).toMatchObject({ event: { kind: "VaultAccessPolicyChanged", vault: "kv-one" } });
    expect((parsed as { event: { objectName?: string } }).event.objectName).toBeUndefined();
  });

  it("ignores other event types and refuses malformed Key Vault events with a reason", () => {
    expect(parseEnvelope({ id: "x", eventType: "Microsoft.Storage.BlobCreated", data: {} })).toEqual({ ignored: "other", type: "Microsoft.Storage.BlobCreated" });
    const bad: Array<[unknown, RegExp]> = [
      [null, /not a JSON object/],
      [[1], /not a JSON object/],
      [eventGrid({ VaultName: "kv-one", ObjectName: "db", Version: VERSION }, { id: "" }), /no id/],
      [eventGrid({ VaultName: "kv-one", ObjectName: "db", Version: VERSION }, { id: "x".repeat(300) }), /no id/],
      [eventGrid({ VaultName: "k", ObjectName: "db", Version: VERSION }), /VaultName/],
      [eventGrid({ VaultName: "kv-one", ObjectName: "../etc", Version: VERSION }), /ObjectName/],
      [eventGrid({ VaultName: "kv-one", ObjectName: "x".repeat(128), Version: VERSION }), /ObjectName/],
      [eventGrid({ VaultName: "kv-one", ObjectName: "db", Version: "v/1" }), /Version/],
      [eventGrid({ VaultName: "kv-one", ObjectType: "Key", ObjectName: "db", Version: VERSION }), /contradicts/],
      [eventGrid("not an object" as never), /no data object/],
    ];
    for (const [envelope, problem] of bad) {
      const parsed = parseEnvelope(envelope);
      expect(parsed, JSON.stringify(envelope)?.slice(0, 80)).toMatchObject({ ignored: "malformed" });
      expect((parsed as { problem: string }).problem).toMatch(problem);
    }
  });

  it("splits every Key Vault event type, and nothing else", () => {
    expect(splitEventType("Microsoft.KeyVault.KeyExpired")).toEqual({ kind: "Expired", objectType: "Key" });
    expect(splitEventType("Microsoft.KeyVault.SecretNewVersionCreated")).toEqual({ kind: "NewVersionCreated", objectType: "Secret" });
    expect(splitEventType("Microsoft.KeyVault.SecretSomethingElse")).toBeUndefined();
    expect(splitEventType("Microsoft.KeyVaultX.SecretExpired")).toBeUndefined();
  });

  it("takes no time a Date cannot hold (an EXP of 1e300 would make every retry of the event fail)", () => {
    expect([epochSeconds(1e300), epochSeconds("-9000000000000"), epochSeconds(8.64e12)]).toEqual([undefined, undefined, 8.64e12]);
  });

  it("reads epoch seconds from numbers and numeric strings only", () => {
    expect([epochSeconds(12), epochSeconds(" 13 "), epochSeconds("1.5"), epochSeconds(null), epochSeconds(""), epochSeconds("soon"), epochSeconds(Number.NaN)]).toEqual([
      12,
      13,
      1.5,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it("finds the validation code of Event Grid's handshake", () => {
    expect(validationCodeOf({ eventType: "Microsoft.EventGrid.SubscriptionValidationEvent", data: { validationCode: "abc" } })).toBe("abc");
    expect(validationCodeOf({ eventType: "Microsoft.EventGrid.SubscriptionValidationEvent", data: { ValidationCode: "abc" } })).toBe("abc");
    expect(validationCodeOf({ eventType: "Microsoft.KeyVault.SecretNewVersionCreated", data: { validationCode: "abc" } })).toBeUndefined();
  });
});
