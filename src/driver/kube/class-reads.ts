// SecretProviderClass reads for publishes and refreshes, with the freshness of
// a GET and less of its cost.
//
// Freshness: every answer comes from a GET sent after the caller asked, so a
// class changed a moment ago is never served stale. A watch could not promise
// that without a round trip of its own: it cannot tell that it has seen every
// change made up to now (the API server's bookmarks come about once a minute,
// and a quorum read to check it is itself a round trip, as costly as the GET).
//
// Cost: callers that ask while a GET for the class is in flight share the next
// GET, sent as soon as that one is answered (kubelet starting a hundred pods of
// one class makes a few GETs, not a hundred); and the copy the last GET found
// is handed out at once as `early`, so a publish can start the provider call
// while its own GET is under way. The publish compares the two before it
// writes anything (node-publish-volume.ts) and asks the provider again when
// the class changed meanwhile.
//
// The copies are bounded: the most recently used classes, each only when its
// parameters are small, and none kept idle for long.
import type { SecretProviderClass } from "../../shared/kube/kube-types.ts";
import { LruCache } from "../../shared/lru.ts";

export interface ClassRead {
  /** The class as the last GET on this node found it, if there was one (it may have changed since). */
  early: SecretProviderClass | undefined;
  /** The class as a GET sent after this read was asked for found it. */
  current: Promise<SecretProviderClass>;
}

export const CLASS_COPIES_MAX = 64;
/**
 * A class larger than this (all of it a tenant may write: parameters,
 * secretObjects, labels, annotations) is read, but no copy is kept: the
 * copies hold at most CLASS_COPIES_MAX times this (4 MiB).
 */
export const CLASS_COPY_MAX_BYTES = 64 * 1024;
const CLASS_COPY_IDLE_MS = 10 * 60_000;

/** The copy kept of a class: without managedFields (the API server's bookkeeping, read by nobody here), or none when too large. */
function copyOf(spc: SecretProviderClass): SecretProviderClass | undefined {
  if (!spc.metadata?.uid || !spc.metadata.resourceVersion) return undefined;
  const { managedFields: _managedFields, ...metadata } = spc.metadata as SecretProviderClass["metadata"] & { managedFields?: unknown };
  const copy = { ...spc, metadata };
  return JSON.stringify(copy).length <= CLASS_COPY_MAX_BYTES ? copy : undefined;
}

/**
 * Whether two reads found the same version of the same object. Without a uid
 * and a resourceVersion (a class from a file in standalone mode) nothing
 * proves it, so they are taken as different.
 */
export function sameClass(a: SecretProviderClass, b: SecretProviderClass): boolean {
  if (!a.metadata.uid || !a.metadata.resourceVersion) return false;
  return a.metadata.uid === b.metadata.uid && a.metadata.resourceVersion === b.metadata.resourceVersion;
}

interface InFlight {
  /** The GET on the wire. */
  sent: Promise<SecretProviderClass>;
  /** The GET that callers arriving meanwhile wait for, sent once `sent` is answered. */
  queued: Promise<SecretProviderClass> | undefined;
}

export class SecretProviderClassReads {
  private readonly get: (namespace: string, name: string) => Promise<SecretProviderClass>;
  private readonly isNotFound: (err: unknown) => boolean;
  private readonly copies: LruCache<string, SecretProviderClass>;
  private readonly inFlight = new Map<string, InFlight>();

  /** `get` reads the class from the API server (a quorum GET); `isNotFound` tells its error for a class that does not exist. */
  constructor(
    get: (namespace: string, name: string) => Promise<SecretProviderClass>,
    isNotFound: (err: unknown) => boolean,
    options: { maxCopies?: number; now?: () => number } = {},
  ) {
    this.get = get;
    this.isNotFound = isNotFound;
    this.copies = new LruCache({ maxEntries: options.maxCopies ?? CLASS_COPIES_MAX, idleMs: CLASS_COPY_IDLE_MS, now: options.now });
  }

  read(namespace: string, name: string): ClassRead {
    const key = `${namespace}/${name}`;
    const early = this.copies.get(key);
    const current = this.fetch(key, namespace, name);
    return { early, current };
  }

  /** How many copies are kept (for the bound's test). */
  get copiesKept(): number {
    return this.copies.size;
  }

  private fetch(key: string, namespace: string, name: string): Promise<SecretProviderClass> {
    const state = this.inFlight.get(key);
    if (!state) {
      const fresh: InFlight = { sent: undefined as unknown as Promise<SecretProviderClass>, queued: undefined };
      this.inFlight.set(key, fresh);
      fresh.sent = this.send(key, fresh, namespace, name);
      return fresh.sent;
    }
    // The GET in flight may have been answered before this call was made:
    // wait for the next one, which every caller arriving meanwhile shares.
    state.queued ??= state.sent.then(settled, settled).then(() => {
      state.queued = undefined;
      state.sent = this.send(key, state, namespace, name);
      return state.sent;
    });
    return state.queued;
  }

  private send(key: string, state: InFlight, namespace: string, name: string): Promise<SecretProviderClass> {
    const sent = this.get(namespace, name);
    sent.then(
      (spc) => {
        const copy = copyOf(spc);
        if (copy) this.copies.set(key, copy);
        else this.copies.delete(key);
      },
      (err: unknown) => {
        if (this.isNotFound(err)) this.copies.delete(key);
      },
    );
    const done = () => {
      if (state.sent === sent && !state.queued) this.inFlight.delete(key);
    };
    sent.then(done, done);
    return sent;
  }
}

const settled = () => undefined;
