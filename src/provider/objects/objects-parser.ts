// Parsing the `objects` YAML without holding the event loop. A usual list
// (a few KiB) is parsed in place in well under a millisecond; a large one
// (up to --max-request-bytes) can cost a second of CPU, which would stall
// every other tenant's mount and the health probe, so it is parsed in a
// worker thread (objects-worker.ts), one at a time, with a deadline and a heap
// limit; the thread stops after 10 s without work, which gives back its
// memory soon after a burst ends.
//
// Large lists wait for the worker in a fair queue by tenant (the pod's
// namespace, fair-queue.ts): the tenant that used the worker least lately goes
// next, so a tenant sending costly lists delays its own, not another's. What
// one parse may cost is bounded before it starts (yaml-budget.ts), and a parse
// that still runs out of the worker's heap is refused as InvalidArgument
// naming that limit.
//
// Pods of one Deployment send the same list on every mount and every
// rotation; parsing it took about a fifth of the provider's CPU per warm mount
// (2.6 ms of 13 here). So results are cached, frozen, by a hash of the list
// and the limits, for lists up to 16 KiB: 64 of them hold at most a few MiB;
// and identical lists parsed at the same time share one parse.
import { createHash } from "node:crypto";
import { Worker } from "node:worker_threads";
import { status } from "@grpc/grpc-js";
import { deadlineExceeded, ProviderError, type ErrorClass } from "../errors.ts";
import { LruCache } from "../../shared/lru.ts";
import { FairQueue } from "./fair-queue.ts";
import type { ObjectLimits, ParseObjectsResult } from "./objects.ts";

/** The YAML reader, imported on the first parse (objects-yaml.ts says why). */
export const loadObjectsYaml = () => import("./objects-yaml.ts");

/** Lists up to this many UTF-16 units are parsed on the event loop. */
export const INLINE_PARSE_LIMIT = 8 * 1024;
/**
 * Large lists waiting for the worker at most, in all and per tenant; more are
 * refused as RESOURCE_EXHAUSTED (kubelet retries). A waiting list holds its
 * Mount request, about twice the list's size: 8 waiting 1 MiB lists hold 16 MiB.
 */
const MAX_QUEUED = 8;
const MAX_QUEUED_PER_TENANT = 2;
/** Worker time a tenant used counts half after this long, in the queue's order. */
const USAGE_HALF_LIFE_MS = 30_000;
const IDLE_MS = 10_000;
/** Lists up to this many UTF-16 units have their parse results cached. */
const CACHED_TEXT_LIMIT = 16 * 1024;
/** A parse that takes longer is abandoned and the worker restarted (the largest valid list takes about 2 s under --lite-mode). */
const MAX_PARSE_MS = 10_000;
/**
 * The worker's heap. The budget of yaml-budget.ts keeps a parse's document
 * small, but the YAML library builds a double-quoted scalar one character at a
 * time: a 1 MiB list of 1,000 quoted entries (flow style) holds about 32 MiB of
 * string pieces until they are read, so that list, valid, needs this much.
 */
export const WORKER_HEAP_MB = { old: 48, young: 8 };
/** The worker's script: beside this file in the sources, beside the bundle (scripts/bundle.ts) in images. */
const WORKER_SCRIPT = new URL(import.meta.url.endsWith(".ts") ? "./objects-worker.ts" : "./objects-worker.mjs", import.meta.url);

interface Job {
  text: string;
  limits: ObjectLimits;
  deadline: number;
  resolve(result: ParseObjectsResult): void;
  reject(err: unknown): void;
}

export type WorkerAnswer = { ok: true; result: ParseObjectsResult } | { ok: false; code: number; errorClass: ErrorClass; message: string };

export interface ObjectsParserOptions {
  /** Told the number of lists waiting for the worker after each change (the objects_lists_waiting gauge). */
  onWaiting?: (waiting: number) => void;
}

export class ObjectsParser {
  private readonly onWaiting: ((waiting: number) => void) | undefined;
  private readonly queue = new FairQueue<Job>({ maxPerTenant: MAX_QUEUED_PER_TENANT, maxTotal: MAX_QUEUED, halfLifeMs: USAGE_HALF_LIFE_MS });
  private worker: Worker | undefined;
  private busy = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly parsed = new LruCache<string, ParseObjectsResult>({ maxEntries: 64, idleMs: 3600_000 });
  /** Parses in progress by list, shared by identical lists; at most the waiting ones and the running one. */
  private readonly pending = new Map<string, Promise<ParseObjectsResult>>();
  /** Large lists parsed in the worker so far (for tests). */
  offloaded = 0;

  constructor(options: ObjectsParserOptions = {}) {
    this.onWaiting = options.onWaiting;
  }

  /** Jobs waiting for the worker (for tests). */
  get waiting(): number {
    return this.queue.size;
  }

