// Per-vault request budget: a token bucket that queues requests instead of
// letting them hammer a vault into throttling. Key Vault allows 4,000
// transactions per 10 s per vault; the default budget is half of that. A
// request that could not start before its deadline fails at once with
// RESOURCE_EXHAUSTED instead of waiting in vain.
import { status } from "@grpc/grpc-js";
import { ProviderError } from "../errors.ts";
import { sleep } from "./singleflight.ts";

export interface BudgetOptions {
  /** Requests allowed per window (and burst size). */
  requests: number;
  windowMs: number;
  now?: () => number;
}

export class TokenBucket {
  private tokens: number;
  private updated: number;
  private readonly capacity: number;
  private readonly perMs: number;
  private readonly now: () => number;
  /** Requests waiting right now, for metrics. */
  waiting = 0;

  constructor(options: BudgetOptions) {
    this.capacity = Math.max(1, options.requests);
    this.perMs = this.capacity / Math.max(1, options.windowMs);
    this.now = options.now ?? Date.now;
    this.tokens = this.capacity;
    this.updated = this.now();
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.updated) * this.perMs);
    this.updated = now;
  }

  /** Takes one token if the bucket has one now (no promise, no wait); false leaves the bucket as it was. */
  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /**
   * Takes one token, waiting for it if the bucket is empty. Returns the time
   * waited (ms). Throws when the wait would end after `deadline` (epoch ms).
   */
  async take(deadline: number, signal?: AbortSignal, what = "key vault"): Promise<number> {
    this.refill();
    this.tokens -= 1;
    if (this.tokens >= 0) return 0;
    const wait = Math.ceil(-this.tokens / this.perMs);
    if (this.now() + wait > deadline) {
      this.tokens += 1;
      throw new ProviderError(
        status.RESOURCE_EXHAUSTED,
        "BudgetExhausted",
        `request budget for ${what} is used up: the next request could start in ${wait} ms, after the call's deadline`,
      );
    }
    this.waiting++;
    try {
      await sleep(wait, signal);
    } catch (err) {
      this.tokens += 1;
      throw err;
    } finally {
      this.waiting--;
    }
    return wait;
  }
}
