// What the controller does with a Key Vault event, whichever way it came.
// Events are hints, never data: delivery is at least once and in any order,
// so an event only says "read this object again now", and the value is read
// through the normal provider path with each workload's own identity.
//
//   NewVersionCreated   the classes that read the object: their SecretSyncs
//                       are synced again at once, and the drivers of the
//                       nodes that mount them are asked to refresh; groups
//                       that hold the version already are left alone.
//   NearExpiry/Expired  Warning Events on the pods and SecretSyncs that use
//                       the object; the expiry metrics.
//   VaultAccessPolicyChanged  every class of the vault is read again (access
//                       re-checked), at most once a minute per vault.
//
// Duplicates (the same event id, or the same object version again), events
// older than one already handled for the object (reordered deliveries),
// versions not valid yet and objects no class reads cost nothing. Every
// memory keyed by what an event says is bounded (least recently used entries
// go first), and only events for objects some class reads are remembered at
// all, so a sender flooding unique ids or names finds nothing to fill. A
// failed refresh throws: the webhook answers 500 and the pull receiver
// releases the event, so Event Grid delivers it again. A new version that
// finds no volume or SecretSync of the classes reading it is looked for again
// a little later: a pod that mounted a moment before the version was written
// may not be in the controller's index yet when the event comes.
import type { Logger } from "../../shared/logger.ts";
import { LruCache } from "../../shared/lru.ts";
import type { ControllerMetrics, EventKindLabel, EventOutcome, EventSource } from "../metrics.ts";
import type { ClassObjectIndex, ClassRef } from "./class-objects.ts";
import type { ExpiryNotices } from "./expiry.ts";
import { describeObject, type KeyVaultEvent } from "./key-vault-event.ts";
import type { SecretSyncRefresh } from "./secret-sync-refresh.ts";
import type { VolumeSignals } from "./volume-signals.ts";

export interface EventProcessorOptions {
  /** Event ids, object versions and objects remembered, each. */
  maxTracked: number;
  /** Events handled or waiting at once; more are refused as busy. */
  maxPending: number;
  /** Events handled at the same time. */
  concurrency: number;
  /** Shortest time between two access re-checks of one vault. */
  accessCheckIntervalMs: number;
  /** How long a handled event is remembered (Event Grid retries for up to 24 h). */
  rememberMs?: number;
  /** When a new version found nothing to refresh, the classes are looked at again after these delays. */
  recheckAfterMs?: readonly number[];
}

export interface EventProcessorDeps {
  index: ClassObjectIndex;
  secretSyncs: SecretSyncRefresh;
  volumes: VolumeSignals;
  expiry: ExpiryNotices;
  metrics: ControllerMetrics;
  logger: Logger;
  now?: () => number;
}

/** Too many events at once: the sender should try again later. */
export class EventsBusy extends Error {}

const DAY_MS = 86_400_000;
/** Clock skew allowed before a version counts as not valid yet. */
const NBF_SKEW_S = 60;
/** The index follows the API server by a watch: a status object written a moment ago is there within these. */
const RECHECK_AFTER_MS = [2_000, 10_000];

export class EventProcessor {
  private readonly deps: EventProcessorDeps;
  private readonly options: EventProcessorOptions;
  private readonly now: () => number;
  private readonly doneIds: LruCache<string, true>;
  private readonly doneVersions: LruCache<string, true>;
  /** Newest event time handled per object, to recognise reordered deliveries. */
  private readonly latest: LruCache<string, number>;
  private readonly accessChecks: LruCache<string, number>;
  private readonly inFlight = new Map<string, Promise<EventOutcome>>();
  /** Refreshes under way by object version: a certificate's three events (certificate, key, secret) share one. */
  private readonly versionsInFlight = new Map<string, Promise<EventOutcome>>();
  /** Versions that found nothing to refresh, waiting to be looked for again (at most maxTracked). */
  private readonly rechecks = new Set<string>();
  private pending = 0;
  private running = 0;
  private readonly slots: Array<() => void> = [];

