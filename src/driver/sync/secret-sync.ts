// The secretObjects syncer (reference driver-spec §6): mirrors objects mounted
// in a pod's volume into Kubernetes Secrets in the pod's namespace. Unlike
// upstream v1.6.0 it
// - writes only what differs (a JSON merge patch with an optimistic lock), and
//   nothing at all when the Secret already matches, so resourceVersion does not
//   churn (§10 row 6);
// - sets the owners in the same write that creates the Secret and only ever
//   adds owners, so garbage collection cannot delete it early (§10 rows 7, 8);
// - never touches a Secret it did not create (no managed label) (§10 row 10);
// - updates existing Secrets when the data or the secretObjects change (§10 row 9).
// No Secret value reaches a log line, an error, an event or a metric label.
import type { V1Secret } from "@kubernetes/client-node";
import type { DriverContext } from "../context.ts";
import { describeApiError, httpStatusOf, type KubeClient } from "../kube/kube-client.ts";
import { MANAGED_SECRET_LABEL, type OwnerReference, type SecretObject, type SecretProviderClass } from "../../shared/kube/kube-types.ts";
import { OS_TYPE } from "../metrics.ts";
import type { MountedVolume } from "../volume/mounted-volumes.ts";
import { SecretsApi } from "./secret-api.ts";
import { buildSecretData, loadTlsSupport, TLS_SECRET_TYPE, validateSecretObject, type MountedFile } from "../../shared/secrets/secret-data.ts";
import { readMountedFiles } from "./mounted-files.ts";
import { isMissingFile, missingFiles } from "../../shared/provider-api/missing-objects.ts";
import { mergeOwners, OwnerLookupError, resolveOwners, type OwnerResolution } from "./secret-owners.ts";

export interface SyncResult {
  created: string[];
  updated: string[];
  unchanged: string[];
  failed: Array<{ secretName: string; reason: string }>;
}

/** Event reasons (upstream's names). */
export const SecretEventReason = {
  CreateFailed: "FailedToCreateSecret",
  RotationFailed: "SecretRotationFailed",
  RotationComplete: "SecretRotationComplete",
} as const;

/** error_type label values of sync_k8s_secret_error_total: short and stable, never free text. */
export const SyncErrorType = {
  MountedFiles: "FailedToGetMountedFiles",
  Validation: "InvalidSecretObject",
  Data: "FailedToGetSecretData",
  Owners: "FailedToGetOwners",
  NotManaged: "SecretNotManaged",
  TypeChanged: "SecretTypeImmutable",
  Create: "FailedToCreateSecret",
  Patch: "FailedToPatchSecret",
  Get: "FailedToGetSecret",
  Conflict: "SecretUpdateConflict",
} as const;

const FORBIDDEN_HINT =
  "The secret operation failed with forbidden error. If you installed the CSI driver using helm, ensure syncSecret.enabled=true is set.";
const MAX_SECRET_BYTES = 1024 * 1024;
const WRITE_ATTEMPTS = 5;
const MANAGED_VALUE = "true";

/** A failed secretObject: what to report, where, and under which stable class. */
class SyncFailure extends Error {
  readonly errorType: string;
  readonly eventReason: string | undefined;
  constructor(errorType: string, message: string, eventReason: string | undefined, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.errorType = errorType;
    this.eventReason = eventReason;
  }
}

type Outcome = "created" | "updated" | "unchanged";

interface DesiredSecret {
  namespace: string;
  name: string;
  type: string;
  /** key -> base64, as the API carries it. */
  data: Record<string, string>;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  owners: OwnerReference[];
}

/**
 * Removes any Secret value that an API server message might quote, so that
 * error texts are safe to log and to put in events.
 */
export function redactValues(message: string, data: Record<string, Buffer>): string {
  let out = message;
  for (const value of Object.values(data)) {
    for (const form of [value.toString("base64"), value.toString("utf8")]) {
      if (form.length >= 4 && out.includes(form)) out = out.split(form).join("<redacted>");
    }
  }
  return out;
}

