// The in-memory KeyVaultStore: maps keyed by lower-cased names. Nothing is
// ever written to disk, so secret values live only in this process.
import type {
  CertificateOperationRecord,
  CertificatePolicyRecord,
  DeletedObject,
  KeyVaultStore,
  ObjectKind,
  ObjectRecords,
  StoredObject,
  VaultRecord,
} from "./key-vault-store.ts";

interface VaultContents {
  record: VaultRecord;
  live: { [K in ObjectKind]: Map<string, StoredObject<ObjectRecords[K]>> };
  deleted: { [K in ObjectKind]: Map<string, DeletedObject<ObjectRecords[K]>> };
  policies: Map<string, CertificatePolicyRecord>;
  operations: Map<string, CertificateOperationRecord>;
}

export class MemoryKeyVaultStore implements KeyVaultStore {
  readonly #vaults = new Map<string, VaultContents>();

  #vault(name: string): VaultContents {
    const vault = this.#vaults.get(name.toLowerCase());
    if (!vault) throw new Error(`vault ${name} does not exist`);
    return vault;
  }

  putVault(vault: VaultRecord): void {
    const key = vault.name.toLowerCase();
    const existing = this.#vaults.get(key);
    if (existing) {
      existing.record = vault;
      return;
    }
    this.#vaults.set(key, {
      record: vault,
      live: { secrets: new Map(), keys: new Map(), certificates: new Map() },
      deleted: { secrets: new Map(), keys: new Map(), certificates: new Map() },
      policies: new Map(),
      operations: new Map(),
    });
  }

  getVault(name: string): VaultRecord | undefined {
    return this.#vaults.get(name.toLowerCase())?.record;
  }

  listVaults(): VaultRecord[] {
    return [...this.#vaults.values()].map((v) => v.record);
  }

  getObject<K extends ObjectKind>(vault: string, kind: K, name: string): StoredObject<ObjectRecords[K]> | undefined {
    return this.#vault(vault).live[kind].get(name.toLowerCase()) as StoredObject<ObjectRecords[K]> | undefined;
  }

  listObjects<K extends ObjectKind>(vault: string, kind: K): StoredObject<ObjectRecords[K]>[] {
    return [...this.#vault(vault).live[kind].values()] as StoredObject<ObjectRecords[K]>[];
  }

  addVersion<K extends ObjectKind>(vault: string, kind: K, name: string, record: ObjectRecords[K]): void {
    const objects = this.#vault(vault).live[kind] as Map<string, StoredObject<ObjectRecords[K]>>;
    const existing = objects.get(name.toLowerCase());
    if (existing) existing.versions.push(record);
    else objects.set(name.toLowerCase(), { name, versions: [record] });
  }

  removeObject<K extends ObjectKind>(vault: string, kind: K, name: string): StoredObject<ObjectRecords[K]> | undefined {
    const objects = this.#vault(vault).live[kind] as Map<string, StoredObject<ObjectRecords[K]>>;
    const existing = objects.get(name.toLowerCase());
    objects.delete(name.toLowerCase());
    return existing;
  }

  getDeleted<K extends ObjectKind>(vault: string, kind: K, name: string): DeletedObject<ObjectRecords[K]> | undefined {
    return this.#vault(vault).deleted[kind].get(name.toLowerCase()) as DeletedObject<ObjectRecords[K]> | undefined;
  }

  listDeleted<K extends ObjectKind>(vault: string, kind: K): DeletedObject<ObjectRecords[K]>[] {
    return [...this.#vault(vault).deleted[kind].values()] as DeletedObject<ObjectRecords[K]>[];
  }

  putDeleted<K extends ObjectKind>(vault: string, kind: K, deleted: DeletedObject<ObjectRecords[K]>): void {
    (this.#vault(vault).deleted[kind] as Map<string, DeletedObject<ObjectRecords[K]>>).set(deleted.name.toLowerCase(), deleted);
  }

  removeDeleted<K extends ObjectKind>(vault: string, kind: K, name: string): DeletedObject<ObjectRecords[K]> | undefined {
    const deleted = this.#vault(vault).deleted[kind] as Map<string, DeletedObject<ObjectRecords[K]>>;
    const existing = deleted.get(name.toLowerCase());
    deleted.delete(name.toLowerCase());
    return existing;
  }

  getCertificatePolicy(vault: string, name: string): CertificatePolicyRecord | undefined {
    return this.#vault(vault).policies.get(name.toLowerCase());
  }

  putCertificatePolicy(vault: string, name: string, policy: CertificatePolicyRecord | undefined): void {
    const policies = this.#vault(vault).policies;
    if (policy) policies.set(name.toLowerCase(), policy);
    else policies.delete(name.toLowerCase());
  }

  getCertificateOperation(vault: string, name: string): CertificateOperationRecord | undefined {
    return this.#vault(vault).operations.get(name.toLowerCase());
  }

  putCertificateOperation(vault: string, name: string, operation: CertificateOperationRecord | undefined): void {
    const operations = this.#vault(vault).operations;
    if (operation) operations.set(name.toLowerCase(), operation);
    else operations.delete(name.toLowerCase());
  }
}