  constructor(deps: EventProcessorDeps, options: EventProcessorOptions) {
    this.deps = deps;
    this.options = options;
    this.now = deps.now ?? Date.now;
    const lru = <V>() => new LruCache<string, V>({ maxEntries: options.maxTracked, idleMs: options.rememberMs ?? DAY_MS, now: this.now });
    this.doneIds = lru();
    this.doneVersions = lru();
    this.latest = lru();
    this.accessChecks = lru();
  }

  /** What is remembered, for tests of the bounds. */
  get tracked(): { ids: number; versions: number; objects: number; vaults: number; inFlight: number; rechecks: number } {
    return { ids: this.doneIds.size, versions: this.doneVersions.size, objects: this.latest.size, vaults: this.accessChecks.size, inFlight: this.inFlight.size, rechecks: this.rechecks.size };
  }

  /** Throws EventsBusy when `count` more events would exceed the bound. */
  admit(count: number): void {
    // A batch larger than the bound on its own is taken when nothing else is
    // pending: refused, it would be refused on every retry until Event Grid
    // dropped it. The sender's batch size (5,000 at most) bounds it then.
    const fits = count > this.options.maxPending ? this.pending === 0 : this.pending + count <= this.options.maxPending;
    if (!fits) throw new EventsBusy(`${this.pending} events are being handled; try again later`);
  }

  /** Records an event that could not be used, for the metrics. */
  countIgnored(source: EventSource, kind: EventKindLabel, outcome: "ignored" | "malformed"): void {
    this.deps.metrics.events.inc({ source, kind, outcome });
  }

  /** Handles one event; resolves with its outcome, rejects when a refresh failed. */
  async handle(event: KeyVaultEvent, source: EventSource): Promise<EventOutcome> {
    const started = this.now();
    let outcome: EventOutcome = "failed";
    this.pending++;
    try {
      if (this.doneIds.get(event.id)) {
        outcome = "duplicate";
        return outcome;
      }
      const same = this.inFlight.get(event.id);
      if (same) {
        await same;
        outcome = "duplicate";
        return outcome;
      }
      const run = this.withSlot(() => this.run(event));
      this.inFlight.set(event.id, run);
      try {
        outcome = await run;
      } finally {
        this.inFlight.delete(event.id);
      }
      if (outcome !== "unused") this.doneIds.set(event.id, true);
      return outcome;
    } finally {
      this.pending--;
      this.deps.metrics.events.inc({ source, kind: event.kind, outcome });
      if (outcome === "refreshed" || outcome === "current" || outcome === "warned") this.deps.metrics.eventHandling.observe((this.now() - started) / 1000);
      const log = outcome === "failed" ? "warn" : "info";
      this.deps.logger[log]({ eventId: event.id, type: event.type, object: describeObject(event), source, outcome }, "key vault event");
    }
  }

  private async run(event: KeyVaultEvent): Promise<EventOutcome> {
    if (event.kind === "VaultAccessPolicyChanged") return this.accessChanged(event);
    const name = event.objectName!;
    const versionKey = `${event.kind}\0${event.vault}\0${name.toLowerCase()}\0${event.version}`;
    if (this.doneVersions.get(versionKey)) return "duplicate";
    const classes = this.deps.index.classesFor(event.vault, name);
    if (classes.length === 0) return "unused";

    if (event.kind === "NearExpiry" || event.kind === "Expired") {
      await this.deps.expiry.notice(event, classes);
      this.doneVersions.set(versionKey, true);
      return "warned";
    }

    if (event.notBefore !== undefined && event.notBefore > this.now() / 1000 + NBF_SKEW_S) return "not_yet_valid";
    const objectKey = `${event.vault}\0${name.toLowerCase()}`;
    const newest = this.latest.get(objectKey);
    if (event.time !== undefined && newest !== undefined && event.time < newest) return "stale";

    // Newest first, before the refresh: an older event arriving while this
    // one is handled is stale already.
    if (event.time !== undefined) this.latest.set(objectKey, Math.max(event.time, newest ?? 0));
    const same = this.versionsInFlight.get(versionKey);
    // Its failure is this event's too (an error here), so the sender tries again.
    if (same) {
      await same;
      return "duplicate";
    }
    this.deps.expiry.superseded(event.vault, name);
    const refresh = this.refresh(classes, event.version, describeObject(event));
    this.versionsInFlight.set(versionKey, refresh);
    try {
      const outcome = await refresh;
      this.doneVersions.set(versionKey, true);
      if (outcome === "unused") this.recheckLater(versionKey, objectKey, event, classes, 0);
      return outcome;
    } finally {
      this.versionsInFlight.delete(versionKey);
    }
  }

