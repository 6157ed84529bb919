// Reconciles one SecretSync, top to bottom:
//   1. check the secretObject (reserved label and annotation keys, refused type);
//   2. find its SecretProviderClass (from the watch cache);
//   3. get the provider's files (one call shared by the SecretSyncs of the same
//      class and service account, with tokens for that service account);
//   4. build the Secret data from spec.secretObject.data;
//   5. compute syncHash as upstream does; nothing changed and nothing failed
//      before: stop here, without a single write;
//   6. write the Secret (server-side apply, only into a Secret it owns);
//   7. record the status (syncHash, lastSuccessfulSyncTime, conditions), an
//      Event and the metrics.
// Any failure leaves the Secret exactly as it was, sets the condition of the
// step (upstream's reasons) with a one-line message naming the object and the
// fix, records a Warning Event and retries with back-off when a retry can help.
import type { Logger } from "../../shared/logger.ts";
import { describeApiError } from "../../shared/kube/api-errors.ts";
import type { SecretProviderClass } from "../../shared/kube/kube-types.ts";
import { ConditionType, Message, Reason, conditionTypeFor, hasFailure, initialConditions, setCondition } from "../api/conditions.ts";
import { keyOf, RESERVED_PREFIX, SERVICE_ACCOUNT_TOKEN_TYPE, secretTypeOf, type SecretSync, type SecretSyncStatus } from "../api/secret-sync.ts";
import type { EventRecorder } from "../kube/event-recorder.ts";
import type { Informer } from "../kube/informer.ts";
import type { SecretSyncStatusWriter } from "../kube/secret-sync-status.ts";
import type { SecretWriter } from "../kube/secret-writer.ts";
import type { ControllerMetrics, ReconcileOutcome } from "../metrics.ts";
import type { SharedMounts } from "../provider/shared-mounts.ts";
import { buildSecretData } from "./secret-data.ts";
import { missingFiles } from "../../shared/provider-api/missing-objects.ts";
import { SyncFailure } from "./sync-failure.ts";
import type { SyncHashes } from "./sync-hash.ts";

export interface ReconcilerDeps {
  secretSyncs: Informer<SecretSync>;
  classes: Informer<SecretProviderClass>;
  mounts: SharedMounts;
  hashes: SyncHashes;
  writer: SecretWriter;
  status: SecretSyncStatusWriter;
  events: EventRecorder;
  metrics: ControllerMetrics;
  logger: Logger;
  /** Longest back-off between retries of a failing SecretSync. */
  maxBackoffMs: number;
  /** Hears the data of every successful sync (restart on rotation follows Secret content). */
  onSynced?: (ss: SecretSync, spc: SecretProviderClass, data: ReadonlyMap<string, Buffer>, outcome: "created" | "updated" | "unchanged") => void;
}

const FIRST_BACKOFF_MS = 1000;
const nowString = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

export class Reconciler {
  private readonly deps: ReconcilerDeps;
  /** Consecutive failures per SecretSync key (removed on success and deletion). */
  private readonly failures = new Map<string, number>();

  constructor(deps: ReconcilerDeps) {
    this.deps = deps;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  async reconcile(key: string, freshAfter: number): Promise<{ retryAfterMs?: number }> {
    const ss = this.deps.secretSyncs.getByKey(key);
    if (!ss || ss.metadata.deletionTimestamp) {
      this.failures.delete(key);
      return {};
    }
    const started = process.hrtime.bigint();
    let outcome: ReconcileOutcome = "failed";
    try {
      outcome = await this.sync(ss, freshAfter);
      this.failures.delete(key);
      return {};
    } catch (err) {
      const failure =
        err instanceof SyncFailure ? err : new SyncFailure(Reason.ControllerSyncError, `secretsync ${key}: ${describeApiError(err)}`, { cause: err });
      await this.recordFailure(ss, failure);
      if (!failure.retryable) return {};
      const count = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, count);
      return { retryAfterMs: Math.min(this.deps.maxBackoffMs, FIRST_BACKOFF_MS * 2 ** Math.min(count - 1, 20)) };
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.deps.metrics.reconciles.inc({ outcome });
      this.deps.metrics.reconcileDuration.observe({ outcome }, seconds);
    }
  }

