// Token requests of every tenant on the node share a few connections to Entra
// ID (connection-bounds.ts: at most MAX_SOCKETS_PER_HOST to one host). Beyond them a
// request used to wait in the agent's one first-come queue, so a namespace
// whose pods brought hundreds of new identities at once put every other
// namespace's first token behind all of theirs. Here at most that many token
// requests are on the wire; the others wait in a queue per tenant (the pod's
// namespace), and the tenants take turns, one request each: another tenant's
// request waits for one answer, not for a burst. A tenant alone still uses
// every connection.

interface Waiter {
  go: () => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class TokenRequestGate {
  private readonly maxInFlight: number;
  private inFlight = 0;
  /** Tenants with requests waiting, in the order of their turns; each tenant's own in arrival order. */
  private readonly waiting = new Map<string, Waiter[]>();

  constructor(maxInFlight: number) {
    this.maxInFlight = maxInFlight;
  }

  /** Requests waiting for a turn (for tests and metrics). */
  get queued(): number {
    let n = 0;
    for (const queue of this.waiting.values()) n += queue.length;
    return n;
  }

  /** Runs `request` when the tenant's turn comes; an abort of `signal` while waiting rejects with its reason. */
  async run<T>(tenant: string, signal: AbortSignal | undefined, request: () => Promise<T>): Promise<T> {
    if (this.inFlight < this.maxInFlight && this.waiting.size === 0) this.inFlight++;
    else await this.turn(tenant, signal);
    try {
      return await request();
    } finally {
      this.release();
    }
  }

  private turn(tenant: string, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { go: resolve, signal, onAbort: undefined };
      let queue = this.waiting.get(tenant);
      if (!queue) this.waiting.set(tenant, (queue = []));
      queue.push(waiter);
      if (!signal) return;
      waiter.onAbort = () => {
        const own = this.waiting.get(tenant);
        const at = own?.indexOf(waiter) ?? -1;
        if (own && at >= 0) {
          own.splice(at, 1);
          if (own.length === 0) this.waiting.delete(tenant);
        }
        reject(signal.reason);
      };
      signal.addEventListener("abort", waiter.onAbort, { once: true });
    });
  }

  /** A request ended: the tenant whose turn it is sends its oldest, then goes to the back. */
  private release(): void {
    this.inFlight--;
    const first = this.waiting.entries().next();
    if (first.done) return;
    const [tenant, queue] = first.value;
    const waiter = queue.shift()!;
    this.waiting.delete(tenant);
    if (queue.length > 0) this.waiting.set(tenant, queue);
    if (waiter.onAbort) waiter.signal?.removeEventListener("abort", waiter.onAbort);
    this.inFlight++;
    waiter.go();
  }
}