function changedEntries(existing: Record<string, string> | undefined, wanted: Record<string, string>): Record<string, string> | undefined {
  const diff: Record<string, string> = {};
  for (const [k, v] of Object.entries(wanted)) if (existing?.[k] !== v) diff[k] = v;
  return Object.keys(diff).length > 0 ? diff : undefined;
}

/**
 * The merge patch that brings `existing` to `desired`, or undefined when
 * nothing differs. Data is ours alone and replaced key by key (removed keys
 * become null); labels and annotations are only set, never removed, so what
 * others added stays; owners are merged by uid.
 */
export function secretPatch(existing: V1Secret, desired: DesiredSecret): { patch: Record<string, unknown>; dataChanged: boolean } | undefined {
  const metadata: Record<string, unknown> = {};
  const patch: Record<string, unknown> = {};
  const labels = changedEntries(existing.metadata?.labels, desired.labels);
  if (labels) metadata.labels = labels;
  const annotations = changedEntries(existing.metadata?.annotations, desired.annotations);
  if (annotations) metadata.annotations = annotations;
  const owners = mergeOwners(existing.metadata?.ownerReferences, desired.owners);
  if (owners.changed) metadata.ownerReferences = owners.owners;

  const data: Record<string, string | null> = {};
  let dataChanged = false;
  for (const [k, v] of Object.entries(desired.data)) {
    if (existing.data?.[k] !== v) {
      data[k] = v;
      dataChanged = true;
    }
  }
  for (const k of Object.keys(existing.data ?? {})) {
    if (!(k in desired.data)) {
      data[k] = null;
      dataChanged = true;
    }
  }
  if (dataChanged) patch.data = data;
  if (Object.keys(metadata).length === 0 && !dataChanged) return undefined;
  // The resourceVersion makes the patch fail (409) if the Secret changed since
  // it was read, so concurrent owner additions from other nodes are not lost.
  metadata.resourceVersion = existing.metadata?.resourceVersion;
  patch.metadata = metadata;
  return { patch, dataChanged };
}

export class SecretSyncer {
  private readonly ctx: DriverContext;
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(ctx: DriverContext) {
    this.ctx = ctx;
  }

  /** Mirrors spc.spec.secretObjects from the volume's mounted files into Secrets in the pod's namespace. */
  async syncVolume(volume: MountedVolume, spc: SecretProviderClass): Promise<SyncResult> {
    const result: SyncResult = { created: [], updated: [], unchanged: [], failed: [] };
    const objects = spc.spec.secretObjects ?? [];
    if (!this.ctx.options.enableSecretSync || objects.length === 0) return result;
    const started = process.hrtime.bigint();
    try {
      await this.syncObjects(volume, spc, objects, result);
    } finally {
      this.ctx.metrics.syncK8sSecretDuration.observe({ os_type: OS_TYPE }, Number(process.hrtime.bigint() - started) / 1e9);
    }
    return result;
  }

