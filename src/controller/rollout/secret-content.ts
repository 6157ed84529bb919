// Tells when the data of a Secret a SecretSync writes really changed. Every
// successful reconcile reports the data it built; the controller keeps, per
// SecretSync, an HMAC of it under a key that lives only in this process
// (cheap, and useless to anyone else), and the object versions it came
// from. When the HMAC differs from the last one, the Secret's content
// changed: the hash put on a workload's pod template is then derived with
// PBKDF2 salted by the SecretSync's uid, as upstream's syncHash is, so the
// annotation does not make guessing a weak secret any easier than the
// SecretSync's own status already does. A rewrite with the same data (a new
// generation of the SecretSync, a rotation that found nothing new) is no
// change. The memory is bounded by the SecretSyncs that exist.
import { createHmac, pbkdf2, randomBytes } from "node:crypto";
import { promisify } from "node:util";
import type { ObjectVersion } from "../../shared/kube/kube-types.ts";
import { LruCache } from "../../shared/lru.ts";
import type { SecretSync } from "../api/secret-sync.ts";
import { changedVersions } from "./restarter.ts";

const pbkdf2Async = promisify(pbkdf2);
const ROUNDS = 100_000;

export interface SecretChange {
  namespace: string;
  secret: string;
  hash: string;
  /** "secret/db-password version 3f2a..." */
  versions: string;
  /** The data before the change was seen by this process. */
  known: boolean;
}

function canonical(data: ReadonlyMap<string, Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const key of [...data.keys()].sort()) {
    const value = data.get(key)!;
    parts.push(Buffer.from(`${key.length}:${key}${value.length}:`), value);
  }
  return Buffer.concat(parts);
}

export class SecretContents {
  private readonly key = randomBytes(32);
  private readonly seen: LruCache<string, { mac: string; objects: readonly ObjectVersion[] }>;

  constructor(options: { maxEntries: number }) {
    this.seen = new LruCache({ maxEntries: options.maxEntries, idleMs: Number.POSITIVE_INFINITY });
  }

  /**
   * Records the data a reconcile of `ss` built. Resolves with the change when
   * the data differs from what was recorded before, and `written` says the
   * Secret was updated with it; or, with `firstSeen`, when this process had
   * no record of it yet (a leader taking over: the Secret may have changed
   * since a workload was last restarted for it).
   */
  async observe(ss: SecretSync, data: ReadonlyMap<string, Buffer>, objects: readonly ObjectVersion[], written: boolean, firstSeen = false): Promise<SecretChange | undefined> {
    const uid = ss.metadata.uid ?? "";
    const bytes = canonical(data);
    const mac = createHmac("sha256", this.key).update(bytes).digest("base64");
    const before = this.seen.get(uid);
    this.seen.set(uid, { mac, objects });
    if (before?.mac === mac || !(written || (firstSeen && before === undefined))) return undefined;
    const derived = await pbkdf2Async(bytes, Buffer.from(uid, "utf8"), ROUNDS, 16, "sha512");
    return {
      namespace: ss.metadata.namespace ?? "",
      secret: ss.metadata.name,
      hash: derived.toString("hex"),
      versions: before ? changedVersions(before.objects, objects) : "",
      known: before !== undefined,
    };
  }

  forget(uid: string): void {
    this.seen.delete(uid);
  }
}
