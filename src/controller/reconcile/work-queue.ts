// The queue of SecretSyncs to reconcile, as client-go's work queue behaves:
// a key is queued at most once, never processed by two workers at the same
// time (added again while it runs, it runs once more afterwards), and can be
// added after a delay (retries with back-off). Each entry carries the time
// after which the provider's answer must have been fetched ("freshAfter"),
// the most demanding of the requests merged into it. A caller may wait for
// the outcome of the next run of a key (an event waits for the syncs it
// caused). Keys are SecretSyncs that exist, so the queue grows with them and
// no further.
export interface WorkQueueOptions {
  concurrency: number;
  /** Reconciles one key; the answer may ask for another run after a delay. */
  process(key: string, freshAfter: number): Promise<{ retryAfterMs?: number }>;
  onError?(key: string, err: unknown): void;
}

export class WorkQueue {
  private readonly options: WorkQueueOptions;
  private readonly queued = new Map<string, number>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly dirty = new Map<string, number>();
  private readonly delayed = new Map<string, { timer: NodeJS.Timeout; at: number; freshAfter: number }>();
  private stopped = false;
  private started = false;
  private idleWaiters: Array<() => void> = [];
  /** Callers waiting for the next run of a key that starts after they asked. */
  private readonly outcomeWaiters = new Map<string, Array<(ok: boolean) => void>>();

  constructor(options: WorkQueueOptions) {
    this.options = options;
  }

  /** Keys waiting (not running, not delayed). */
  get depth(): number {
    return this.queued.size;
  }

  get delayedCount(): number {
    return this.delayed.size;
  }

  get runningCount(): number {
    return this.running.size;
  }

  start(): void {
    this.started = true;
    this.pump();
  }

  add(key: string, freshAfter = 0): void {
    if (this.stopped) return;
    const delayed = this.delayed.get(key);
    if (delayed) {
      clearTimeout(delayed.timer);
      this.delayed.delete(key);
      freshAfter = Math.max(freshAfter, delayed.freshAfter);
    }
    if (this.running.has(key)) {
      this.dirty.set(key, Math.max(freshAfter, this.dirty.get(key) ?? 0));
      return;
    }
    this.queued.set(key, Math.max(freshAfter, this.queued.get(key) ?? 0));
    this.pump();
  }

  addAfter(key: string, delayMs: number, freshAfter = 0): void {
    if (this.stopped) return;
    if (delayMs <= 0) return this.add(key, freshAfter);
    if (this.queued.has(key)) return;
    const at = Date.now() + delayMs;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) {
      existing.freshAfter = Math.max(existing.freshAfter, freshAfter);
      return;
    }
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      const entry = this.delayed.get(key);
      if (entry?.timer !== timer) return;
      this.delayed.delete(key);
      this.add(key, entry.freshAfter);
    }, delayMs);
    timer.unref();
    this.delayed.set(key, { timer, at, freshAfter });
  }

  /**
   * Queues a key and resolves after the run that serves this request: true
   * when it succeeded (or the key went away), false when it failed and is
   * retried with back-off, or the queue stopped.
   */
  addAndWait(key: string, freshAfter = 0): Promise<boolean> {
    if (this.stopped) return Promise.resolve(false);
    const done = new Promise<boolean>((resolve) => {
      const list = this.outcomeWaiters.get(key);
      if (list) list.push(resolve);
      else this.outcomeWaiters.set(key, [resolve]);
    });
    this.add(key, freshAfter);
    return done;
  }

  /** Forgets a key (its object is gone); a run in progress finishes. */
  remove(key: string): void {
    this.settle(this.outcomeWaiters.get(key), true);
    this.outcomeWaiters.delete(key);
    this.queued.delete(key);
    this.dirty.delete(key);
    const delayed = this.delayed.get(key);
    if (delayed) clearTimeout(delayed.timer);
    this.delayed.delete(key);
  }

  /** Resolves when nothing is queued or running (delayed keys do not count). */
  idle(): Promise<void> {
    if (this.queued.size === 0 && this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Takes no more work and waits for the runs in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.queued.clear();
    this.dirty.clear();
    for (const list of this.outcomeWaiters.values()) this.settle(list, false);
    this.outcomeWaiters.clear();
    await Promise.all(this.running.values());
  }

  private pump(): void {
    if (!this.started || this.stopped) return;
    while (this.running.size < this.options.concurrency && this.queued.size > 0) {
      const [key, freshAfter] = this.queued.entries().next().value as [string, number];
      this.queued.delete(key);
      const waiters = this.outcomeWaiters.get(key);
      this.outcomeWaiters.delete(key);
      this.running.set(key, this.run(key, freshAfter, waiters));
    }
    if (this.queued.size === 0 && this.running.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private async run(key: string, freshAfter: number, waiters: Array<(ok: boolean) => void> | undefined): Promise<void> {
    let retryAfterMs: number | undefined;
    let ok = false;
    try {
      ({ retryAfterMs } = await this.options.process(key, freshAfter));
      ok = retryAfterMs === undefined;
    } catch (err) {
      this.options.onError?.(key, err);
    }
    this.running.delete(key);
    this.settle(waiters, ok);
    const again = this.dirty.get(key);
    if (again !== undefined) {
      this.dirty.delete(key);
      this.add(key, again);
    } else if (retryAfterMs !== undefined) {
      this.addAfter(key, retryAfterMs);
    }
    this.pump();
  }

  private settle(waiters: Array<(ok: boolean) => void> | undefined, ok: boolean): void {
    for (const resolve of waiters ?? []) resolve(ok);
  }
}
