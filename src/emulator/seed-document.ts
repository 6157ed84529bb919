// The seed document (a JSON or YAML file, or an object passed to
// startEmulator/seed): vaults with their secrets, keys and certificates, app
// registrations, managed identities, role assignments and trusted
// service-account token issuers, and what receives the vaults' events
// (webhook subscriptions, Event Grid namespaces; see events/event-config.ts).
// Validated with messages that name the path.
import { EventConfigError, validateNamespace, validateWebhookSubscription, type NamespaceConfig, type WebhookSubscriptionConfig } from "./events/event-config.ts";
import { VERSION_LIST_ORDERS, type VersionListOrder } from "./store/key-vault-store.ts";

/** Epoch seconds or an ISO-8601 date. */
export type SeedTime = number | string;

export interface SeedDocument {
  /** Default tenant for vaults, apps and identities that name none. */
  tenantId?: string;
  vaults?: SeedVault[];
  applications?: SeedApplication[];
  /** Alias of applications. */
  apps?: SeedApplication[];
  managedIdentities?: SeedManagedIdentity[];
  roleAssignments?: SeedRoleAssignment[];
  serviceAccountIssuers?: SeedServiceAccountIssuer[];
  /** Push subscriptions on the vaults' events (applied after the vaults: seeded versions raise no events). */
  webhookSubscriptions?: WebhookSubscriptionConfig[];
  /** Event Grid namespaces whose topics receive the vaults' events for pull delivery. */
  eventGridNamespaces?: NamespaceConfig[];
}

export interface SeedVault {
  name: string;
  tenantId?: string;
  /** Keep deleted objects recoverable (default true, as Key Vault enforces). */
  softDelete?: boolean;
  recoverableDays?: number;
  /** The order version listings come in: oldest-first (default), newest-first, or version-id (sorted by id, unrelated to time). */
  versionListOrder?: VersionListOrder;
  /** Parts of the vault's resource id, the topic of its events (defaults: the zero subscription, resource group keyvault-emulator). */
  subscriptionId?: string;
  resourceGroup?: string;
  secrets?: SeedSecret[];
  keys?: SeedKey[];
  certificates?: SeedCertificate[];
}

interface SeedVersionCommon {
  enabled?: boolean;
  nbf?: SeedTime;
  exp?: SeedTime;
  tags?: Record<string, string>;
  /**
   * Backdates the version; by default seeded versions are one second apart,
   * oldest first. A given time is kept as is, so versions may share a second
   * as they do in Key Vault (a time before the previous version's becomes that time).
   */
  created?: SeedTime;
}

export interface SeedSecretVersion extends SeedVersionCommon {
  value: string;
  contentType?: string;
}

/** A secret: either one version inline (value, contentType…) or `versions`, oldest first. */
export interface SeedSecret extends Partial<SeedSecretVersion> {
  name: string;
  versions?: SeedSecretVersion[];
}

export interface SeedKeyVersion extends SeedVersionCommon {
  /** RSA (default), RSA-HSM, EC or EC-HSM; generated unless jwk or pem is given. */
  kty?: string;
  keySize?: number;
  curve?: string;
  keyOps?: string[];
  /** Private JWK to import. */
  jwk?: Record<string, unknown>;
  /** Private key PEM to import. */
  pem?: string;
}

export interface SeedKey extends SeedKeyVersion {
  name: string;
  versions?: SeedKeyVersion[];
}

export interface SeedCertificateVersion extends SeedVersionCommon {
  /** Generated certificates: subject (default CN=<name>). */
  subject?: string;
  dnsNames?: string[];
  /** "self" (self-signed, default) or "chain" (generated root -> intermediate -> leaf). */
  issuer?: "self" | "chain";
  keyType?: "RSA" | "EC";
  keySize?: number;
  curve?: string;
  validityMonths?: number;
  /** application/x-pkcs12 (default) or application/x-pem-file: the format of the coupled secret. */
  contentType?: string;
  /** Import instead of generating: PEM with private key and certificate(s)… */
  pem?: string;
  /** …or base64 PFX (with password if it has one). */
  pfx?: string;
  password?: string;
}

export interface SeedCertificate extends SeedCertificateVersion {
  name: string;
  versions?: SeedCertificateVersion[];
}