  private async syncObjects(volume: MountedVolume, spc: SecretProviderClass, objects: SecretObject[], result: SyncResult): Promise<void> {
    const namespace = volume.pod.namespace;
    const spcRef = `${spc.metadata.namespace ?? namespace}/${spc.metadata.name}`;
    const nameOf = (obj: SecretObject) => (obj.secretName ?? "").trim();
    const failAll = async (failure: SyncFailure) => {
      for (const obj of objects) this.recordFailure(volume, nameOf(obj), failure, result);
      if (failure.eventReason) await this.event(volume, "Warning", failure.eventReason, failure.message);
    };

    const kube = this.ctx.kube;
    if (kube instanceof Error) {
      await failAll(new SyncFailure(SyncErrorType.Get, `the Kubernetes API is not configured: ${kube.message}`, undefined));
      return;
    }
    const api = new SecretsApi(kube.rest);

    let files: Map<string, MountedFile>;
    try {
      files = await readMountedFiles(this.ctx, volume);
    } catch (err) {
      await failAll(new SyncFailure(SyncErrorType.MountedFiles, `failed to get mounted files, err: ${(err as Error).message}`, SecretEventReason.CreateFailed));
      return;
    }

    let owners: Promise<OwnerResolution> | undefined;
    const missing = missingFiles(volume.objectVersions);
    const isMissing = (path: string) => isMissingFile(path, missing);
    if (objects.some((o) => o.type === TLS_SECRET_TYPE)) await loadTlsSupport();
    for (const obj of objects) {
      const secretName = nameOf(obj);
      let data: Record<string, Buffer>;
      try {
        try {
          validateSecretObject(obj);
        } catch (err) {
          throw new SyncFailure(
            SyncErrorType.Validation,
            `failed validation for secret object in spc ${spcRef}, err: ${(err as Error).message}`,
            SecretEventReason.CreateFailed,
          );
        }
        try {
          data = buildSecretData(obj, files, volume.targetPath, isMissing);
        } catch (err) {
          throw new SyncFailure(
            SyncErrorType.Data,
            `failed to get data in spc ${spcRef} for secret ${secretName}, err: ${(err as Error).message}`,
            SecretEventReason.CreateFailed,
          );
        }
        owners ??= resolveOwners(kube, api, volume);
        let resolution: OwnerResolution;
        try {
          resolution = await owners;
        } catch (err) {
          const detail = err instanceof OwnerLookupError && err.cause !== undefined ? `${err.message}: ${describeApiError(err.cause)}` : (err as Error).message;
          throw new SyncFailure(
            SyncErrorType.Owners,
            `failed to get the owners of secret ${secretName} for pod ${namespace}/${volume.pod.name}, err: ${detail}`,
            SecretEventReason.CreateFailed,
            err,
          );
        }
        if (resolution.kind === "skip") {
          this.ctx.logger.debug({ pod: `${namespace}/${volume.pod.name}`, reason: resolution.reason }, "secret sync skipped");
          return;
        }
        const desired = this.desiredSecret(namespace, secretName, obj, data, resolution.owners);
        const outcome = await this.withLock(`${namespace}/${secretName}`, () => this.syncOne(kube, api, volume, desired, data));
        result[outcome].push(secretName);
      } catch (err) {
        const failure =
          err instanceof SyncFailure
            ? err
            : new SyncFailure(SyncErrorType.Create, `failed to sync secret ${secretName}, err: ${(err as Error).message}`, SecretEventReason.CreateFailed);
        this.recordFailure(volume, secretName, failure, result);
        if (failure.eventReason) await this.event(volume, "Warning", failure.eventReason, failure.message);
      }
    }
  }

  private desiredSecret(namespace: string, name: string, obj: SecretObject, data: Record<string, Buffer>, owners: OwnerReference[]): DesiredSecret {
    const encoded: Record<string, string> = {};
    let size = 0;
    for (const [k, v] of Object.entries(data)) {
      encoded[k] = v.toString("base64");
      size += v.length;
    }
    if (size > MAX_SECRET_BYTES) {
      this.ctx.logger.warn({ secret: `${namespace}/${name}`, bytes: size }, "secret data exceeds 1 MiB; the API server will likely refuse it");
    }
    return {
      namespace,
      name,
      type: obj.type,
      data: encoded,
      labels: { ...obj.labels, [MANAGED_SECRET_LABEL]: MANAGED_VALUE },
      annotations: { ...obj.annotations },
      owners,
    };
  }

