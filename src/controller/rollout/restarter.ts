// Restart on rotation: when content a workload follows changes, its pod
// template gets an annotation with a hash of the new content, and Kubernetes
// rolls all its replicas as it does for any template change (the workload's
// own strategy, PodDisruptionBudgets and all). Built in so that env-var
// consumers need no Reloader.
//
// What counts as a change:
//   - a SecretProviderClass: a volume of it moved from some object versions
//     to others (its SecretProviderClassPodStatus, written by the driver after
//     the new files are in place); the hash is of the new versions;
//   - a Secret a SecretSync writes: its data changed (not merely rewritten);
//     the hash is a PBKDF2 of the data salted with the SecretSync's uid, as
//     strong as the syncHash upstream already shows in the status;
//   - a Secret the driver syncs from a class's secretObjects: as its class.
// The same hash again is never a change, so a refresh that found nothing new
// rolls nothing, and a workload is rolled once per content change however
// many pods, nodes or events report it. Two rollouts of one workload are at
// least the minimum interval apart: a change within it is held and applied
// (merged with any other) when the interval is over. Each rollout records an
// Event on the workload naming what changed and the object versions.
import type { Logger } from "../../shared/logger.ts";
import { describeApiError, httpStatusOf } from "../../shared/kube/api-errors.ts";
import type { KubeRest } from "../../shared/kube/kube-rest.ts";
import type { ObjectVersion, SecretProviderClass } from "../../shared/kube/kube-types.ts";
import type { EventRecorder } from "../kube/event-recorder.ts";
import type { ControllerMetrics } from "../metrics.ts";
import { createHash } from "node:crypto";
import { rolloutAnnotation, type WorkloadKind } from "./following.ts";
import type { TrackedWorkload, WorkloadIndex } from "./workloads.ts";

export interface RestarterOptions {
  /** Shortest time between two rollouts of one workload. */
  minIntervalMs: number;
}

export interface RestarterDeps {
  rest: KubeRest;
  workloads: WorkloadIndex;
  /** The class, for the Secrets it syncs (secretObjects). */
  secretProviderClass(namespace: string, name: string): SecretProviderClass | undefined;
  events: EventRecorder;
  metrics: ControllerMetrics;
  logger: Logger;
  now?: () => number;
}

type Trigger = "secretproviderclass" | "secret";

interface Pending {
  workload: TrackedWorkload;
  annotations: Record<string, string>;
  reasons: string[];
  triggers: Set<Trigger>;
  timer?: NodeJS.Timeout;
}

const PLURAL: Record<WorkloadKind, string> = { Deployment: "deployments", StatefulSet: "statefulsets", DaemonSet: "daemonsets" };
const MAX_REASONS = 5;
const MAX_VERSIONS_SHOWN = 4;
/** Event messages are cut here, as client-go's recorder cuts them. */
const MAX_MESSAGE = 1024;
/** A rollout whose patch failed is tried again after 5 s, then twice as long each time, up to 5 minutes. */
const RETRY_FIRST_MS = 5_000;
const RETRY_MAX_MS = 300_000;

/** A short hash of a class's object versions (order does not matter). */
export function versionsHash(namespace: string, className: string, objects: readonly ObjectVersion[]): string {
  const h = createHash("sha256").update(`${namespace}/${className}\0`);
  for (const o of [...objects].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) h.update(`${o.id}=${o.version}\0`);
  return h.digest("hex").slice(0, 32);
}

/** The versions that differ between two lists, for messages: "secret/db-password=3f2a...". */
export function changedVersions(before: readonly ObjectVersion[], after: readonly ObjectVersion[]): string {
  const old = new Map(before.map((o) => [o.id, o.version]));
  const changed = after.filter((o) => old.get(o.id) !== o.version).map((o) => `${o.id} version ${o.version}`);
  return changed.length <= MAX_VERSIONS_SHOWN ? changed.join(", ") : `${changed.slice(0, MAX_VERSIONS_SHOWN).join(", ")} and ${changed.length - MAX_VERSIONS_SHOWN} more`;
}

export class Restarter {
  private readonly deps: RestarterDeps;
  private readonly options: RestarterOptions;
  private readonly now: () => number;
  /** Per workload uid: when it was last rolled, and a held rollout. */
  private readonly lastRolled = new Map<string, number>();
  private readonly pending = new Map<string, Pending>();
  /** Per workload uid: the rollout whose patch is on the wire, and the failed patches in a row. */
  private readonly rolling = new Map<string, Pending>();
  private readonly failures = new Map<string, number>();
  private stopped = false;

