// NearExpiry and Expired: Key Vault says an object's current version expires
// soon (30 days before) or has expired. The controller warns where people
// look: a Warning Event on every pod that mounts a class reading the object
// and on every SecretSync of such a class, and the metrics keep the fewest
// days left per object type (a label from a fixed set). Only objects some
// class reads are remembered, at most a bounded number, and an object is
// forgotten once a newer version of it is announced or its entry ages out.
import { LruCache } from "../../shared/lru.ts";
import { SECRET_SYNC_API_VERSION, SECRET_SYNC_KIND, type SecretSync } from "../api/secret-sync.ts";
import type { EventRecorder } from "../kube/event-recorder.ts";
import type { PodStatusIndex } from "../kube/pod-status-index.ts";
import type { ExpirySource } from "../metrics.ts";
import type { ClassRef } from "./class-objects.ts";
import { describeObject, type KeyVaultEvent } from "./key-vault-event.ts";

const DAY_MS = 86_400_000;
/** Key Vault announces NearExpiry this long before; used when an event carries no EXP. */
const NEAR_EXPIRY_DAYS = 30;
/** Events sent per notice, at most: pods and SecretSyncs beyond it are counted, not told. */
const MAX_EVENTS_PER_NOTICE = 500;

interface Expiring {
  objectType: string;
  state: "near_expiry" | "expired";
  /** Expiry time in ms since the epoch (estimated when the event had no EXP). */
  expiresAt: number;
}

export interface ExpiryOptions {
  events: EventRecorder;
  podStatuses: PodStatusIndex;
  secretSyncsOfClass(ref: ClassRef): SecretSync[];
  /** Objects remembered at most. */
  maxObjects: number;
  now?: () => number;
}

const objectKey = (vault: string, name: string) => `${vault}\0${name.toLowerCase()}`;
const isoDay = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

export class ExpiryNotices implements ExpirySource {
  private readonly options: ExpiryOptions;
  private readonly now: () => number;
  private readonly expiring: LruCache<string, Expiring>;

  constructor(options: ExpiryOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.expiring = new LruCache({ maxEntries: options.maxObjects, idleMs: 60 * DAY_MS, now: this.now });
  }

  get size(): number {
    return this.expiring.size;
  }

  /** A new version replaces the one that was expiring. */
  superseded(vault: string, objectName: string): void {
    this.expiring.delete(objectKey(vault, objectName));
  }

  /** Warns on the pods and SecretSyncs of these classes; returns how many Events were sent. */
  async notice(event: KeyVaultEvent, classes: readonly ClassRef[]): Promise<number> {
    const expired = event.kind === "Expired";
    const now = this.now();
    const expiresAt = event.expires !== undefined ? event.expires * 1000 : expired ? now : now + NEAR_EXPIRY_DAYS * DAY_MS;
    const objectType = (event.objectType ?? "Secret").toLowerCase();
    this.expiring.set(objectKey(event.vault, event.objectName!), { objectType, state: expired ? "expired" : "near_expiry", expiresAt });

    const days = Math.floor((expiresAt - now) / DAY_MS);
    const what = describeObject(event);
    const reason = expired ? "KeyVaultObjectExpired" : "KeyVaultObjectNearExpiry";
    const when = expired ? `expired on ${isoDay(expiresAt)}` : `expires on ${isoDay(expiresAt)} (in ${Math.max(days, 0)} days)`;
    let sent = 0;
    const tell = async (object: Parameters<EventRecorder["recordFor"]>[0], via: string) => {
      if (sent >= MAX_EVENTS_PER_NOTICE) return;
      sent++;
      await this.options.events.recordFor(object, "Warning", reason, `${what} ${when}; ${via}: add a new version in Key Vault`);
    };
    for (const ref of classes) {
      const via = `read through secretproviderclass ${ref.namespace}/${ref.name}`;
      for (const ps of this.options.podStatuses.ofClass(ref.namespace, ref.name)) {
        const owner = ps.metadata.ownerReferences?.[0];
        await tell({ apiVersion: "v1", kind: "Pod", name: ps.status.podName, namespace: ref.namespace, uid: owner?.kind === "Pod" ? owner.uid : undefined }, via);
      }
      for (const ss of this.options.secretSyncsOfClass(ref)) {
        await tell({ apiVersion: SECRET_SYNC_API_VERSION, kind: SECRET_SYNC_KIND, name: ss.metadata.name, namespace: ref.namespace, uid: ss.metadata.uid }, via);
      }
    }
    return sent;
  }

  *fewestDaysLeft(): Iterable<[string, number]> {
    const now = this.now();
    const fewest = new Map<string, number>();
    this.expiring.sweep();
    for (const key of [...this.expiring.keys()]) {
      const e = this.expiring.peek(key);
      if (!e) continue;
      const days = Math.floor((e.expiresAt - now) / DAY_MS);
      fewest.set(e.objectType, Math.min(days, fewest.get(e.objectType) ?? Number.POSITIVE_INFINITY));
    }
    yield* fewest;
  }

  *counts(): Iterable<{ objectType: string; state: "near_expiry" | "expired"; count: number }> {
    const counts = new Map<string, number>();
    const now = this.now();
    for (const key of [...this.expiring.keys()]) {
      const e = this.expiring.peek(key);
      if (!e) continue;
      // A near-expiry object whose time has come counts as expired.
      const state = e.state === "expired" || e.expiresAt <= now ? "expired" : "near_expiry";
      const k = `${e.objectType}\0${state}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    for (const [k, count] of counts) {
      const [objectType, state] = k.split("\0") as [string, "near_expiry" | "expired"];
      yield { objectType, state, count };
    }
  }
}
