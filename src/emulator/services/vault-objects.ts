// What secrets, keys and certificates share: version ids, creation times,
// resolving "latest" or a given version, and soft delete / recover / purge.
import { randomBytes } from "node:crypto";
import { BadParameterError, ConflictError, deletedObjectNotFound, objectNotFound, type ObjectKindName } from "../errors/key-vault-errors.ts";
import {
  RECOVERY_LEVEL_PURGEABLE,
  RECOVERY_LEVEL_SOFT_DELETE,
  type DeletedObject,
  type KeyVaultStore,
  type ObjectAttributes,
  type ObjectKind,
  type ObjectRecords,
  type StoredObject,
  type VaultRecord,
} from "../store/key-vault-store.ts";

export const OBJECT_NAME = /^[0-9a-zA-Z-]{1,127}$/;
export const VERSION_ID = /^[0-9a-f]{32}$/;

export const KIND_NAME: Record<ObjectKind, ObjectKindName> = { secrets: "secret", keys: "key", certificates: "certificate" };

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** 32 lowercase hex characters, like Key Vault version ids. */
export function newVersionId(): string {
  return randomBytes(16).toString("hex");
}

export function validateName(kind: ObjectKind, name: string): void {
  if (!OBJECT_NAME.test(name)) {
    throw new BadParameterError(
      `The request URI contains an invalid name: ${name}. ${KIND_NAME[kind]} names must match ^[0-9a-zA-Z-]{1,127}$.`,
    );
  }
}

/** Attributes from a request (enabled/nbf/exp), with the object's recovery level. */
export interface AttributeInput {
  enabled?: boolean;
  nbf?: number;
  exp?: number;
  exportable?: boolean;
}

export function newAttributes(vault: VaultRecord, created: number, input: AttributeInput = {}): ObjectAttributes {
  const attributes: ObjectAttributes = {
    enabled: input.enabled ?? true,
    created,
    updated: created,
    recoveryLevel: vault.softDelete ? RECOVERY_LEVEL_SOFT_DELETE : RECOVERY_LEVEL_PURGEABLE,
  };
  if (vault.softDelete) attributes.recoverableDays = vault.recoverableDays;
  if (input.nbf !== undefined) attributes.nbf = input.nbf;
  if (input.exp !== undefined) attributes.exp = input.exp;
  if (input.exportable !== undefined) attributes.exportable = input.exportable;
  return attributes;
}

export function applyAttributeUpdate(attributes: ObjectAttributes, input: AttributeInput | undefined): void {
  if (!input) return;
  if (input.enabled !== undefined) attributes.enabled = input.enabled;
  if (input.nbf !== undefined) attributes.nbf = input.nbf;
  if (input.exp !== undefined) attributes.exp = input.exp;
  attributes.updated = nowSeconds();
}

/**
 * The creation time of a new version: strictly after the previous version so
 * that tests writing versions within one second still get distinct times,
 * unless `exact` (a seed that gives the time, equal times included, as Key
 * Vault's one-second timestamps produce); never before the previous version.
 */
export function nextCreated(previous: StoredObject<{ attributes: ObjectAttributes }> | undefined, wanted = nowSeconds(), exact = false): number {
  const last = previous?.versions.at(-1)?.attributes.created;
  if (last === undefined) return wanted;
  if (exact) return Math.max(wanted, last);
  return wanted <= last ? last + 1 : wanted;
}

/** A version just written (not a recovered one): what Key Vault announces through Event Grid. */
export interface NewVersion {
  vault: VaultRecord;
  kind: ObjectKind;
  /** The object's name as first written. */
  name: string;
  version: string;
  attributes: ObjectAttributes;
}

export type NewVersionListener = (created: NewVersion) => void;

export class VaultObjects {
  readonly store: KeyVaultStore;
  readonly #listeners: NewVersionListener[] = [];

  constructor(store: KeyVaultStore) {
    this.store = store;
  }

  /** Called after every new version of a secret, key or certificate. */
  onNewVersion(listener: NewVersionListener): void {
    this.#listeners.push(listener);
  }

  /** Stores a new version and tells the listeners; recovery re-adds versions without this. */
  addVersion<K extends ObjectKind>(vault: VaultRecord, kind: K, name: string, record: ObjectRecords[K]): void {
    this.store.addVersion(vault.name, kind, name, record);
    const stored = this.store.getObject(vault.name, kind, name);
    const created: NewVersion = { vault, kind, name: stored?.name ?? name, version: record.version, attributes: record.attributes };
    for (const listener of this.#listeners) listener(created);
  }

  /** Throws Conflict when the name is held by a deleted, recoverable object. */
  ensureNotDeleted(vault: string, kind: ObjectKind, name: string): void {
    if (this.store.getDeleted(vault, kind, name)) {
      const label = KIND_NAME[kind].charAt(0).toUpperCase() + KIND_NAME[kind].slice(1);
      throw new ConflictError(
        `${label} ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the ${KIND_NAME[kind]} can only be recovered or purged.`,
      );
    }
  }

  /** The object and the requested version ("" or undefined = current). */
  resolve<K extends ObjectKind>(vault: string, kind: K, name: string, version?: string): { object: StoredObject<ObjectRecords[K]>; record: ObjectRecords[K] } {
    validateName(kind, name);
    const object = this.store.getObject(vault, kind, name);
    if (!object) throw objectNotFound(KIND_NAME[kind], name, version || undefined);
    const record = version ? object.versions.find((v) => v.version === version.toLowerCase()) : object.versions.at(-1);
    if (!record) throw objectNotFound(KIND_NAME[kind], name, version);
    return { object, record };
  }

  /** Moves an object to the deleted set (soft delete) or drops it; returns what was deleted. */
  delete<K extends ObjectKind>(vault: VaultRecord, kind: K, name: string): DeletedObject<ObjectRecords[K]> {
    validateName(kind, name);
    const removed = this.store.removeObject(vault.name, kind, name);
    if (!removed) throw objectNotFound(KIND_NAME[kind], name);
    const deletedDate = nowSeconds();
    const deleted: DeletedObject<ObjectRecords[K]> = {
      ...removed,
      deletedDate,
      scheduledPurgeDate: deletedDate + vault.recoverableDays * 86400,
    };
    if (vault.softDelete) this.store.putDeleted(vault.name, kind, deleted);
    return deleted;
  }

  getDeleted<K extends ObjectKind>(vault: string, kind: K, name: string): DeletedObject<ObjectRecords[K]> {
    validateName(kind, name);
    const deleted = this.store.getDeleted(vault, kind, name);
    if (!deleted) throw deletedObjectNotFound(KIND_NAME[kind], name);
    return deleted;
  }

  purge(vault: string, kind: ObjectKind, name: string): void {
    validateName(kind, name);
    if (!this.store.removeDeleted(vault, kind, name)) throw deletedObjectNotFound(KIND_NAME[kind], name);
  }

  recover<K extends ObjectKind>(vault: string, kind: K, name: string): StoredObject<ObjectRecords[K]> {
    validateName(kind, name);
    const deleted = this.store.removeDeleted(vault, kind, name);
    if (!deleted) throw deletedObjectNotFound(KIND_NAME[kind], name);
    for (const record of deleted.versions) this.store.addVersion(vault, kind, deleted.name, record);
    return this.store.getObject(vault, kind, deleted.name)!;
  }
}