  constructor(deps: RestarterDeps, options: RestarterOptions) {
    this.deps = deps;
    this.options = options;
    this.now = deps.now ?? Date.now;
  }

  /** A volume of the class moved to new object versions. */
  classChanged(namespace: string, className: string, before: readonly ObjectVersion[], after: readonly ObjectVersion[]): void {
    const hash = versionsHash(namespace, className, after);
    const versions = changedVersions(before, after);
    const reason = `secretproviderclass ${namespace}/${className} has new content (${versions})`;
    for (const w of this.deps.workloads.followingClass(namespace, className)) this.request(w, rolloutAnnotation("spc", className), hash, reason, "secretproviderclass");
    // The Secrets the driver syncs from this class changed with it.
    for (const secretObject of this.deps.secretProviderClass(namespace, className)?.spec.secretObjects ?? []) {
      const secret = secretObject.secretName;
      if (!secret) continue;
      const why = `secret ${namespace}/${secret} (synced from secretproviderclass ${namespace}/${className}) has new content (${versions})`;
      for (const w of this.deps.workloads.followingSecret(namespace, secret)) this.request(w, rolloutAnnotation("secret", secret), hash, why, "secret");
    }
  }

  /**
   * On starting to lead: every volume of the class shows these versions now
   * (changes made while no replica was leading, or rollouts a leader held
   * when it stopped, come as no transition). A workload whose template
   * records other content for the class, or for a Secret synced from it, is
   * rolled; one with no record is left alone, as nothing says its pods
   * started before the change.
   */
  classSeen(namespace: string, className: string, versions: readonly ObjectVersion[]): void {
    const hash = versionsHash(namespace, className, versions);
    const shown = changedVersions([], versions);
    const reason = `secretproviderclass ${namespace}/${className} has new content since the last restart (${shown}; found on taking the lead)`;
    const annotation = rolloutAnnotation("spc", className);
    for (const w of this.deps.workloads.followingClass(namespace, className)) {
      if (this.deps.workloads.recorded(w, annotation) !== undefined) this.request(w, annotation, hash, reason, "secretproviderclass");
    }
    for (const secretObject of this.deps.secretProviderClass(namespace, className)?.spec.secretObjects ?? []) {
      const secret = secretObject.secretName;
      if (!secret) continue;
      const key = rolloutAnnotation("secret", secret);
      const why = `secret ${namespace}/${secret} (synced from secretproviderclass ${namespace}/${className}) has new content since the last restart (${shown}; found on taking the lead)`;
      for (const w of this.deps.workloads.followingSecret(namespace, secret)) {
        if (this.deps.workloads.recorded(w, key) !== undefined) this.request(w, key, hash, why, "secret");
      }
    }
  }

  /** Whether a workload following the Secret records content for it (so content first seen by this process may be a change). */
  secretRecorded(namespace: string, secret: string): boolean {
    const key = rolloutAnnotation("secret", secret);
    return this.deps.workloads.followingSecret(namespace, secret).some((w) => this.deps.workloads.recorded(w, key) !== undefined);
  }

  /**
   * A Secret a SecretSync writes has new data. `known`: the controller saw
   * the data before this change (otherwise a workload without an earlier
   * record is left alone: nothing says its pods hold older data).
   */
  secretChanged(namespace: string, secret: string, hash: string, versions: string, known: boolean): void {
    const key = rolloutAnnotation("secret", secret);
    const reason = `secret ${namespace}/${secret} (synced by secretsync ${namespace}/${secret}) has new data${versions ? ` (${versions})` : ""}`;
    for (const w of this.deps.workloads.followingSecret(namespace, secret)) {
      if (!known && w.templateAnnotations[key] === undefined) continue;
      this.request(w, key, hash, reason, "secret");
    }
  }

  /** The workload is gone. */
  forget(uid: string): void {
    this.lastRolled.delete(uid);
    this.failures.delete(uid);
    const p = this.pending.get(uid);
    if (p?.timer) clearTimeout(p.timer);
    this.pending.delete(uid);
  }

  stop(): void {
    this.stopped = true;
    for (const p of this.pending.values()) if (p.timer) clearTimeout(p.timer);
    this.pending.clear();
  }

