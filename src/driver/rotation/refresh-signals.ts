// Refresh requests on status objects: the controller, told by Key Vault that
// an object has a new version, annotates one SecretProviderClassPodStatus of
// the class on each node that mounts it:
//   secrets-store.csi.k8s.io/refresh-requested-at=<new value>
//   secrets-store.csi.k8s.io/refresh-version=<object version> (optional)
// The driver watches only the status objects labelled with its own node. A
// new request refreshes every volume of that namespace and class on this
// node, once per refresh group (same identity, same request), so Key Vault
// is read once per (identity, object) per node however many pods mount it;
// a group whose volumes already hold the version is left alone, so repeated
// or late requests cost nothing.
//
// A status object is writable by whoever may edit that namespace's objects,
// so the annotation is trusted for nothing but timing: it never changes what
// is read (the volume's own class, identity and request are used, as at any
// refresh), it reaches only the namespace of the object it is on, and each
// refresh group takes at most a burst of BURST requests and then one per
// REFILL_MS; requests beyond that are merged into one refresh when the rate
// allows. What the driver remembers is bounded by the status objects and
// refresh groups of its node.
import type { DriverContext } from "../context.ts";
import type { KubeClient } from "../kube/kube-client.ts";
import { NODE_NAME_LABEL, REFRESH_REQUESTED_AT_ANNOTATION, REFRESH_VERSION_ANNOTATION, type SecretProviderClassPodStatus } from "../../shared/kube/kube-types.ts";
import type { MountedVolume } from "../volume/mounted-volumes.ts";
import { groupVolumes } from "./refresh-groups.ts";

export const BURST = 10;
export const REFILL_MS = 2_000;
/** A request found at start-up is acted on only when this recent (older ones were for the previous run). */
const FRESH_AT_START_MS = 10 * 60_000;
const MAX_VALUE_LENGTH = 256;
/** Status objects remembered at most (far more than a node mounts). */
const MAX_SEEN = 10_000;

export type RefreshGroup = (volume: MountedVolume) => Promise<unknown>;

interface Bucket {
  tokens: number;
  at: number;
  timer?: NodeJS.Timeout;
  /** The versions asked for while the group waited for the rate to allow a refresh. */
  waiting?: { namespace: string; className: string; version: string | undefined };
}

export class RefreshSignals {
  private readonly ctx: DriverContext;
  private readonly kube: KubeClient;
  private readonly refresh: RefreshGroup;
  private readonly seen = new Map<string, string>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly abort = new AbortController();
  private readonly now: () => number;
  private stopped = false;
  /** Counts for tests and logs: groups refreshed, found current, held by the rate. */
  readonly counts = { refreshed: 0, current: 0, limited: 0 };

  constructor(ctx: DriverContext, kube: KubeClient, refresh: RefreshGroup, now: () => number = Date.now) {
    this.ctx = ctx;
    this.kube = kube;
    this.refresh = refresh;
    this.now = now;
  }