  /** Creates the Secret, or patches what differs in a managed one; retried on conflicts. */
  private async syncOne(kube: KubeClient, api: SecretsApi, volume: MountedVolume, desired: DesiredSecret, raw: Record<string, Buffer>): Promise<Outcome> {
    const { namespace, name } = desired;
    const ref = `${namespace}/${name}`;
    const apiFailure = (errorType: string, what: string, reason: string, err: unknown): SyncFailure => {
      if (httpStatusOf(err) === 403) this.ctx.logger.error({ secret: ref }, FORBIDDEN_HINT);
      return new SyncFailure(errorType, `${what}, err: ${redactValues(describeApiError(err), raw)}`, reason, err);
    };

    for (let attempt = 1; ; attempt++) {
      let existing: V1Secret | undefined;
      try {
        existing = await api.get(namespace, name);
      } catch (err) {
        throw apiFailure(SyncErrorType.Get, `failed to get secret ${ref}`, SecretEventReason.CreateFailed, err);
      }

      if (!existing) {
        try {
          await api.create(namespace, {
            metadata: { name, namespace, labels: desired.labels, annotations: desired.annotations, ownerReferences: desired.owners },
            type: desired.type,
            data: desired.data,
          });
        } catch (err) {
          // Created meanwhile (another volume, another node): compare with it.
          if (httpStatusOf(err) === 409 && attempt < WRITE_ATTEMPTS) continue;
          throw apiFailure(SyncErrorType.Create, `failed to create Kubernetes secret ${ref}`, SecretEventReason.CreateFailed, err);
        }
        this.ctx.metrics.syncK8sSecret.inc({ provider: this.ctx.metrics.providerLabel(volume.provider), os_type: OS_TYPE });
        this.ctx.logger.info({ secret: ref, pod: `${namespace}/${volume.pod.name}`, type: desired.type }, "created synced secret");
        return "created";
      }

      if (existing.metadata?.labels?.[MANAGED_SECRET_LABEL] !== MANAGED_VALUE) {
        throw new SyncFailure(
          SyncErrorType.NotManaged,
          `secret ${ref} already exists and is not managed by the secrets-store csi driver (no label ${MANAGED_SECRET_LABEL}=${MANAGED_VALUE}); it was left unchanged`,
          SecretEventReason.CreateFailed,
        );
      }
      const existingType = existing.type || "Opaque";
      if (existingType !== desired.type) {
        throw new SyncFailure(
          SyncErrorType.TypeChanged,
          `failed to patch secret ${ref}: its type is ${existingType} but secretObjects wants ${desired.type}, and the type of a secret cannot change; delete the secret to have it recreated`,
          SecretEventReason.RotationFailed,
        );
      }
      const change = secretPatch(existing, desired);
      if (!change) return "unchanged";
      try {
        await api.mergePatch(namespace, name, change.patch);
      } catch (err) {
        if (httpStatusOf(err) === 409 && attempt < WRITE_ATTEMPTS) continue;
        if (httpStatusOf(err) === 409) throw apiFailure(SyncErrorType.Conflict, `failed to patch secret ${name} with new data`, SecretEventReason.RotationFailed, err);
        throw apiFailure(SyncErrorType.Patch, `failed to patch secret ${name} with new data`, SecretEventReason.RotationFailed, err);
      }
      this.ctx.metrics.syncK8sSecret.inc({ provider: this.ctx.metrics.providerLabel(volume.provider), os_type: OS_TYPE });
      this.ctx.logger.info({ secret: ref, pod: `${namespace}/${volume.pod.name}`, dataChanged: change.dataChanged }, "updated synced secret");
      if (change.dataChanged) await kube.recordEvent(volume.pod, "Normal", SecretEventReason.RotationComplete, `successfully rotated K8s secret ${name}`);
      return "updated";
    }
  }

  private recordFailure(volume: MountedVolume, secretName: string, failure: SyncFailure, result: SyncResult): void {
    result.failed.push({ secretName, reason: failure.message });
    this.ctx.metrics.syncK8sSecretError.inc({ provider: this.ctx.metrics.providerLabel(volume.provider), error_type: failure.errorType, os_type: OS_TYPE });
    this.ctx.logger.warn(
      { pod: `${volume.pod.namespace}/${volume.pod.name}`, secret: secretName, errorType: failure.errorType, error: failure.message },
      "secret sync failed",
    );
  }

  private async event(volume: MountedVolume, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    if (!(this.ctx.kube instanceof Error)) await this.ctx.kube.recordEvent(volume.pod, type, reason, message);
  }

  /** Runs fn after earlier syncs of the same Secret in this process have finished. */
  private async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(key, settled);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === settled) this.locks.delete(key);
    }
  }
}
