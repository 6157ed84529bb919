// Applies a seed document: creates vaults and versions through the same
// services the REST handlers use, registers principals, role assignments and
// service-account issuers. Seeding is additive: secrets get new versions,
// principals with a known client id are replaced.
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import YAML from "yaml";
import { TOKEN_EXCHANGE_AUDIENCE } from "./auth/client-assertion.ts";
import { permissionDataActions, roleDataActions } from "./auth/role-definitions.ts";
import { encodePem } from "../shared/crypto/pem.ts";
import { writePfx } from "./crypto/pkcs12.ts";
import { generateCertificateChain } from "./crypto/x509.ts";
import type { CertificateService } from "./services/certificate-service.ts";
import type { KeyService } from "./services/key-service.ts";
import type { SecretService } from "./services/secret-service.ts";
import { nowSeconds } from "./services/vault-objects.ts";
import type { DirectoryStore, PrincipalRecord, RoleAssignmentRecord } from "./store/directory-store.ts";
import type { KeyVaultStore, VaultRecord } from "./store/key-vault-store.ts";
import {
  SeedError,
  seedTimeToEpoch,
  validateSeedDocument,
  type SeedCertificateVersion,
  type SeedDocument,
  type SeedKeyVersion,
  type SeedRoleGrant,
  type SeedSecretVersion,
} from "./seed-document.ts";

export const DEFAULT_TENANT_ID = "00000000-0000-4000-8000-00000000c0de";
export const DEFAULT_RECOVERABLE_DAYS = 90;

export interface SeederDeps {
  store: KeyVaultStore;
  directory: DirectoryStore;
  secrets: SecretService;
  keys: KeyService;
  certificates: CertificateService;
  defaultTenantId: string;
  /** Applies the webhook subscriptions and namespaces of a seed (after its vaults and principals). */
  applyEvents?(doc: SeedDocument): Promise<void>;
}

