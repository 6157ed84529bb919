// What the emulator keeps about vaults and their objects, behind an interface
// so that handlers never depend on how it is stored. Object names are
// case-insensitive (as in Key Vault); records keep the name as first written.
import type { KeyObject } from "node:crypto";
import type { KeyType } from "../crypto/json-web-key.ts";

export type ObjectKind = "secrets" | "keys" | "certificates";

export const RECOVERY_LEVEL_SOFT_DELETE = "Recoverable+Purgeable";
export const RECOVERY_LEVEL_PURGEABLE = "Purgeable";

/**
 * The order a version listing comes in. Key Vault documents none; the
 * emulator lists oldest first unless a seed asks for another order, so
 * clients can be tested against what Key Vault may return.
 */
export type VersionListOrder = "oldest-first" | "newest-first" | "version-id";
export const VERSION_LIST_ORDERS: readonly VersionListOrder[] = ["oldest-first", "newest-first", "version-id"];

export interface VaultRecord {
  name: string;
  tenantId: string;
  /** Deleted objects are kept as recoverable until purged (Key Vault default). */
  softDelete: boolean;
  recoverableDays: number;
  versionListOrder?: VersionListOrder;
  /** Azure subscription and resource group of the vault's resource id (Event Grid's topic). */
  subscriptionId?: string;
  resourceGroup?: string;
}

export interface ObjectAttributes {
  enabled: boolean;
  /** Epoch seconds. */
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
  recoveryLevel: string;
  recoverableDays?: number;
  exportable?: boolean;
}

interface VersionRecord {
  version: string;
  attributes: ObjectAttributes;
  tags?: Record<string, string>;
  /** True for the key and secret behind a certificate. */
  managed?: boolean;
}

export interface SecretVersionRecord extends VersionRecord {
  value: string;
  contentType?: string;
  /** For certificate-backed secrets: the key version of the same name. */
  certificateBacked?: boolean;
}

export interface KeyVersionRecord extends VersionRecord {
  kty: KeyType;
  keyOps: string[];
  privateKey: KeyObject;
  releasePolicy?: unknown;
}

export interface CertificatePolicyRecord {
  keyProperties: { exportable: boolean; kty: KeyType; keySize?: number; curve?: string; reuseKey: boolean };
  contentType: string;
  subject: string;
  dnsNames: string[];
  validityMonths: number;
  issuerName: string;
  /** "self" or "chain" (emulator extension: generated root -> intermediate -> leaf). */
  generation?: "self" | "chain";
  ekus?: string[];
  keyUsage?: string[];
  lifetimeActions?: unknown[];
  created: number;
  updated: number;
}

export interface CertificateVersionRecord extends VersionRecord {
  /** Leaf first. */
  chain: Buffer[];
  privateKey: KeyObject;
  contentType: string;
  preserveCertOrder?: boolean;
}

export interface CertificateOperationRecord {
  requestId: string;
  status: "inProgress" | "completed" | "cancelled" | "failed";
  statusDetails?: string;
  cancellationRequested: boolean;
  csr: string;
  /** Epoch ms after which the next poll completes the operation. */
  completeAfter: number;
  version?: string;
  error?: { code: string; message: string };
}

export interface ObjectRecords {
  secrets: SecretVersionRecord;
  keys: KeyVersionRecord;
  certificates: CertificateVersionRecord;
}

export interface StoredObject<R> {
  /** The name as first written. */
  name: string;
  /** Oldest first; the last entry is the current version. */
  versions: R[];
}

export interface DeletedObject<R> extends StoredObject<R> {
  /** Epoch seconds. */
  deletedDate: number;
  scheduledPurgeDate: number;
}

export interface KeyVaultStore {
  putVault(vault: VaultRecord): void;
  getVault(name: string): VaultRecord | undefined;
  listVaults(): VaultRecord[];

  getObject<K extends ObjectKind>(vault: string, kind: K, name: string): StoredObject<ObjectRecords[K]> | undefined;
  listObjects<K extends ObjectKind>(vault: string, kind: K): StoredObject<ObjectRecords[K]>[];
  /** Appends a version, creating the object if needed. */
  addVersion<K extends ObjectKind>(vault: string, kind: K, name: string, record: ObjectRecords[K]): void;
  /** Removes the live object; returns it, or undefined if absent. */
  removeObject<K extends ObjectKind>(vault: string, kind: K, name: string): StoredObject<ObjectRecords[K]> | undefined;

  getDeleted<K extends ObjectKind>(vault: string, kind: K, name: string): DeletedObject<ObjectRecords[K]> | undefined;
  listDeleted<K extends ObjectKind>(vault: string, kind: K): DeletedObject<ObjectRecords[K]>[];
  putDeleted<K extends ObjectKind>(vault: string, kind: K, deleted: DeletedObject<ObjectRecords[K]>): void;
  removeDeleted<K extends ObjectKind>(vault: string, kind: K, name: string): DeletedObject<ObjectRecords[K]> | undefined;

  getCertificatePolicy(vault: string, name: string): CertificatePolicyRecord | undefined;
  putCertificatePolicy(vault: string, name: string, policy: CertificatePolicyRecord | undefined): void;
  getCertificateOperation(vault: string, name: string): CertificateOperationRecord | undefined;
  putCertificateOperation(vault: string, name: string, operation: CertificateOperationRecord | undefined): void;
}
