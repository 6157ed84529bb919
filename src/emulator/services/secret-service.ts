// Secrets: versions are whole values with an optional content type.
import { BadParameterError, SecretDisabledError } from "../errors/key-vault-errors.ts";
import type { SecretVersionRecord, StoredObject, VaultRecord } from "../store/key-vault-store.ts";
import { applyAttributeUpdate, newAttributes, newVersionId, nextCreated, validateName, type AttributeInput, type VaultObjects } from "./vault-objects.ts";

export const MAX_SECRET_VALUE_BYTES = 25 * 1024;
export const MAX_CONTENT_TYPE_LENGTH = 255;

export interface SetSecretInput {
  value: string;
  contentType?: string;
  attributes?: AttributeInput;
  tags?: Record<string, string>;
  /** Epoch seconds; seeds may backdate versions. */
  created?: number;
  /** Keep `created` as given even when it equals the previous version's (a seed reproducing Key Vault's one-second timestamps). */
  createdExact?: boolean;
}

export interface SecretUpdate {
  contentType?: string;
  attributes?: AttributeInput;
  tags?: Record<string, string>;
}

export interface SecretVersion {
  name: string;
  record: SecretVersionRecord;
}

export class SecretService {
  readonly #objects: VaultObjects;

  constructor(objects: VaultObjects) {
    this.#objects = objects;
  }

  set(vault: VaultRecord, name: string, input: SetSecretInput): SecretVersion {
    validateName("secrets", name);
    if (typeof input.value !== "string") throw new BadParameterError("The secret value must be a string.");
    if (Buffer.byteLength(input.value, "utf8") > MAX_SECRET_VALUE_BYTES) {
      throw new BadParameterError(`The secret value exceeds the maximum size of ${MAX_SECRET_VALUE_BYTES} bytes.`);
    }
    if (input.contentType !== undefined && (typeof input.contentType !== "string" || input.contentType.length > MAX_CONTENT_TYPE_LENGTH)) {
      throw new BadParameterError(`The content type must be a string of at most ${MAX_CONTENT_TYPE_LENGTH} characters.`);
    }
    this.#objects.ensureNotDeleted(vault.name, "secrets", name);
    const existing = this.#objects.store.getObject(vault.name, "secrets", name);
    const record: SecretVersionRecord = {
      version: newVersionId(),
      value: input.value,
      attributes: newAttributes(vault, nextCreated(existing, input.created, input.createdExact), input.attributes),
    };
    if (input.contentType !== undefined) record.contentType = input.contentType;
    if (input.tags) record.tags = { ...input.tags };
    this.#objects.addVersion(vault, "secrets", name, record);
    return { name: existing?.name ?? name, record };
  }

  /** A version's value; disabled versions are refused like Key Vault does. */
  get(vault: VaultRecord, name: string, version?: string): SecretVersion {
    const { object, record } = this.#objects.resolve(vault.name, "secrets", name, version);
    if (!record.attributes.enabled) throw new SecretDisabledError();
    return { name: object.name, record };
  }

  versions(vault: VaultRecord, name: string): StoredObject<SecretVersionRecord> | undefined {
    validateName("secrets", name);
    return this.#objects.store.getObject(vault.name, "secrets", name);
  }

  list(vault: VaultRecord): StoredObject<SecretVersionRecord>[] {
    return this.#objects.store.listObjects(vault.name, "secrets");
  }

  update(vault: VaultRecord, name: string, version: string | undefined, update: SecretUpdate): SecretVersion {
    const { object, record } = this.#objects.resolve(vault.name, "secrets", name, version);
    applyAttributeUpdate(record.attributes, update.attributes);
    if (update.contentType !== undefined) record.contentType = update.contentType;
    if (update.tags !== undefined) record.tags = { ...update.tags };
    return { name: object.name, record };
  }
}
