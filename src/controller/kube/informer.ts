// A list-and-watch cache of one resource across all namespaces, as client-go's
// informers keep one: a paginated list, then a watch from its resourceVersion,
// re-watched when the server ends it and re-listed when the version is too old
// (410 Gone). Handlers hear every add, update and delete, including the
// differences a re-list finds. Objects are kept without managedFields and the
// last-applied annotation, which the controller never reads.
import type { Logger } from "../../shared/logger.ts";
import { describeApiError, httpStatusOf } from "../../shared/kube/api-errors.ts";
import { abortableSleep as sleep } from "../../shared/abort.ts";
import type { KubeRest, WatchEvent } from "../../shared/kube/kube-rest.ts";

export interface Watched {
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    annotations?: Record<string, string>;
    managedFields?: unknown;
  };
}

export interface InformerHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(old: T, obj: T): void;
  onDelete?(obj: T): void;
}

export interface InformerOptions<T> {
  /** The cluster-wide list path, e.g. /apis/secret-sync.x-k8s.io/v1alpha1/secretsyncs. */
  path: string;
  /** For logs and errors: "secretsyncs". */
  resource: string;
  handlers: InformerHandlers<T>;
  pageSize?: number;
  /** How long the server keeps one watch open (randomised by up to a half, as client-go does). */
  watchSeconds?: number;
  /** Keeps only what the controller reads of each object (applied before handlers see it). */
  transform?: (obj: T) => T;
}

const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";
const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;

interface ListAnswer<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
}

export const objectKey = (obj: Watched): string => `${obj.metadata.namespace ?? ""}/${obj.metadata.name}`;

function trimmed<T extends Watched>(obj: T): T {
  delete obj.metadata.managedFields;
  if (obj.metadata.annotations && LAST_APPLIED in obj.metadata.annotations) {
    const annotations = { ...obj.metadata.annotations };
    delete annotations[LAST_APPLIED];
    obj.metadata.annotations = annotations;
  }
  return obj;
}

export class Informer<T extends Watched> {
  private readonly rest: KubeRest;
  private readonly logger: Logger;
  private readonly options: InformerOptions<T>;
  private readonly items = new Map<string, T>();
  private resourceVersion = "";
  private synced = false;
  private readonly syncWaiters: Array<() => void> = [];
  /** Lists done since start (the first one included). */
  lists = 0;

  constructor(rest: KubeRest, logger: Logger, options: InformerOptions<T>) {
    this.rest = rest;
    this.logger = logger;
    this.options = options;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  get size(): number {
    return this.items.size;
  }

  get(namespace: string, name: string): T | undefined {
    return this.items.get(`${namespace}/${name}`);
  }

  getByKey(key: string): T | undefined {
    return this.items.get(key);
  }

  values(): IterableIterator<T> {
    return this.items.values();
  }

  /**
   * Puts an object the controller itself just wrote (a status update) in the
   * cache, unless a newer version arrived meanwhile: `basedOn` is the
   * resourceVersion the write started from.
   */
  storeOwnWrite(obj: T, basedOn: string | undefined): void {
    const key = objectKey(obj);
    const current = this.items.get(key);
    if (!current || current.metadata.resourceVersion !== basedOn) return;
    this.items.set(key, this.trim(obj));
  }

  private trim(obj: T): T {
    const kept = trimmed(obj);
    return this.options.transform ? this.options.transform(kept) : kept;
  }

  /** Resolves once the first list is in the cache. */
  waitForSync(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /** Lists and watches until the signal aborts; never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (!this.resourceVersion) await this.list(signal);
        failures = 0;
        await this.watch(signal);
      } catch (err) {
        if (signal.aborted) return;
        if (httpStatusOf(err) === 410) {
          this.logger.info({ resource: this.options.resource }, "watch too old; listing again");
          this.resourceVersion = "";
          continue;
        }
        failures++;
        const delay = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** Math.min(failures, 10));
        this.logger.warn({ resource: this.options.resource, error: describeApiError(err), retryInMs: delay }, "list or watch failed");
        await sleep(delay, signal);
      }
    }
  }

  private async list(signal: AbortSignal): Promise<void> {
    const fresh = new Map<string, T>();
    let next: string | undefined;
    let version = "";
    do {
      if (signal.aborted) return;
      const page = await this.rest.request<ListAnswer<T>>({
        method: "GET",
        path: this.options.path,
        query: { limit: String(this.options.pageSize ?? 500), continue: next },
        what: `list ${this.options.resource}`,
        timeoutMs: 60_000,
      });
      for (const item of page.items ?? []) fresh.set(objectKey(item), this.trim(item));
      next = page.metadata?.continue || undefined;
      version = page.metadata?.resourceVersion ?? version;
    } while (next);
    this.lists++;
    const { onAdd, onUpdate, onDelete } = this.options.handlers;
    for (const [key, old] of this.items) {
      if (!fresh.has(key)) {
        this.items.delete(key);
        onDelete?.(old);
      }
    }
    for (const [key, obj] of fresh) {
      const old = this.items.get(key);
      this.items.set(key, obj);
      if (!old) onAdd?.(obj);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) onUpdate?.(old, obj);
    }
    this.resourceVersion = version;
    if (!this.synced) {
      this.synced = true;
      for (const resolve of this.syncWaiters.splice(0)) resolve();
    }
  }

  private async watch(signal: AbortSignal): Promise<void> {
    const base = this.options.watchSeconds ?? 300;
    const seconds = Math.round(base * (1 + Math.random() / 2));
    // The server ends the watch after `seconds`; a connection that died
    // silently is ended here a minute later.
    const local = new AbortController();
    const onAbort = () => local.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => local.abort(), (seconds + 60) * 1000);
    let gone: unknown;
    try {
      await this.rest.watch<T | { code?: number; message?: string }>(
        this.options.path,
        { resourceVersion: this.resourceVersion, allowWatchBookmarks: "true", timeoutSeconds: String(seconds) },
        (event) => {
          if (gone) return;
          if (event.type === "ERROR") {
            const status = event.object as { code?: number; message?: string };
            gone = Object.assign(new Error(status.message ?? "watch error"), { code: status.code });
            local.abort();
            return;
          }
          this.apply(event as WatchEvent<T>);
        },
        local.signal,
      );
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
    if (gone) throw gone;
  }

  private apply(event: WatchEvent<T>): void {
    const obj = event.object;
    if (obj.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
    if (event.type === "BOOKMARK") return;
    const key = objectKey(obj);
    const old = this.items.get(key);
    const { onAdd, onUpdate, onDelete } = this.options.handlers;
    if (event.type === "DELETED") {
      this.items.delete(key);
      if (old) onDelete?.(old);
      return;
    }
    const kept = this.trim(obj);
    this.items.set(key, kept);
    if (old) onUpdate?.(old, kept);
    else onAdd?.(kept);
  }
}