  /**
   * Looks for the volumes and SecretSyncs of `classes` again after the next
   * delay, unless a newer version of the object came meanwhile. The version's
   * pending volumes only are signalled, as for the event itself.
   */
  private recheckLater(versionKey: string, objectKey: string, event: KeyVaultEvent, classes: readonly ClassRef[], attempt: number): void {
    const delays = this.options.recheckAfterMs ?? RECHECK_AFTER_MS;
    if (attempt >= delays.length || this.rechecks.has(versionKey) || this.rechecks.size >= this.options.maxTracked) return;
    this.rechecks.add(versionKey);
    const what = describeObject(event);
    const timer = setTimeout(() => {
      this.rechecks.delete(versionKey);
      const newest = this.latest.get(objectKey);
      if (event.time !== undefined && newest !== undefined && newest > event.time) return;
      this.refresh(classes, event.version, what).then(
        (outcome) => {
          if (outcome === "unused") return this.recheckLater(versionKey, objectKey, event, classes, attempt + 1);
          this.deps.logger.info({ eventId: event.id, object: what, outcome }, "key vault event looked at again");
        },
        (err: unknown) => this.deps.logger.warn({ eventId: event.id, object: what, err: (err as Error).message }, "key vault event looked at again: refresh failed"),
      );
    }, delays[attempt]);
    timer.unref();
  }

  private async accessChanged(event: KeyVaultEvent): Promise<EventOutcome> {
    const classes = this.deps.index.classesOfVault(event.vault);
    if (classes.length === 0) return "unused";
    const last = this.accessChecks.get(event.vault);
    if (last !== undefined && this.now() - last < this.options.accessCheckIntervalMs) return "rate_limited";
    this.accessChecks.set(event.vault, this.now());
    try {
      return await this.refresh(classes, undefined, `vault ${event.vault} (access policy changed)`);
    } catch (err) {
      // A failed re-check is not one: Event Grid's retry may try again at once.
      this.accessChecks.delete(event.vault);
      throw err;
    }
  }

  /** SecretSyncs and volumes of every class; "unused" when none has either. */
  private async refresh(classes: readonly ClassRef[], version: string | undefined, what: string): Promise<EventOutcome> {
    const results = await Promise.allSettled(
      classes.map(async (ref) => {
        const [syncs, volumes] = await Promise.all([this.deps.secretSyncs.refresh(ref, version), this.deps.volumes.signal(ref.namespace, ref.name, version)]);
        return { ref, syncs, volumes };
      }),
    );
    let acted = 0;
    let current = 0;
    const problems: string[] = [];
    for (const r of results) {
      if (r.status === "rejected") {
        problems.push((r.reason as Error).message);
        continue;
      }
      const { ref, syncs, volumes } = r.value;
      acted += syncs.synced + volumes.signalled;
      current += syncs.current + volumes.current;
      this.deps.metrics.eventRefreshes.inc({ target: "secretsync" }, syncs.synced);
      this.deps.metrics.eventRefreshes.inc({ target: "node" }, volumes.signalled);
      if (syncs.failed > 0) problems.push(`${syncs.failed} secretsyncs of secretproviderclass ${ref.namespace}/${ref.name} failed to sync`);
    }
    if (problems.length > 0) throw new Error(`refreshing ${what}: ${problems.slice(0, 3).join("; ")}`);
    if (acted > 0) return "refreshed";
    return current > 0 ? "current" : "unused";
  }

  private async withSlot<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.options.concurrency) await new Promise<void>((resolve) => this.slots.push(resolve));
    this.running++;
    try {
      return await work();
    } finally {
      this.running--;
      this.slots.shift()?.();
    }
  }
}