  private async sync(ss: SecretSync, freshAfter: number): Promise<ReconcileOutcome> {
    const { logger } = this.deps;
    const key = keyOf(ss);
    checkSecretObject(ss);
    const spc = this.classOf(ss);
    const classRef = keyOf(spc);

    const answer = await this.deps.mounts.files(ss, spc, freshAfter);
    const data = await buildSecretData(ss, classRef, answer.files, missingFiles(answer.objects));
    const conditions = ss.status?.conditions ?? [];
    const initialized = conditions.some((c) => c.type === ConditionType.Created) && conditions.some((c) => c.type === ConditionType.Updated);
    const mustWrite = !ss.status?.syncHash || hasFailure(ss) || !initialized;
    // The hash is slow to derive the first time (PBKDF2): when the Secret is
    // written anyway, it is derived while the write is under way.
    const hashing = this.deps.hashes.hash(data, spc, ss);
    if (!mustWrite && (await hashing) === ss.status?.syncHash) {
      logger.debug({ secretSync: key }, "secret up to date");
      this.deps.onSynced?.(ss, spc, data, "unchanged");
      return "unchanged";
    }

    let written;
    try {
      written = await this.deps.writer.write(ss, data);
    } catch (err) {
      await hashing.catch(() => undefined);
      throw err;
    }
    const syncHash = await hashing;
    this.deps.metrics.secretWrites.inc({ result: written });
    const now = new Date();
    let next = initialConditions(ss, now);
    if (conditionTypeFor(ss) === ConditionType.Created) {
      next = setCondition(next, { type: ConditionType.Created, status: "True", reason: Reason.CreateSuccessful, message: Message.CreateSuccessful }, now);
    }
    next = setCondition(next, { type: ConditionType.Updated, status: "True", reason: Reason.SecretUpToDate, message: Message.UpToDate }, now);
    await this.writeStatus(ss, { syncHash, lastSuccessfulSyncTime: nowString(now), conditions: next });

    this.deps.onSynced?.(ss, spc, data, written);
    const secretRef = `${ss.metadata.namespace}/${ss.metadata.name}`;
    logger.info({ secretSync: key, secretProviderClass: classRef, result: written, keys: data.size }, written === "created" ? "created synced secret" : "updated synced secret");
    await this.deps.events.record(
      ss,
      "Normal",
      written === "created" ? "SecretCreated" : "SecretUpdated",
      written === "created"
        ? `created secret ${secretRef} (${data.size} keys) from secretproviderclass ${classRef}`
        : `updated secret ${secretRef} (${data.size} keys) from secretproviderclass ${classRef}`,
    );
    return written;
  }

  private classOf(ss: SecretSync): SecretProviderClass {
    const namespace = ss.metadata.namespace ?? "";
    const name = ss.spec.secretProviderClassName;
    const spc = this.deps.classes.get(namespace, name);
    if (!spc) {
      throw new SyncFailure(
        Reason.SecretProviderClassMisconfigured,
        `secretproviderclass ${namespace}/${name} named by secretsync ${keyOf(ss)} does not exist: create it or fix spec.secretProviderClassName`,
        // The class watch queues the SecretSync again once the class appears.
        { retryable: false },
      );
    }
    return spc;
  }

  private async recordFailure(ss: SecretSync, failure: SyncFailure): Promise<void> {
    const { logger, metrics } = this.deps;
    const key = keyOf(ss);
    metrics.reconcileErrors.inc({ reason: failure.reason });
    logger.warn({ secretSync: key, reason: failure.reason, error: failure.message }, "secret sync failed; the secret was left as it was");
    const type = conditionTypeFor(ss);
    const current = ss.status?.conditions?.find((c) => c.type === type);
    const unchanged = current?.status === "False" && current.reason === failure.reason && current.message === failure.message;
    if (!unchanged) {
      const now = new Date();
      const conditions = setCondition(initialConditions(ss, now), { type, status: "False", reason: failure.reason, message: failure.message }, now);
      try {
        await this.writeStatus(ss, { conditions });
      } catch (err) {
        logger.warn({ secretSync: key, error: describeApiError(err) }, "failed to update the status of the secretsync");
      }
    }
    await this.deps.events.record(ss, "Warning", failure.reason, failure.message);
  }

  private async writeStatus(ss: SecretSync, status: SecretSyncStatus): Promise<void> {
    const updated = await this.deps.status.patch(ss, status);
    // Seen by the next reconcile even before the watch delivers it.
    if (updated) this.deps.secretSyncs.storeOwnWrite(updated, ss.metadata.resourceVersion);
  }
}

/** What the controller refuses in a secretObject whatever the CRD and the admission policies say. */
export function checkSecretObject(ss: SecretSync): void {
  const key = keyOf(ss);
  const object = ss.spec.secretObject ?? { data: [] };
  const reservedLabel = Object.keys(object.labels ?? {}).find((k) => k.startsWith(RESERVED_PREFIX));
  if (reservedLabel !== undefined) {
    throw new SyncFailure(
      Reason.InvalidLabel,
      `secretsync ${key}: label ${reservedLabel} is reserved for use by the Secrets Store Sync Controller; remove it from spec.secretObject.labels`,
      { retryable: false },
    );
  }
  const reservedAnnotation = Object.keys(object.annotations ?? {}).find((k) => k.startsWith(RESERVED_PREFIX));
  if (reservedAnnotation !== undefined) {
    throw new SyncFailure(
      Reason.InvalidAnnotation,
      `secretsync ${key}: annotation ${reservedAnnotation} is reserved for use by the Secrets Store Sync Controller; remove it from spec.secretObject.annotations`,
      { retryable: false },
    );
  }
  if (secretTypeOf(ss) === SERVICE_ACCOUNT_TOKEN_TYPE) {
    throw new SyncFailure(
      Reason.ControllerPatchError,
      `secretsync ${key}: type ${SERVICE_ACCOUNT_TOKEN_TYPE} is refused: the controller never writes service-account token Secrets; use Opaque or another type`,
      { retryable: false },
    );
  }
}