/** A role assignment of the enclosing principal. */
export interface SeedRoleGrant {
  /** Vault name or "*". */
  vault: string;
  /** Built-in role, e.g. "Key Vault Secrets User". */
  role?: string;
  /** Shorthand: "secrets", "keys", "certificates", "all". */
  permissions?: string[];
  /** Explicit data actions (wildcards allowed). */
  dataActions?: string[];
}

export interface SeedApplication {
  name?: string;
  tenantId?: string;
  clientId: string;
  objectId?: string;
  clientSecret?: string;
  clientSecrets?: string[];
  federatedCredentials?: SeedFederatedCredential[];
  roleAssignments?: SeedRoleGrant[];
}

export interface SeedFederatedCredential {
  issuer: string;
  /** e.g. system:serviceaccount:<namespace>:<service account> */
  subject: string;
  /** Default ["api://AzureADTokenExchange"]. */
  audiences?: string[];
}

export interface SeedManagedIdentity {
  name?: string;
  tenantId?: string;
  clientId: string;
  objectId?: string;
  resourceId?: string;
  /** The VM's system-assigned identity (returned by IMDS when no id is given). */
  systemAssigned?: boolean;
  roleAssignments?: SeedRoleGrant[];
}

export interface SeedRoleAssignment extends SeedRoleGrant {
  /** Client id, object id or name of an application or managed identity. */
  principal: string;
}

export interface SeedServiceAccountIssuer {
  issuer: string;
  /** JWKS of the issuer (signatures are checked when keys are given). */
  jwks?: { keys: Array<Record<string, unknown>> };
  /** Public keys as PEM. */
  publicKeys?: string[];
}

export class SeedError extends Error {}

type Json = Record<string, unknown>;

const TOP_LEVEL = ["tenantId", "vaults", "applications", "apps", "managedIdentities", "roleAssignments", "serviceAccountIssuers", "webhookSubscriptions", "eventGridNamespaces"];
const VAULT_FIELDS = ["name", "tenantId", "softDelete", "recoverableDays", "versionListOrder", "subscriptionId", "resourceGroup", "secrets", "keys", "certificates"];
const COMMON = ["enabled", "nbf", "exp", "tags", "created"];
const SECRET_FIELDS = ["name", "versions", "value", "contentType", ...COMMON];
const KEY_FIELDS = ["name", "versions", "kty", "keySize", "curve", "keyOps", "jwk", "pem", ...COMMON];
const CERT_FIELDS = ["name", "versions", "subject", "dnsNames", "issuer", "keyType", "keySize", "curve", "validityMonths", "contentType", "pem", "pfx", "password", ...COMMON];
const GRANT_FIELDS = ["vault", "role", "permissions", "dataActions"];
const APP_FIELDS = ["name", "tenantId", "clientId", "objectId", "clientSecret", "clientSecrets", "federatedCredentials", "roleAssignments"];
const MI_FIELDS = ["name", "tenantId", "clientId", "objectId", "resourceId", "systemAssigned", "roleAssignments"];