  /** Parses `text`; `tenant` (the pod's namespace) is whose turn it is in the worker's queue. */
  async parse(text: string, limits: ObjectLimits, deadline: number, tenant = ""): Promise<ParseObjectsResult> {
    const key = createHash("sha256").update(`${limits.maxObjects}/${limits.maxFiles}\n`).update(text).digest("base64");
    const cached = this.parsed.get(key);
    if (cached) return cached;
    // The pods of one Deployment start together: they share one parse of their list.
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.parseUncached(text, limits, deadline, tenant).then(deepFreeze);
      const shared = pending;
      this.pending.set(key, shared);
      const done = () => {
        if (this.pending.get(key) === shared) this.pending.delete(key);
      };
      // Only a valid list is cached; a refusal is worked out again each time.
      shared.then((result) => {
        done();
        if (text.length <= CACHED_TEXT_LIMIT) this.parsed.set(key, result);
      }, done);
    }
    return pending;
  }

  private async parseUncached(text: string, limits: ObjectLimits, deadline: number, tenant: string): Promise<ParseObjectsResult> {
    if (text.length <= INLINE_PARSE_LIMIT) return (await loadObjectsYaml()).parseObjects(text, limits);
    return new Promise<ParseObjectsResult>((resolve, reject) => {
      const refused = this.queue.push(tenant, { text, limits, deadline, resolve, reject });
      refused?.reject(
        new ProviderError(
          status.RESOURCE_EXHAUSTED,
          "BudgetExhausted",
          `too many large objects lists are waiting to be parsed (${MAX_QUEUED_PER_TENANT} per namespace, ${MAX_QUEUED} in all); retry later`,
        ),
      );
      this.onWaiting?.(this.queue.size);
      this.next();
    });
  }

  private next(): void {
    if (this.busy) return;
    const turn = this.queue.shift();
    this.onWaiting?.(this.queue.size);
    if (!turn) {
      this.idleTimer ??= setTimeout(() => this.close(), IDLE_MS).unref();
      return;
    }
    const { tenant, job } = turn;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const left = Math.min(job.deadline - Date.now(), MAX_PARSE_MS);
    if (left <= 0) {
      job.reject(deadlineExceeded("the objects list could not be parsed before the call's deadline"));
      this.next();
      return;
    }
    this.busy = true;
    const worker = (this.worker ??= this.start());
    const started = performance.now();
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      worker.removeListener("message", onMessage);
      worker.removeListener("error", onError);
      this.busy = false;
      this.queue.charge(tenant, performance.now() - started);
      fn();
      this.next();
    };
    const onMessage = (answer: WorkerAnswer) =>
      finish(() => (answer.ok ? job.resolve(answer.result) : job.reject(new ProviderError(answer.code, answer.errorClass, answer.message))));
    const onError = (err: Error) => {
      this.worker = undefined;
      finish(() => job.reject(workerFailure(err)));
    };
    const timer = setTimeout(() => {
      // The parse is stuck on a hostile input: stop it with the worker.
      void worker.terminate();
      this.worker = undefined;
      finish(() => job.reject(deadlineExceeded(`the objects list could not be parsed within ${Math.round(left / 1000)}s`)));
    }, left);
    worker.on("message", onMessage);
    worker.on("error", onError);
    this.offloaded++;
    worker.postMessage({ text: job.text, limits: job.limits });
  }

  private start(): Worker {
    const worker = new Worker(WORKER_SCRIPT, {
      // the worker needs none of the program's preloads
      execArgv: [],
      // a 1 MiB list needs about 20 MiB of heap; a hostile one stops at this, not at the pod's limit
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB.old, maxYoungGenerationSizeMb: WORKER_HEAP_MB.young },
    });
    worker.unref();
    worker.on("exit", () => {
      if (this.worker === worker) this.worker = undefined;
    });
    return worker;
  }

  close(): void {
    for (const job of this.queue.drain()) job.reject(new ProviderError(status.UNAVAILABLE, "ServiceUnavailable", "the provider is stopping"));
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    void this.worker?.terminate();
    this.worker = undefined;
  }
}

/** The worker died under a parse: out of its heap is the list's doing (final); anything else is ours. */
export function workerFailure(err: Error): ProviderError {
  if ((err as NodeJS.ErrnoException).code === "ERR_WORKER_OUT_OF_MEMORY") {
    return new ProviderError(
      status.INVALID_ARGUMENT,
      "InvalidArgument",
      `the objects list needs more memory to parse than the ${WORKER_HEAP_MB.old + WORKER_HEAP_MB.young} MiB one list may use: list fewer objects, or write them more simply`,
    );
  }
  return new ProviderError(status.INTERNAL, "Internal", `the objects list could not be parsed (${err.name})`);
}

/** Freezes a parse result all the way down: mounts share it, none may change it. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