  async start(): Promise<void> {
    const selector = `${NODE_NAME_LABEL}=${this.ctx.options.nodeId}`;
    let first = true;
    while (!this.stopped) {
      try {
        const list = await this.kube.listPodStatusesForWatch(selector);
        for (const ps of list.items) this.observe(ps, first);
        first = false;
        // Until the server ends the watch (timeout, 410 Gone); then list again.
        await this.kube.watchPodStatuses(
          selector,
          list.metadata?.resourceVersion,
          ({ type, object }) => {
            if (type === "ADDED" || type === "MODIFIED") this.observe(object, false);
            if (type === "DELETED") this.seen.delete(keyOf(object));
          },
          this.abort.signal,
        );
      } catch (err) {
        this.ctx.logger.debug({ error: String(err) }, "status object watch failed; retrying");
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, 2000));
    }
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
    for (const b of this.buckets.values()) if (b.timer) clearTimeout(b.timer);
  }

  /** A status object as listed or watched; `initial`: the first list after start. */
  observe(ps: SecretProviderClassPodStatus, initial: boolean): void {
    const key = keyOf(ps);
    const at = ps.metadata.annotations?.[REFRESH_REQUESTED_AT_ANNOTATION];
    const version = ps.metadata.annotations?.[REFRESH_VERSION_ANNOTATION] || undefined;
    if (!at || at.length > MAX_VALUE_LENGTH || (version?.length ?? 0) > MAX_VALUE_LENGTH) {
      this.seen.delete(key);
      return;
    }
    const value = `${at}\0${version ?? ""}`;
    if (this.seen.get(key) === value) return;
    if (!this.seen.has(key) && this.seen.size >= MAX_SEEN) this.seen.delete(this.seen.keys().next().value!);
    this.seen.set(key, value);
    if (initial) {
      // Asked before this driver started: only a recent request still matters.
      const asked = Date.parse(at);
      if (!Number.isFinite(asked) || this.now() - asked > FRESH_AT_START_MS) return;
    }
    const namespace = ps.metadata.namespace ?? "";
    const className = ps.status?.secretProviderClassName ?? "";
    this.ctx.logger.info({ statusObject: `${namespace}/${ps.metadata.name}`, version }, "refresh requested on a status object");
    this.request(namespace, className, version);
  }

  /** Refreshes the groups of this namespace and class on this node that lack `version`. */
  request(namespace: string, className: string, version: string | undefined): void {
    const volumes = this.ctx.volumes.all().filter((v) => v.pod.namespace === namespace && v.spcName === className);
    for (const [groupKey, members] of groupVolumes(volumes)) {
      if (version !== undefined && members.every((v) => v.objectVersions.some((o) => o.version === version))) {
        this.counts.current++;
        continue;
      }
      if (!this.take(groupKey)) {
        this.hold(groupKey, { namespace, className, version });
        continue;
      }
      this.counts.refreshed++;
      // The reconciler runs one refresh per group at a time; a request
      // during one joins it, and that one may have asked the provider before
      // this version existed. Marked requested, the group is due again at the
      // next tick unless a refresh starting from now clears the mark.
      for (const v of members) v.refreshRequested = true;
      void this.refresh(members[0]!).catch((err: unknown) => this.ctx.logger.warn({ error: String(err) }, "requested refresh failed"));
    }
  }

  /** Takes a token of the group's bucket; false when the rate is used up. */
  private take(groupKey: string): boolean {
    const now = this.now();
    let b = this.buckets.get(groupKey);
    if (!b) {
      this.prune(now);
      b = { tokens: BURST, at: now };
      this.buckets.set(groupKey, b);
    }
    b.tokens = Math.min(BURST, b.tokens + Math.floor((now - b.at) / REFILL_MS));
    if (b.tokens < BURST) b.at += Math.floor((now - b.at) / REFILL_MS) * REFILL_MS;
    else b.at = now;
    if (b.tokens === 0) return false;
    b.tokens--;
    return true;
  }

  /** One deferred refresh per group, when the next token comes; later requests merge into it. */
  private hold(groupKey: string, what: Bucket["waiting"]): void {
    this.counts.limited++;
    const b = this.buckets.get(groupKey)!;
    // Two waiting requests for different versions: refresh whatever the
    // group holds, so that neither version is skipped as already there.
    b.waiting = b.waiting && b.waiting.version !== what!.version ? { ...what!, version: undefined } : what;
    if (b.timer) return;
    const wait = Math.max(0, b.at + REFILL_MS - this.now());
    this.ctx.logger.info({ namespace: what!.namespace, secretProviderClass: what!.className, inMs: wait }, "refresh requests arrive faster than allowed; the next one waits");
    b.timer = setTimeout(() => {
      b.timer = undefined;
      const waiting = b.waiting;
      b.waiting = undefined;
      if (waiting && !this.stopped) this.request(waiting.namespace, waiting.className, waiting.version);
    }, wait);
    b.timer.unref();
  }

  /** Forgets full buckets of groups that may be gone, when there are many. */
  private prune(now: number): void {
    if (this.buckets.size < 1000) return;
    for (const [k, b] of this.buckets) if (!b.timer && now - b.at >= BURST * REFILL_MS) this.buckets.delete(k);
  }
}

const keyOf = (ps: SecretProviderClassPodStatus) => `${ps.metadata.namespace ?? ""}/${ps.metadata.name}`;
