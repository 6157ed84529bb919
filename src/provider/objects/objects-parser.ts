// Parsing the `objects` YAML without holding the event loop. A usual list
// (a few KiB) is parsed in place in well under a millisecond; a large one
// (up to --max-request-bytes) can cost a second of CPU, which would stall
// every other tenant's mount and the health probe, so it is parsed in a
// worker thread (objects-worker.ts), one at a time, with a deadline and a heap
// limit; the thread stops after 10 s without work, which gives back its
// memory (tens of MiB after a hostile list) soon after a burst ends.
//
// Pods of one Deployment send the same list on every mount and every
// rotation; parsing it took about a fifth of the provider's CPU per warm mount
// (2.6 ms of 13 here). So results are cached, frozen, by a hash of the list
// and the limits, for lists up to 16 KiB: 64 of them hold at most a few MiB.
import { createHash } from "node:crypto";
import { Worker } from "node:worker_threads";
import { status } from "@grpc/grpc-js";
import { deadlineExceeded, ProviderError, type ErrorClass } from "../errors.ts";
import { LruCache } from "../../shared/lru.ts";
import type { ObjectLimits, ParseObjectsResult } from "./objects.ts";

/** The YAML reader, imported on the first parse (objects-yaml.ts says why). */
export const loadObjectsYaml = () => import("./objects-yaml.ts");

/** Lists up to this many UTF-16 units are parsed on the event loop. */
export const INLINE_PARSE_LIMIT = 8 * 1024;
/** Large lists waiting for the worker at most; more are refused as RESOURCE_EXHAUSTED. */
const MAX_QUEUED = 16;
const IDLE_MS = 10_000;
/** Lists up to this many UTF-16 units have their parse results cached. */
const CACHED_TEXT_LIMIT = 16 * 1024;
/** A parse that takes longer is abandoned and the worker restarted. */
const MAX_PARSE_MS = 15_000;
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

export class ObjectsParser {
  private readonly queue: Job[] = [];
  private worker: Worker | undefined;
  private busy = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly parsed = new LruCache<string, ParseObjectsResult>({ maxEntries: 64, idleMs: 3600_000 });
  /** Large lists parsed in the worker so far (for tests). */
  offloaded = 0;

  async parse(text: string, limits: ObjectLimits, deadline: number): Promise<ParseObjectsResult> {
    if (text.length > CACHED_TEXT_LIMIT) return this.parseUncached(text, limits, deadline);
    const key = createHash("sha256").update(`${limits.maxObjects}/${limits.maxFiles}\n`).update(text).digest("base64");
    const cached = this.parsed.get(key);
    if (cached) return cached;
    // Only a valid list is cached; a refusal is worked out again each time.
    const result = deepFreeze(await this.parseUncached(text, limits, deadline));
    this.parsed.set(key, result);
    return result;
  }

  private async parseUncached(text: string, limits: ObjectLimits, deadline: number): Promise<ParseObjectsResult> {
    if (text.length <= INLINE_PARSE_LIMIT) return (await loadObjectsYaml()).parseObjects(text, limits);
    if (this.queue.length >= MAX_QUEUED) {
      return Promise.reject(
        new ProviderError(status.RESOURCE_EXHAUSTED, "BudgetExhausted", `${this.queue.length} large objects lists are waiting to be parsed; retry later`),
      );
    }
    return new Promise<ParseObjectsResult>((resolve, reject) => {
      this.queue.push({ text, limits, deadline, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    if (this.busy) return;
    const job = this.queue.shift();
    if (!job) {
      this.idleTimer ??= setTimeout(() => this.close(), IDLE_MS).unref();
      return;
    }
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
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      worker.removeListener("message", onMessage);
      worker.removeListener("error", onError);
      this.busy = false;
      fn();
      this.next();
    };
    const onMessage = (answer: WorkerAnswer) =>
      finish(() => (answer.ok ? job.resolve(answer.result) : job.reject(new ProviderError(answer.code, answer.errorClass, answer.message))));
    const onError = (err: Error) => {
      this.worker = undefined;
      finish(() => job.reject(new ProviderError(status.INTERNAL, "Internal", `the objects list could not be parsed (${err.name})`)));
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
      resourceLimits: { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8 },
    });
    worker.unref();
    worker.on("exit", () => {
      if (this.worker === worker) this.worker = undefined;
    });
    return worker;
  }

  close(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    void this.worker?.terminate();
    this.worker = undefined;
  }
}

/** Freezes a parse result all the way down: mounts share it, none may change it. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