/** A UUID derived from a text, so re-seeding the same principal keeps its object id. */
export function uuidFrom(text: string): string {
  const hex = createHash("sha256").update(text).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Reads a seed file (JSON or YAML). */
export async function loadSeedFile(path: string): Promise<SeedDocument> {
  const text = await readFile(path, "utf8");
  let parsed: unknown;
  try {
    parsed = YAML.parse(text);
  } catch (err) {
    throw new SeedError(`seed file ${path} is neither JSON nor YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
  return validateSeedDocument(parsed ?? {});
}

export class Seeder {
  readonly #deps: SeederDeps;

  constructor(deps: SeederDeps) {
    this.#deps = deps;
  }

  /** Creates a vault if missing (programmatic setters use this). */
  ensureVault(name: string, tenantId?: string): VaultRecord {
    const existing = this.#deps.store.getVault(name);
    if (existing) return existing;
    const vault: VaultRecord = {
      name: name.toLowerCase(),
      tenantId: tenantId ?? this.#deps.defaultTenantId,
      softDelete: true,
      recoverableDays: DEFAULT_RECOVERABLE_DAYS,
    };
    if (!/^[a-z0-9-]{1,63}$/.test(vault.name)) throw new SeedError(`invalid vault name "${name}": use letters, digits and dashes`);
    this.#deps.store.putVault(vault);
    this.#deps.directory.addTenant(vault.tenantId);
    return vault;
  }

  async apply(input: SeedDocument): Promise<void> {
    const doc = validateSeedDocument(input);
    const { store, directory } = this.#deps;
    const defaultTenant = doc.tenantId ?? this.#deps.defaultTenantId;
    directory.addTenant(defaultTenant);

    for (const issuer of doc.serviceAccountIssuers ?? []) {
      const keys: Array<{ kid?: string; key: KeyObject }> = [];
      for (const jwk of issuer.jwks?.keys ?? []) {
        keys.push({ kid: typeof jwk.kid === "string" ? jwk.kid : undefined, key: createPublicKey({ key: jwk as never, format: "jwk" }) });
      }
      for (const pem of issuer.publicKeys ?? []) keys.push({ key: createPublicKey(pem) });
      directory.putServiceAccountIssuer({ issuer: issuer.issuer, keys });
    }

    for (const [vi, seedVault] of (doc.vaults ?? []).entries()) {
      const path = `seed.vaults[${vi}]`;
      const vault = this.ensureVault(seedVault.name, seedVault.tenantId ?? defaultTenant);
      if (seedVault.tenantId !== undefined) vault.tenantId = seedVault.tenantId;
      if (seedVault.softDelete !== undefined) vault.softDelete = seedVault.softDelete;
      if (seedVault.recoverableDays !== undefined) vault.recoverableDays = seedVault.recoverableDays;
      if (seedVault.versionListOrder !== undefined) vault.versionListOrder = seedVault.versionListOrder;
      if (seedVault.subscriptionId !== undefined) vault.subscriptionId = seedVault.subscriptionId;
      if (seedVault.resourceGroup !== undefined) vault.resourceGroup = seedVault.resourceGroup;
      store.putVault(vault);
      directory.addTenant(vault.tenantId);

      for (const [si, secret] of (seedVault.secrets ?? []).entries()) {
        const versions = secret.versions ?? [secret as SeedSecretVersion];
        for (const [i, v] of versions.entries()) {
          const p = `${path}.secrets[${si}]`;
          this.#deps.secrets.set(vault, secret.name, {
            value: v.value,
            contentType: v.contentType,
            attributes: attributes(v, p),
            tags: v.tags,
            created: createdOf(v, i, versions.length, p),
            createdExact: v.created !== undefined,
          });
        }
      }
      for (const [ki, key] of (seedVault.keys ?? []).entries()) {
        const versions = key.versions ?? [key as SeedKeyVersion];
        for (const [i, v] of versions.entries()) await this.#seedKey(vault, key.name, v, i, versions.length, `${path}.keys[${ki}]`);
      }
      for (const [ci, cert] of (seedVault.certificates ?? []).entries()) {
        const versions = cert.versions ?? [cert as SeedCertificateVersion];
        for (const [i, v] of versions.entries()) await this.#seedCertificate(vault, cert.name, v, i, versions.length, `${path}.certificates[${ci}]`);
      }
    }

    const applications = [...(doc.applications ?? []), ...(doc.apps ?? [])];
    for (const app of applications) {
      const tenantId = app.tenantId ?? defaultTenant;
      const principal: PrincipalRecord = {
        kind: "application",
        displayName: app.name ?? app.clientId,
        tenantId,
        clientId: app.clientId,
        objectId: app.objectId ?? uuidFrom(`sp:${tenantId}:${app.clientId}`),
        clientSecrets: [...(app.clientSecret !== undefined ? [app.clientSecret] : []), ...(app.clientSecrets ?? [])],
        federatedCredentials: (app.federatedCredentials ?? []).map((fc) => ({
          issuer: fc.issuer,
          subject: fc.subject,
          audiences: fc.audiences ?? [TOKEN_EXCHANGE_AUDIENCE],
        })),
      };
      directory.putPrincipal(principal);
      for (const grant of app.roleAssignments ?? []) directory.addRoleAssignment(roleAssignment(principal, grant));
    }
    for (const mi of doc.managedIdentities ?? []) {
      const tenantId = mi.tenantId ?? defaultTenant;
      const name = mi.name ?? mi.clientId;
      const principal: PrincipalRecord = {
        kind: "managedIdentity",
        displayName: name,
        tenantId,
        clientId: mi.clientId,
        objectId: mi.objectId ?? uuidFrom(`mi:${tenantId}:${mi.clientId}`),
        resourceId:
          mi.resourceId ??
          (mi.systemAssigned
            ? "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/keyvault-emulator/providers/Microsoft.Compute/virtualMachines/emulator-vm"
            : `/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/keyvault-emulator/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`),
        systemAssigned: mi.systemAssigned ?? false,
      };
      directory.putPrincipal(principal);
      for (const grant of mi.roleAssignments ?? []) directory.addRoleAssignment(roleAssignment(principal, grant));
    }
    for (const [i, assignment] of (doc.roleAssignments ?? []).entries()) {
      const principal = directory.findPrincipal(assignment.principal);
      if (!principal) throw new SeedError(`seed.roleAssignments[${i}].principal "${assignment.principal}" is no known application or managed identity`);
      directory.addRoleAssignment(roleAssignment(principal, assignment));
    }
    if (doc.webhookSubscriptions || doc.eventGridNamespaces) await this.#deps.applyEvents?.(doc);
  }

  async #seedKey(vault: VaultRecord, name: string, v: SeedKeyVersion, index: number, count: number, path: string): Promise<void> {
    const common = { keyOps: v.keyOps, attributes: attributes(v, path), tags: v.tags, created: createdOf(v, index, count, path), createdExact: v.created !== undefined };
    if (v.jwk) {
      this.#deps.keys.import(vault, name, { ...common, jwk: v.jwk, hsm: v.kty?.endsWith("-HSM") });
    } else if (v.pem) {
      const jwk = createPrivateKey(v.pem).export({ format: "jwk" }) as Record<string, unknown>;
      this.#deps.keys.import(vault, name, { ...common, jwk, hsm: v.kty?.endsWith("-HSM") });
    } else {
      await this.#deps.keys.create(vault, name, { ...common, kty: v.kty ?? "RSA", keySize: v.keySize, curve: v.curve });
    }
  }

  async #seedCertificate(vault: VaultRecord, name: string, v: SeedCertificateVersion, index: number, count: number, path: string): Promise<void> {
    const created = createdOf(v, index, count, path);
    const createdExact = v.created !== undefined;
    const attrs = attributes(v, path);
    if (v.pem || v.pfx) {
      this.#deps.certificates.import(vault, name, {
        value: (v.pem ?? v.pfx)!,
        password: v.password,
        policy: v.contentType ? { contentType: v.contentType } : undefined,
        attributes: attrs,
        tags: v.tags,
        created,
        createdExact,
      });
      return;
    }
    const policy = {
      subject: v.subject ?? `CN=${name}`,
      dnsNames: v.dnsNames,
      keyType: v.keyType,
      keySize: v.keySize,
      curve: v.curve,
      validityMonths: v.validityMonths,
      contentType: v.contentType,
      issuerName: "Self",
      generation: v.issuer ?? "self",
    };
    if (v.issuer === "chain") {
      // A chain is generated here and imported, so the policy reads like an imported certificate.
      const { privateKey, chain } = await generateCertificateChain({
        subject: policy.subject,
        dnsNames: v.dnsNames,
        validityMonths: v.validityMonths,
        keyType: v.keyType,
        keySize: v.keySize,
        curve: v.curve as "P-256" | "P-384" | "P-521" | undefined,
      });
      const pem = v.contentType === "application/x-pem-file";
      this.#deps.certificates.import(vault, name, {
        value: pem
          ? (privateKey.export({ type: "pkcs8", format: "pem" }) as string) + chain.map((c) => encodePem("CERTIFICATE", c)).join("")
          : writePfx({ privateKey, certificates: chain }).toString("base64"),
        policy: { contentType: v.contentType ?? "application/x-pkcs12", subject: policy.subject, dnsNames: v.dnsNames },
        attributes: attrs,
        tags: v.tags,
        created,
        createdExact,
      });
      return;
    }
    await this.#deps.certificates.generate(vault, name, { policy: { ...policy, generation: "self" }, attributes: attrs, tags: v.tags, created, createdExact });
  }
}

function attributes(v: { enabled?: boolean; nbf?: number | string; exp?: number | string }, path: string): { enabled?: boolean; nbf?: number; exp?: number } {
  return { enabled: v.enabled, nbf: seedTimeToEpoch(v.nbf, `${path}.nbf`), exp: seedTimeToEpoch(v.exp, `${path}.exp`) };
}

function createdOf(v: { created?: number | string }, index: number, count: number, path: string): number {
  return seedTimeToEpoch(v.created, `${path}.created`) ?? nowSeconds() - (count - 1 - index);
}

function roleAssignment(principal: PrincipalRecord, grant: SeedRoleGrant): RoleAssignmentRecord {
  const dataActions: string[] = [];
  let roleName = "custom";
  if (grant.role !== undefined) {
    const actions = roleDataActions(grant.role);
    if (!actions) throw new SeedError(`unknown role "${grant.role}" for ${principal.displayName}: use a Key Vault built-in role such as "Key Vault Secrets User"`);
    dataActions.push(...actions);
    roleName = grant.role;
  }
  try {
    if (grant.permissions) dataActions.push(...permissionDataActions(grant.permissions));
  } catch (err) {
    throw new SeedError(`${principal.displayName}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (grant.dataActions) dataActions.push(...grant.dataActions);
  return { principalObjectId: principal.objectId, vault: grant.vault, roleName, dataActions };
}
