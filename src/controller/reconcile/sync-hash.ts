// status.syncHash, computed exactly as upstream's controller computes it, so
// either controller sees the other's status as up to date:
//
//   "v1:" + hex(PBKDF2-SHA512(password, salt = SecretSync UID, 100,000 rounds, 32 bytes))
//   password = len(json) + ":" + json + SPC UID|SPC generation|SS UID|SS generation|forceSynchronization
//
// with json the Secret data as Go's encoding/json writes a map[string][]byte
// (keys sorted, values base64). The key derivation is deliberately slow
// (about 80 ms of CPU here), so it runs on the thread pool and its result is
// remembered per SecretSync against a SHA-256 of the same input: a rotation
// that finds the same data costs a SHA-256, not a PBKDF2.
import { createHash, pbkdf2 } from "node:crypto";
import { promisify } from "node:util";
import type { SecretProviderClass } from "../../shared/kube/kube-types.ts";
import { LruCache } from "../../shared/lru.ts";
import type { SecretSync } from "../api/secret-sync.ts";

const pbkdf2Async = promisify(pbkdf2);

export const SYNC_HASH_PREFIX = "v1:";
const ROUNDS = 100_000;
const KEY_BYTES = 32;

/** What goes into the hash: the password and the salt, as bytes. */
export function syncHashInput(data: ReadonlyMap<string, Buffer>, spc: SecretProviderClass, ss: SecretSync): { password: Buffer; salt: Buffer } {
  const sorted: Record<string, string> = {};
  for (const key of [...data.keys()].sort()) sorted[key] = data.get(key)!.toString("base64");
  const json = Buffer.from(JSON.stringify(sorted), "utf8");
  const generation = (obj: { metadata: { generation?: number } }) => String(obj.metadata.generation ?? 0);
  const tail = [spc.metadata.uid ?? "", generation(spc), ss.metadata.uid ?? "", generation(ss), ss.spec.forceSynchronization ?? ""].join("|");
  return { password: Buffer.concat([Buffer.from(`${json.length}:`), json, Buffer.from(tail, "utf8")]), salt: Buffer.from(ss.metadata.uid ?? "", "utf8") };
}

export async function computeSyncHash(input: { password: Buffer; salt: Buffer }): Promise<string> {
  const key = await pbkdf2Async(input.password, input.salt, ROUNDS, KEY_BYTES, "sha512");
  return SYNC_HASH_PREFIX + key.toString("hex");
}

export interface SyncHashesOptions {
  /** SecretSyncs whose last hash is remembered; the oldest is forgotten first. */
  maxEntries: number;
}

/** syncHash per SecretSync UID, recomputed only when its input changed. */
export class SyncHashes {
  private readonly memo: LruCache<string, { digest: string; hash: string }>;
  /** PBKDF2 runs since start, for tests and the benchmark. */
  computed = 0;

  constructor(options: SyncHashesOptions) {
    this.memo = new LruCache({ maxEntries: options.maxEntries, idleMs: Number.POSITIVE_INFINITY });
  }

  get size(): number {
    return this.memo.size;
  }

  async hash(data: ReadonlyMap<string, Buffer>, spc: SecretProviderClass, ss: SecretSync): Promise<string> {
    const input = syncHashInput(data, spc, ss);
    const digest = createHash("sha256").update(input.salt).update("\0").update(input.password).digest("base64");
    const uid = ss.metadata.uid ?? "";
    const known = this.memo.get(uid);
    if (known?.digest === digest) return known.hash;
    const hash = await computeSyncHash(input);
    this.computed++;
    this.memo.set(uid, { digest, hash });
    return hash;
  }

  forget(uid: string): void {
    this.memo.delete(uid);
  }
}
