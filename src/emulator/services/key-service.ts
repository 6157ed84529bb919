// Keys: RSA and EC key pairs, created here or imported as JWK. The private
// half never leaves the emulator; bundles carry the public JWK.
import type { KeyObject } from "node:crypto";
import {
  defaultKeyOps,
  generatePrivateKey,
  importPrivateJwk,
  KEY_TYPES,
  keyTypeOf,
  type CurveName,
  type KeyType,
} from "../crypto/json-web-key.ts";
import { BadParameterError, KeyDisabledError } from "../errors/key-vault-errors.ts";
import type { KeyVersionRecord, StoredObject, VaultRecord } from "../store/key-vault-store.ts";
import { applyAttributeUpdate, newAttributes, newVersionId, nextCreated, validateName, type AttributeInput, type VaultObjects } from "./vault-objects.ts";

export interface CreateKeyInput {
  kty: KeyType | string;
  keySize?: number;
  curve?: CurveName | string;
  publicExponent?: number;
  keyOps?: string[];
  attributes?: AttributeInput;
  tags?: Record<string, string>;
  created?: number;
  /** Keep `created` as given even when it equals the previous version's (a seed reproducing Key Vault's one-second timestamps). */
  createdExact?: boolean;
}

export interface ImportKeyInput {
  jwk: Record<string, unknown>;
  hsm?: boolean;
  keyOps?: string[];
  attributes?: AttributeInput;
  tags?: Record<string, string>;
  created?: number;
  /** Keep `created` as given even when it equals the previous version's (a seed reproducing Key Vault's one-second timestamps). */
  createdExact?: boolean;
}

export interface KeyUpdate {
  keyOps?: string[];
  attributes?: AttributeInput;
  tags?: Record<string, string>;
}

export interface KeyVersion {
  name: string;
  record: KeyVersionRecord;
}

const KEY_OPERATIONS = new Set(["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export"]);

export class KeyService {
  readonly #objects: VaultObjects;

  constructor(objects: VaultObjects) {
    this.#objects = objects;
  }

  async create(vault: VaultRecord, name: string, input: CreateKeyInput): Promise<KeyVersion> {
    validateName("keys", name);
    if (!KEY_TYPES.includes(input.kty as KeyType)) {
      throw new BadParameterError(`The key type '${String(input.kty)}' is not supported by this vault. Supported: ${KEY_TYPES.join(", ")}.`);
    }
    this.#objects.ensureNotDeleted(vault.name, "keys", name);
    let privateKey: KeyObject;
    try {
      privateKey = await generatePrivateKey({
        kty: input.kty as KeyType,
        keySize: input.keySize,
        curve: input.curve as CurveName | undefined,
        publicExponent: input.publicExponent,
      });
    } catch (err) {
      throw new BadParameterError(err instanceof Error ? err.message : String(err));
    }
    return this.#add(vault, name, privateKey, input.kty as KeyType, input);
  }

  import(vault: VaultRecord, name: string, input: ImportKeyInput): KeyVersion {
    validateName("keys", name);
    if (!input.jwk || typeof input.jwk !== "object") throw new BadParameterError("The request must contain a JSON Web Key ('key').");
    this.#objects.ensureNotDeleted(vault.name, "keys", name);
    let privateKey: KeyObject;
    try {
      privateKey = importPrivateJwk(input.jwk);
    } catch (err) {
      throw new BadParameterError(`The JSON Web Key is invalid: ${err instanceof Error ? err.message : String(err)}`);
    }
    const hsm = input.hsm === true || String(input.jwk.kty).endsWith("-HSM");
    const keyOps = input.keyOps ?? (Array.isArray(input.jwk.key_ops) ? input.jwk.key_ops.map(String) : undefined);
    return this.#add(vault, name, privateKey, keyTypeOf(privateKey, hsm), { ...input, keyOps });
  }

  /** Adds a version for an existing private key (used by certificates). */
  addManaged(vault: VaultRecord, name: string, version: string, privateKey: KeyObject, created: number, attributes: AttributeInput): KeyVersionRecord {
    const kty = keyTypeOf(privateKey);
    const record: KeyVersionRecord = {
      version,
      kty,
      keyOps: kty === "RSA" ? ["sign", "verify", "wrapKey", "unwrapKey", "encrypt", "decrypt"] : ["sign", "verify"],
      privateKey,
      managed: true,
      attributes: newAttributes(vault, created, attributes),
    };
    this.#objects.addVersion(vault, "keys", name, record);
    return record;
  }

  #add(vault: VaultRecord, name: string, privateKey: KeyObject, kty: KeyType, input: { keyOps?: string[]; attributes?: AttributeInput; tags?: Record<string, string>; created?: number; createdExact?: boolean }): KeyVersion {
    const keyOps = input.keyOps ?? defaultKeyOps(kty);
    const unknown = keyOps.filter((op) => !KEY_OPERATIONS.has(op));
    if (unknown.length > 0) throw new BadParameterError(`Unknown key operations: ${unknown.join(", ")}.`);
    const existing = this.#objects.store.getObject(vault.name, "keys", name);
    const record: KeyVersionRecord = {
      version: newVersionId(),
      kty,
      keyOps: [...keyOps],
      privateKey,
      attributes: newAttributes(vault, nextCreated(existing, input.created, input.createdExact), input.attributes),
    };
    if (input.tags) record.tags = { ...input.tags };
    this.#objects.addVersion(vault, "keys", name, record);
    return { name: existing?.name ?? name, record };
  }

  get(vault: VaultRecord, name: string, version?: string): KeyVersion {
    const { object, record } = this.#objects.resolve(vault.name, "keys", name, version);
    if (!record.attributes.enabled) throw new KeyDisabledError();
    return { name: object.name, record };
  }

  versions(vault: VaultRecord, name: string): StoredObject<KeyVersionRecord> | undefined {
    validateName("keys", name);
    return this.#objects.store.getObject(vault.name, "keys", name);
  }

  list(vault: VaultRecord): StoredObject<KeyVersionRecord>[] {
    return this.#objects.store.listObjects(vault.name, "keys");
  }

  update(vault: VaultRecord, name: string, version: string | undefined, update: KeyUpdate): KeyVersion {
    const { object, record } = this.#objects.resolve(vault.name, "keys", name, version);
    applyAttributeUpdate(record.attributes, update.attributes);
    if (update.keyOps !== undefined) record.keyOps = [...update.keyOps];
    if (update.tags !== undefined) record.tags = { ...update.tags };
    return { name: object.name, record };
  }
}
