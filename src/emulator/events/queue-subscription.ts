// A queue (pull) event subscription of an Event Grid namespace topic, with
// Event Grid's lock semantics:
// - receive hands out up to maxEvents available events, each under a new
//   lock token for the lock duration, its deliveryCount one higher; with
//   nothing available it waits (long poll) until an event arrives or the
//   wait ends;
// - acknowledge removes a locked event; release makes it available again
//   (after a delay); reject dead-letters it; renewLock extends the lock;
//   a token whose lock expired (or that never existed) fails as TokenLost;
// - an expired lock makes the event available again; an event whose lock
//   expires or that is released after maxDeliveryCount deliveries is
//   dead-lettered instead.
// Durations (lock, release delay) are Event Grid's scaled by EventTiming.
import { randomBytes } from "node:crypto";
import type { QueueSubscriptionConfig } from "./event-config.ts";
import type { EventTiming } from "./event-timing.ts";
import type { ReleaseOrder } from "./webhook-subscription.ts";

export type CloudEventWire = Record<string, unknown>;

export interface ReceivedEvent {
  brokerProperties: { lockToken: string; deliveryCount: number };
  event: CloudEventWire;
}

export interface LockTokenResult {
  succeededLockTokens: string[];
  failedLockTokens: Array<{ lockToken: string; error: { code: string; message: string } }>;
}

export interface QueueSubscriptionStatus {
  name: string;
  receiveLockDurationInSeconds: number;
  maxDeliveryCount: number;
  available: number;
  locked: number;
  delayed: number;
  held: number;
  counters: {
    enqueued: number;
    /** Events handed out by receive (first deliveries and redeliveries). */
    delivered: number;
    acknowledged: number;
    released: number;
    rejected: number;
    renewed: number;
    lockExpired: number;
    deadLettered: number;
  };
  deadLetters: Array<{ eventId: string; reason: "Rejected" | "MaxDeliveryCountExceeded"; deliveryCount: number }>;
}

interface Entry {
  seq: number;
  event: CloudEventWire;
  deliveryCount: number;
  state: "available" | "locked" | "delayed";
  lockToken?: string;
  lockExpiresAt?: number;
  timer?: NodeJS.Timeout;
}

interface Waiter {
  maxEvents: number;
  resolve(events: ReceivedEvent[]): void;
  timer: NodeJS.Timeout;
}

const MAX_DEAD_LETTERS_KEPT = 100;
/** An emulator keeps what a test or demo needs, not a cloud's backlog. */
const MAX_QUEUED_EVENTS = 100_000;

export class QueueSubscription {
  readonly name: string;
  readonly #config: QueueSubscriptionConfig;
  readonly #timing: EventTiming;
  readonly #types: Set<string> | undefined;
  readonly #entries = new Map<number, Entry>();
  readonly #byToken = new Map<string, Entry>();
  #waiters: Waiter[] = [];
  #held: CloudEventWire[] | undefined;
  #seq = 0;
  #closed = false;
  readonly #counters = { enqueued: 0, delivered: 0, acknowledged: 0, released: 0, rejected: 0, renewed: 0, lockExpired: 0, deadLettered: 0 };
  readonly #deadLetters: QueueSubscriptionStatus["deadLetters"] = [];

  constructor(config: QueueSubscriptionConfig, timing: EventTiming) {
    this.name = config.name;
    this.#config = config;
    this.#timing = timing;
    this.#types = config.includedEventTypes ? new Set(config.includedEventTypes.map((t) => t.toLowerCase())) : undefined;
  }

  matches(type: unknown): boolean {
    return !this.#types || (typeof type === "string" && this.#types.has(type.toLowerCase()));
  }

