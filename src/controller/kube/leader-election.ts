// Leader election on a coordination.k8s.io/v1 Lease, as client-go's
// leaderelection package does it, so two replicas never sync at the same
// time: the holder renews the Lease every retry period; another replica takes
// it over only after it has seen the same renewal for a whole lease duration
// (by its own clock: clocks of two nodes are never compared). A leader that
// cannot renew within the renew deadline stops leading. On shutdown the
// leader hands the Lease back so the other replica takes over at once.
import type { Logger } from "../../shared/logger.ts";
import { describeApiError, httpStatusOf } from "../../shared/kube/api-errors.ts";
import { abortableSleep as sleep } from "../../shared/abort.ts";
import type { KubeRest } from "../../shared/kube/kube-rest.ts";

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  /** This replica: "<pod name>_<pod uid>". */
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

/** Kubernetes MicroTime: RFC 3339 with microseconds. */
const microTime = (d: Date) => d.toISOString().replace(/Z$/, "000Z");

export class LeaderElector {
  private readonly rest: KubeRest;
  private readonly logger: Logger;
  private readonly options: LeaderElectionOptions;
  private observed: { record: string; at: number } | undefined;
  private leading = false;
  private lastRenew = 0;
  private lastContact = 0;

  constructor(rest: KubeRest, logger: Logger, options: LeaderElectionOptions) {
    this.rest = rest;
    this.logger = logger;
    this.options = options;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** When the API server last answered a Lease call (ms since epoch); 0 before the first answer. */
  get lastContactAt(): number {
    return this.lastContact;
  }

  private get path(): string {
    const { namespace, name } = this.options;
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases/${encodeURIComponent(name)}`;
  }

  /**
   * Campaigns until this replica leads, then renews until it cannot (or the
   * signal aborts). onStarted runs once leadership is won; the returned
   * promise settles when leadership is over.
   */
  async run(signal: AbortSignal, onStarted: () => void): Promise<void> {
    while (!signal.aborted && !this.leading) {
      if (await this.tryAcquireOrRenew()) {
        this.leading = true;
        this.lastRenew = Date.now();
        this.logger.info({ lease: `${this.options.namespace}/${this.options.name}`, identity: this.options.identity }, "became leader");
        onStarted();
        break;
      }
      await sleep(this.jittered(this.options.retryPeriodMs), signal);
    }
    while (!signal.aborted && this.leading) {
      await sleep(this.options.retryPeriodMs, signal);
      if (signal.aborted) break;
      if (await this.tryAcquireOrRenew()) {
        this.lastRenew = Date.now();
      } else if (Date.now() - this.lastRenew > this.options.renewDeadlineMs) {
        this.leading = false;
        this.logger.error({ lease: `${this.options.namespace}/${this.options.name}` }, "leadership lost: the Lease could not be renewed within the renew deadline");
      }
    }
  }

  /** Gives the Lease back (shutdown), so the other replica need not wait for it to expire. */
  async release(): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.rest.request<Lease>({ method: "GET", path: this.path, what: "get lease" });
      if (lease.spec?.holderIdentity !== this.options.identity) return;
      const now = new Date();
      await this.rest.request({
        method: "PUT",
        path: this.path,
        body: { ...lease, spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime(now), acquireTime: microTime(now) } },
        contentType: "application/json",
        what: "release lease",
      });
      this.logger.info({ lease: `${this.options.namespace}/${this.options.name}` }, "leadership released");
    } catch (err) {
      this.logger.warn({ error: describeApiError(err) }, "could not release the Lease; the other replica takes over when it expires");
    }
  }

  private jittered(ms: number): number {
    return ms * (1 + Math.random() * 0.2);
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const { identity } = this.options;
    const spec: LeaseSpec = { holderIdentity: identity, leaseDurationSeconds: Math.ceil(this.options.leaseDurationMs / 1000), renewTime: microTime(now) };
    let lease: Lease;
    try {
      lease = await this.rest.request<Lease>({ method: "GET", path: this.path, what: "get lease", timeoutMs: this.options.renewDeadlineMs });
      this.lastContact = Date.now();
    } catch (err) {
      if (httpStatusOf(err) !== 404) {
        this.logger.warn({ error: describeApiError(err) }, "cannot read the leader election Lease");
        return false;
      }
      this.lastContact = Date.now();
      try {
        await this.rest.request({
          method: "POST",
          path: `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.options.namespace)}/leases`,
          body: { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: this.options.name, namespace: this.options.namespace }, spec: { ...spec, acquireTime: microTime(now), leaseTransitions: 0 } },
          contentType: "application/json",
          what: "create lease",
          timeoutMs: this.options.renewDeadlineMs,
        });
        return true;
      } catch (createErr) {
        if (httpStatusOf(createErr) !== 409) this.logger.warn({ error: describeApiError(createErr) }, "cannot create the leader election Lease");
        return false;
      }
    }

    const current = lease.spec ?? {};
    const record = JSON.stringify([current.holderIdentity, current.renewTime, current.acquireTime, current.leaseDurationSeconds]);
    if (this.observed?.record !== record) this.observed = { record, at: Date.now() };
    const heldByOther = Boolean(current.holderIdentity) && current.holderIdentity !== identity;
    const durationMs = (current.leaseDurationSeconds ?? Math.ceil(this.options.leaseDurationMs / 1000)) * 1000;
    if (heldByOther && Date.now() < this.observed.at + durationMs) return false;

    const next: LeaseSpec =
      current.holderIdentity === identity
        ? { ...current, ...spec }
        : { ...current, ...spec, acquireTime: microTime(now), leaseTransitions: (current.leaseTransitions ?? 0) + (current.holderIdentity ? 1 : 0) };
    try {
      // The resourceVersion makes two replicas racing for an expired Lease
      // conflict: only one update wins.
      await this.rest.request({ method: "PUT", path: this.path, body: { ...lease, spec: next }, contentType: "application/json", what: "update lease", timeoutMs: this.options.renewDeadlineMs });
      this.observed = undefined;
      return true;
    } catch (err) {
      if (httpStatusOf(err) !== 409) this.logger.warn({ error: describeApiError(err) }, "cannot update the leader election Lease");
      return false;
    }
  }
}