  private request(workload: TrackedWorkload, annotation: string, hash: string, reason: string, trigger: Trigger): void {
    if (this.stopped) return;
    const uid = workload.metadata.uid ?? `${workload.kind}/${workload.metadata.namespace}/${workload.metadata.name}`;
    const held = this.pending.get(uid);
    // Already rolled (or about to be, or being) for this very content: nothing to do.
    const known = held?.annotations[annotation] ?? this.rolling.get(uid)?.annotations[annotation] ?? this.deps.workloads.recorded(workload, annotation);
    if (known === hash) return;
    const p: Pending = held ?? { workload, annotations: {}, reasons: [], triggers: new Set() };
    p.workload = workload;
    p.annotations[annotation] = hash;
    if (p.reasons.length < MAX_REASONS && !p.reasons.includes(reason)) p.reasons.push(reason);
    p.triggers.add(trigger);
    this.pending.set(uid, p);
    if (p.timer) return;
    const wait = (this.lastRolled.get(uid) ?? Number.NEGATIVE_INFINITY) + this.options.minIntervalMs - this.now();
    if (wait > 0) {
      this.deps.metrics.restartsDelayed.inc();
      this.deps.logger.info({ workload: `${workload.kind} ${workload.metadata.namespace}/${workload.metadata.name}`, inMs: wait }, "rollout held: the workload was rolled moments ago");
    }
    p.timer = setTimeout(() => void this.roll(uid), Math.max(0, wait));
    p.timer.unref();
  }

  private async roll(uid: string): Promise<void> {
    const p = this.pending.get(uid);
    if (!p || this.stopped) return;
    this.pending.delete(uid);
    const { workload } = p;
    const namespace = workload.metadata.namespace ?? "";
    const ref = `${workload.kind} ${namespace}/${workload.metadata.name}`;
    this.lastRolled.set(uid, this.now());
    this.rolling.set(uid, p);
    try {
      await this.deps.rest.request({
        method: "PATCH",
        path: `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/${PLURAL[workload.kind]}/${encodeURIComponent(workload.metadata.name)}`,
        body: { spec: { template: { metadata: { annotations: p.annotations } } } },
        contentType: "application/merge-patch+json",
        what: `roll ${ref}`,
      });
    } catch (err) {
      this.rolling.delete(uid);
      if (httpStatusOf(err) === 404) {
        this.failures.delete(uid);
        return;
      }
      const retryMs = this.retry(uid, p);
      this.deps.logger.warn({ workload: ref, error: describeApiError(err), retryInMs: retryMs }, "failed to roll the workload; trying again");
      await this.deps.events.recordFor(this.involved(workload), "Warning", "RestartOnRotationFailed", `failed to restart for ${p.reasons[0]}: ${describeApiError(err)}`.slice(0, MAX_MESSAGE));
      return;
    }
    this.deps.workloads.rememberRolled(workload, p.annotations);
    this.rolling.delete(uid);
    this.failures.delete(uid);
    for (const trigger of p.triggers) this.deps.metrics.restarts.inc({ kind: workload.kind, trigger });
    this.deps.logger.info({ workload: ref, reasons: p.reasons }, "rolled the workload: content it follows changed");
    await this.deps.events.recordFor(this.involved(workload), "Normal", "RestartedForRotation", `restarting all replicas: ${p.reasons.join("; ")}`.slice(0, MAX_MESSAGE));
  }

  /**
   * Holds a rollout whose patch failed again, merged under any rollout held
   * meanwhile (its newer content wins), and tries it after a backoff. Returns the wait.
   */
  private retry(uid: string, failed: Pending): number {
    const count = (this.failures.get(uid) ?? 0) + 1;
    this.failures.set(uid, count);
    const wait = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(count - 1, 16));
    if (this.stopped) return wait;
    const newer = this.pending.get(uid);
    if (newer) {
      for (const [annotation, hash] of Object.entries(failed.annotations)) newer.annotations[annotation] ??= hash;
      for (const reason of failed.reasons) if (newer.reasons.length < MAX_REASONS && !newer.reasons.includes(reason)) newer.reasons.push(reason);
      for (const trigger of failed.triggers) newer.triggers.add(trigger);
      return wait;
    }
    failed.timer = setTimeout(() => void this.roll(uid), wait);
    failed.timer.unref();
    this.pending.set(uid, failed);
    return wait;
  }

  private involved(w: TrackedWorkload) {
    return { apiVersion: "apps/v1", kind: w.kind, name: w.metadata.name, namespace: w.metadata.namespace ?? "", uid: w.metadata.uid };
  }
}