  /** Adds a CloudEvent (kept back while held). */
  accept(event: CloudEventWire): void {
    if (this.#closed) return;
    if (this.#held) this.#held.push(event);
    else this.#enqueue(event);
  }

  hold(): void {
    this.#held ??= [];
  }

  releaseHeld(order: ReleaseOrder = "published"): number {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const event of order === "reverse" ? [...held].reverse() : held) this.#enqueue(event);
    return held.length;
  }

  /** Up to maxEvents events under new locks; waits up to maxWaitMs when none is available. */
  receive(maxEvents: number, maxWaitMs: number, cancelled: AbortSignal): Promise<ReceivedEvent[]> {
    const now = this.#take(maxEvents);
    if (now.length > 0 || this.#closed) return Promise.resolve(now);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        maxEvents,
        resolve: (events) => {
          clearTimeout(waiter.timer);
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          resolve(events);
        },
        timer: setTimeout(() => waiter.resolve([]), maxWaitMs),
      };
      waiter.timer.unref();
      this.#waiters.push(waiter);
      // A client that went away must not lock events it will never see.
      cancelled.addEventListener("abort", () => waiter.resolve([]), { once: true });
    });
  }

  acknowledge(tokens: readonly string[]): LockTokenResult {
    return this.#settle(tokens, (entry) => {
      this.#remove(entry);
      this.#counters.acknowledged++;
    });
  }

  /** Makes events available again after delaySeconds (Event Grid's value, scaled). */
  release(tokens: readonly string[], delaySeconds: number): LockTokenResult {
    return this.#settle(tokens, (entry) => {
      this.#unlock(entry);
      this.#counters.released++;
      if (entry.deliveryCount >= this.#maxDeliveryCount()) return this.#deadLetter(entry, "MaxDeliveryCountExceeded");
      if (delaySeconds === 0) return this.#makeAvailable(entry);
      entry.state = "delayed";
      entry.timer = this.#timer(this.#timing.scaled(delaySeconds), () => this.#makeAvailable(entry));
    });
  }

  reject(tokens: readonly string[]): LockTokenResult {
    return this.#settle(tokens, (entry) => {
      this.#unlock(entry);
      this.#counters.rejected++;
      this.#deadLetter(entry, "Rejected");
    });
  }

  renewLocks(tokens: readonly string[]): LockTokenResult {
    return this.#settle(tokens, (entry) => {
      clearTimeout(entry.timer);
      this.#lock(entry, entry.lockToken!);
      this.#counters.renewed++;
    });
  }

  status(): QueueSubscriptionStatus {
    let available = 0;
    let locked = 0;
    let delayed = 0;
    for (const entry of this.#entries.values()) {
      if (entry.state === "available") available++;
      else if (entry.state === "locked") locked++;
      else delayed++;
    }
    return {
      name: this.name,
      receiveLockDurationInSeconds: this.#lockSeconds(),
      maxDeliveryCount: this.#maxDeliveryCount(),
      available,
      locked,
      delayed,
      held: this.#held?.length ?? 0,
      counters: { ...this.#counters },
      deadLetters: this.#deadLetters.map((d) => ({ ...d })),
    };
  }

  close(): void {
    this.#closed = true;
    for (const waiter of [...this.#waiters]) waiter.resolve([]);
    for (const entry of this.#entries.values()) clearTimeout(entry.timer);
  }

  #enqueue(event: CloudEventWire): void {
    if (this.#entries.size >= MAX_QUEUED_EVENTS) {
      // the oldest event goes, as an expired one would
      const oldest = this.#entries.values().next().value!;
      this.#deadLetter(oldest, "MaxDeliveryCountExceeded");
    }
    const entry: Entry = { seq: ++this.#seq, event, deliveryCount: 0, state: "available" };
    this.#entries.set(entry.seq, entry);
    this.#counters.enqueued++;
    this.#serveWaiters();
  }

  #take(maxEvents: number): ReceivedEvent[] {
    const taken: ReceivedEvent[] = [];
    for (const entry of this.#entries.values()) {
      if (taken.length >= maxEvents) break;
      if (entry.state !== "available") continue;
      entry.deliveryCount++;
      this.#lock(entry, randomBytes(24).toString("base64"));
      this.#counters.delivered++;
      taken.push({ brokerProperties: { lockToken: entry.lockToken!, deliveryCount: entry.deliveryCount }, event: entry.event });
    }
    return taken;
  }

  #lock(entry: Entry, token: string): void {
    entry.state = "locked";
    entry.lockToken = token;
    this.#byToken.set(token, entry);
    const durationMs = this.#timing.scaled(this.#lockSeconds());
    entry.lockExpiresAt = Date.now() + durationMs;
    entry.timer = this.#timer(durationMs, () => this.#expire(entry, token));
  }

  #expire(entry: Entry, token: string): void {
    if (entry.state !== "locked" || entry.lockToken !== token) return;
    this.#unlock(entry);
    this.#counters.lockExpired++;
    if (entry.deliveryCount >= this.#maxDeliveryCount()) this.#deadLetter(entry, "MaxDeliveryCountExceeded");
    else this.#makeAvailable(entry);
  }

  #unlock(entry: Entry): void {
    clearTimeout(entry.timer);
    entry.timer = undefined;
    if (entry.lockToken) this.#byToken.delete(entry.lockToken);
    entry.lockToken = undefined;
    entry.lockExpiresAt = undefined;
  }

  #makeAvailable(entry: Entry): void {
    if (!this.#entries.has(entry.seq)) return;
    entry.state = "available";
    entry.timer = undefined;
    this.#serveWaiters();
  }

  #remove(entry: Entry): void {
    this.#unlock(entry);
    this.#entries.delete(entry.seq);
  }

  #deadLetter(entry: Entry, reason: "Rejected" | "MaxDeliveryCountExceeded"): void {
    this.#remove(entry);
    this.#counters.deadLettered++;
    this.#deadLetters.push({ eventId: String(entry.event.id), reason, deliveryCount: entry.deliveryCount });
    if (this.#deadLetters.length > MAX_DEAD_LETTERS_KEPT) this.#deadLetters.shift();
  }

  #settle(tokens: readonly string[], apply: (entry: Entry) => void): LockTokenResult {
    const result: LockTokenResult = { succeededLockTokens: [], failedLockTokens: [] };
    const now = Date.now();
    for (const token of tokens) {
      const entry = this.#byToken.get(token);
      if (!entry || entry.state !== "locked" || entry.lockToken !== token || (entry.lockExpiresAt ?? 0) <= now) {
        if (entry && entry.lockToken === token) this.#expire(entry, token);
        result.failedLockTokens.push({ lockToken: token, error: { code: "TokenLost", message: "The lock token is unknown or its lock has expired." } });
        continue;
      }
      apply(entry);
      result.succeededLockTokens.push(token);
    }
    return result;
  }

  #serveWaiters(): void {
    while (this.#waiters.length > 0) {
      const waiter = this.#waiters[0]!;
      const events = this.#take(waiter.maxEvents);
      if (events.length === 0) return;
      waiter.resolve(events);
    }
  }

  #timer(ms: number, run: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      if (!this.#closed) run();
    }, ms);
    timer.unref();
    return timer;
  }

  #lockSeconds(): number {
    return this.#config.receiveLockDurationInSeconds ?? 60;
  }

  #maxDeliveryCount(): number {
    return this.#config.maxDeliveryCount ?? 10;
  }
}
