// The events Key Vault publishes to its Event Grid system topic: one per new
// version of a secret, key or certificate, NearExpiry / Expired per object,
// and VaultAccessPolicyChanged per vault. `data` keeps Key Vault's PascalCase
// keys (Id, VaultName, ObjectType, ObjectName, Version, NBF, EXP); `subject`
// is the object name and the topic (CloudEvents: source) the vault's resource
// id. Envelopes for the two delivery schemas are made in envelopes.ts.
import { randomUUID } from "node:crypto";
import type { ObjectKind, ObjectAttributes, VaultRecord } from "../store/key-vault-store.ts";

export const DEFAULT_SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000";
export const DEFAULT_RESOURCE_GROUP = "keyvault-emulator";

export type ObjectTypeName = "Secret" | "Key" | "Certificate";

export const OBJECT_TYPE: Record<ObjectKind, ObjectTypeName> = { secrets: "Secret", keys: "Key", certificates: "Certificate" };
const KIND_OF: Record<ObjectTypeName, ObjectKind> = { Secret: "secrets", Key: "keys", Certificate: "certificates" };

export type ObjectEventKind = "NewVersionCreated" | "NearExpiry" | "Expired";
const OBJECT_EVENT_KINDS: readonly ObjectEventKind[] = ["NewVersionCreated", "NearExpiry", "Expired"];
export const VAULT_ACCESS_POLICY_CHANGED = "Microsoft.KeyVault.VaultAccessPolicyChanged";

/** Every Key Vault event type, e.g. Microsoft.KeyVault.SecretNewVersionCreated. */
export const KEY_VAULT_EVENT_TYPES: readonly string[] = [
  ...(["Certificate", "Key", "Secret"] as const).flatMap((type) => OBJECT_EVENT_KINDS.map((kind) => `Microsoft.KeyVault.${type}${kind}`)),
  VAULT_ACCESS_POLICY_CHANGED,
];

/** One event as the system topic holds it, before it is put in an envelope. */
export interface KeyVaultEvent {
  /** Unique per event; a redelivery repeats it. */
  id: string;
  type: string;
  /** The object name (the vault name for VaultAccessPolicyChanged). */
  subject: string;
  /** The vault's resource id. */
  topic: string;
  /** ISO-8601 time the event was raised. */
  time: string;
  /** The vault (lower case), for routing. */
  vault: string;
  data: Record<string, unknown>;
  dataVersion: string;
}

/** /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.KeyVault/vaults/<name> */
export function vaultResourceId(vault: VaultRecord): string {
  return `/subscriptions/${vault.subscriptionId ?? DEFAULT_SUBSCRIPTION_ID}/resourceGroups/${vault.resourceGroup ?? DEFAULT_RESOURCE_GROUP}/providers/Microsoft.KeyVault/vaults/${vault.name}`;
}

/**
 * The versioned object URL Key Vault puts in `Id`. It names the public host
 * without a port, as Key Vault does; readers take vault, object and version
 * from it (or from VaultName/ObjectName/Version), never connect to it.
 */
export function objectUrl(vault: VaultRecord, kind: ObjectKind, name: string, version: string, dnsSuffix: string): string {
  return `https://${vault.name}.${dnsSuffix}/${kind}/${name}/${version}`;
}

/** An object event (new version, near expiry, expired) for one version of an object. */
export function objectEvent(
  kind: ObjectEventKind,
  vault: VaultRecord,
  objectKind: ObjectKind,
  name: string,
  version: { version: string; attributes: Pick<ObjectAttributes, "nbf" | "exp"> },
  dnsSuffix: string,
): KeyVaultEvent {
  const objectType = OBJECT_TYPE[objectKind];
  return {
    id: randomUUID(),
    type: `Microsoft.KeyVault.${objectType}${kind}`,
    subject: name,
    topic: vaultResourceId(vault),
    time: new Date().toISOString(),
    vault: vault.name,
    data: {
      Id: objectUrl(vault, objectKind, name, version.version, dnsSuffix),
      VaultName: vault.name,
      ObjectType: objectType,
      ObjectName: name,
      Version: version.version,
      NBF: version.attributes.nbf ?? null,
      EXP: version.attributes.exp ?? null,
    },
    dataVersion: "1",
  };
}

/**
 * VaultAccessPolicyChanged. Key Vault documents no data for it; the emulator
 * fills the same keys with the vault itself (ObjectType "Vault", no version).
 */
export function vaultAccessPolicyChanged(vault: VaultRecord, dnsSuffix: string): KeyVaultEvent {
  return {
    id: randomUUID(),
    type: VAULT_ACCESS_POLICY_CHANGED,
    subject: vault.name,
    topic: vaultResourceId(vault),
    time: new Date().toISOString(),
    vault: vault.name,
    data: { Id: `https://${vault.name}.${dnsSuffix}/`, VaultName: vault.name, ObjectType: "Vault", ObjectName: vault.name, Version: "", NBF: null, EXP: null },
    dataVersion: "1",
  };
}

/** Parses "SecretNearExpiry" or "Microsoft.KeyVault.SecretNearExpiry". */
export function parseEventType(type: string): { objectKind: ObjectKind; kind: ObjectEventKind } | "VaultAccessPolicyChanged" | undefined {
  const short = type.replace(/^Microsoft\.KeyVault\./i, "");
  if (short.toLowerCase() === "vaultaccesspolicychanged") return "VaultAccessPolicyChanged";
  const match = /^(Secret|Key|Certificate)(NewVersionCreated|NearExpiry|Expired)$/i.exec(short);
  if (!match) return undefined;
  const objectType = (match[1]!.charAt(0).toUpperCase() + match[1]!.slice(1).toLowerCase()) as ObjectTypeName;
  const kind = OBJECT_EVENT_KINDS.find((k) => k.toLowerCase() === match[2]!.toLowerCase())!;
  return { objectKind: KIND_OF[objectType], kind };
}
