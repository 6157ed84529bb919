// Work of many tenants waiting for one worker, served fairly: the next job is
// the oldest one of the waiting tenant that has used the worker least lately
// (its worker time, halving every half-life), so a tenant whose lists keep
// the worker busy waits behind everyone else, and a tenant that has not used
// it goes next. Waiting jobs are bounded per tenant and in all; when all
// places are taken, the tenant with the most waiting jobs gives up its newest
// one to a tenant with fewer. The tenants remembered are bounded too.
import { LruCache } from "../../shared/lru.ts";

export interface FairQueueOptions {
  /** Jobs one tenant may have waiting. */
  maxPerTenant: number;
  /** Jobs waiting in all. */
  maxTotal: number;
  /** Worker time a tenant used counts half after this long. */
  halfLifeMs: number;
  now?: () => number;
}

interface Usage {
  ms: number;
  at: number;
}

export class FairQueue<J> {
  private readonly waiting = new Map<string, J[]>();
  private readonly usage: LruCache<string, Usage>;
  private readonly options: FairQueueOptions;
  private readonly now: () => number;
  private total = 0;

  constructor(options: FairQueueOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    // a tenant idle for ten half-lives has used (almost) nothing: forgetting it changes no decision
    this.usage = new LruCache({ maxEntries: 4096, idleMs: 10 * options.halfLifeMs, now: this.now });
  }

  get size(): number {
    return this.total;
  }

  /** Jobs `tenant` has waiting. */
  waitingOf(tenant: string): number {
    return this.waiting.get(tenant)?.length ?? 0;
  }

  /**
   * Queues `job`. Returns the job that must be refused instead: `job` itself
   * when its tenant has its share waiting already, or the newest job of the
   * tenant with the most waiting when all places are taken; undefined when
   * nothing is refused.
   */
  push(tenant: string, job: J): J | undefined {
    const own = this.waitingOf(tenant);
    if (own >= this.options.maxPerTenant) return job;
    let displaced: J | undefined;
    if (this.total >= this.options.maxTotal) {
      let longest: string | undefined;
      for (const [t, jobs] of this.waiting) if (longest === undefined || jobs.length > this.waitingOf(longest)) longest = t;
      if (longest === undefined || this.waitingOf(longest) <= own + 1) return job;
      displaced = this.take(longest, "newest");
    }
    const jobs = this.waiting.get(tenant);
    if (jobs) jobs.push(job);
    else this.waiting.set(tenant, [job]);
    this.total++;
    return displaced;
  }

  /** The next job: the oldest of the waiting tenant with the least recent worker time (the longest waiting on a tie). */
  shift(): { tenant: string; job: J } | undefined {
    let best: string | undefined;
    let bestUsage = Infinity;
    for (const tenant of this.waiting.keys()) {
      const used = this.used(tenant);
      if (used < bestUsage) {
        best = tenant;
        bestUsage = used;
      }
    }
    if (best === undefined) return undefined;
    return { tenant: best, job: this.take(best, "oldest") };
  }

  /** Adds worker time to a tenant's account. */
  charge(tenant: string, ms: number): void {
    this.usage.set(tenant, { ms: this.used(tenant) + ms, at: this.now() });
  }

  /** Every waiting job, taken out (for shutdown). */
  drain(): J[] {
    const all = [...this.waiting.values()].flat();
    this.waiting.clear();
    this.total = 0;
    return all;
  }

  private used(tenant: string): number {
    const u = this.usage.get(tenant);
    if (!u) return 0;
    return u.ms * 0.5 ** ((this.now() - u.at) / this.options.halfLifeMs);
  }

  private take(tenant: string, which: "oldest" | "newest"): J {
    const jobs = this.waiting.get(tenant)!;
    const job = which === "oldest" ? jobs.shift()! : jobs.pop()!;
    if (jobs.length === 0) this.waiting.delete(tenant);
    this.total--;
    return job;
  }
}