/** Checks the document's shape; throws SeedError naming the first bad path. */
export function validateSeedDocument(input: unknown): SeedDocument {
  const doc = object(input, "seed");
  fields(doc, TOP_LEVEL, "seed");
  optional(doc, "tenantId", "seed", "string");
  list(doc, "vaults", "seed", (vault, path) => {
    fields(vault, VAULT_FIELDS, path);
    required(vault, "name", path, "string");
    optional(vault, "tenantId", path, "string");
    optional(vault, "softDelete", path, "boolean");
    optional(vault, "recoverableDays", path, "number");
    optional(vault, "subscriptionId", path, "string");
    optional(vault, "resourceGroup", path, "string");
    if (vault.versionListOrder !== undefined && !VERSION_LIST_ORDERS.includes(vault.versionListOrder as VersionListOrder)) {
      throw new SeedError(`${path}.versionListOrder must be one of ${VERSION_LIST_ORDERS.join(", ")}`);
    }
    list(vault, "secrets", path, (secret, p) => {
      fields(secret, SECRET_FIELDS, p);
      required(secret, "name", p, "string");
      versions(secret, p, SECRET_FIELDS, (v, vp) => required(v, "value", vp, "string"));
    });
    list(vault, "keys", path, (key, p) => {
      fields(key, KEY_FIELDS, p);
      required(key, "name", p, "string");
      versions(key, p, KEY_FIELDS, (v, vp) => {
        optional(v, "kty", vp, "string");
        optional(v, "keySize", vp, "number");
        optional(v, "curve", vp, "string");
        optional(v, "pem", vp, "string");
      });
    });
    list(vault, "certificates", path, (cert, p) => {
      fields(cert, CERT_FIELDS, p);
      required(cert, "name", p, "string");
      versions(cert, p, CERT_FIELDS, (v, vp) => {
        for (const f of ["subject", "contentType", "pem", "pfx", "password", "keyType", "curve"]) optional(v, f, vp, "string");
        if (v.issuer !== undefined && v.issuer !== "self" && v.issuer !== "chain") throw new SeedError(`${vp}.issuer must be "self" or "chain"`);
      });
    });
  });
  for (const key of ["applications", "apps"]) {
    list(doc, key, "seed", (app, path) => {
      fields(app, APP_FIELDS, path);
      required(app, "clientId", path, "string");
      optional(app, "clientSecret", path, "string");
      list(app, "federatedCredentials", path, (fc, p) => {
        required(fc, "issuer", p, "string");
        required(fc, "subject", p, "string");
      });
      list(app, "roleAssignments", path, (grant, p) => checkGrant(grant, p, false));
    });
  }
  list(doc, "managedIdentities", "seed", (mi, path) => {
    fields(mi, MI_FIELDS, path);
    required(mi, "clientId", path, "string");
    optional(mi, "systemAssigned", path, "boolean");
    list(mi, "roleAssignments", path, (grant, p) => checkGrant(grant, p, false));
  });
  list(doc, "roleAssignments", "seed", (grant, path) => checkGrant(grant, path, true));
  list(doc, "serviceAccountIssuers", "seed", (issuer, path) => {
    required(issuer, "issuer", path, "string");
    if (issuer.jwks !== undefined) {
      const jwks = object(issuer.jwks, `${path}.jwks`);
      if (!Array.isArray(jwks.keys)) throw new SeedError(`${path}.jwks.keys must be a list`);
    }
  });
  for (const [key, check] of [
    ["webhookSubscriptions", validateWebhookSubscription],
    ["eventGridNamespaces", validateNamespace],
  ] as const) {
    list(doc, key, "seed", (item, path) => {
      try {
        check(item, path);
      } catch (err) {
        if (err instanceof EventConfigError) throw new SeedError(err.message);
        throw err;
      }
    });
  }
  return doc as SeedDocument;
}

function checkGrant(grant: Json, path: string, withPrincipal: boolean): void {
  fields(grant, withPrincipal ? [...GRANT_FIELDS, "principal"] : GRANT_FIELDS, path);
  required(grant, "vault", path, "string");
  if (withPrincipal) required(grant, "principal", path, "string");
  optional(grant, "role", path, "string");
  if (grant.role === undefined && grant.permissions === undefined && grant.dataActions === undefined) {
    throw new SeedError(`${path} needs a role, permissions or dataActions`);
  }
}

function versions(entry: Json, path: string, allowed: string[], check: (v: Json, p: string) => void): void {
  if (entry.versions === undefined) {
    check(entry, path);
    return;
  }
  list(entry, "versions", path, (v, p) => {
    fields(v, allowed.filter((f) => f !== "name" && f !== "versions"), p);
    check(v, p);
  });
}

function object(value: unknown, path: string): Json {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new SeedError(`${path} must be an object`);
  return value as Json;
}

function fields(value: Json, allowed: readonly string[], path: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new SeedError(`${path}.${key} is not a known field (known: ${allowed.join(", ")})`);
  }
}

function required(value: Json, key: string, path: string, type: "string" | "number" | "boolean"): void {
  if (typeof value[key] !== type) throw new SeedError(`${path}.${key} is required and must be a ${type}`);
}

function optional(value: Json, key: string, path: string, type: "string" | "number" | "boolean"): void {
  if (value[key] !== undefined && typeof value[key] !== type) throw new SeedError(`${path}.${key} must be a ${type}`);
}

function list(value: Json, key: string, path: string, each: (item: Json, path: string) => void): void {
  const items = value[key];
  if (items === undefined) return;
  if (!Array.isArray(items)) throw new SeedError(`${path}.${key} must be a list`);
  items.forEach((item, index) => {
    const itemPath = `${path}.${key}[${index}]`;
    each(object(item, itemPath), itemPath);
  });
}

/** Epoch seconds of a seed time. */
export function seedTimeToEpoch(value: SeedTime | undefined, path: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "number") return Math.floor(value);
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new SeedError(`${path} must be epoch seconds or an ISO-8601 date`);
  return Math.floor(ms / 1000);
}
