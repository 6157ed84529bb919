// The conditions of a SecretSync's status, with upstream's types, reasons and
// messages (its internal/controller/conditions.go), so tools written for
// upstream's controller read ours the same way. A condition is set as
// apimachinery's meta.SetStatusCondition does: lastTransitionTime moves only
// when the status changes.
import type { Condition, ConditionStatus, SecretSync } from "./secret-sync.ts";

export const ConditionType = {
  /** The first sync: false until the Secret was written once. */
  Created: "SecretCreated",
  /** Every later sync. */
  Updated: "SecretUpdated",
} as const;

export const Reason = {
  SyncStarting: "SyncStarting",
  NoUpdatesAttemptedYet: "NoUpdatesAttemptedYet",
  CreateSuccessful: "CreateSuccessful",
  SecretUpToDate: "SecretUpToDate",
  ProviderError: "ProviderError",
  InvalidLabel: "InvalidClusterSecretLabelError",
  InvalidAnnotation: "InvalidClusterSecretAnnotationError",
  ControllerSyncError: "ControllerSyncError",
  ControllerPatchError: "ControllerPatchError",
  SecretProviderClassMisconfigured: "SecretProviderClassMisconfigured",
  RemoteSecretStoreFetchFailed: "RemoteSecretStoreFetchFailed",
} as const;

export type FailureReason =
  | typeof Reason.ProviderError
  | typeof Reason.InvalidLabel
  | typeof Reason.InvalidAnnotation
  | typeof Reason.ControllerSyncError
  | typeof Reason.ControllerPatchError
  | typeof Reason.SecretProviderClassMisconfigured
  | typeof Reason.RemoteSecretStoreFetchFailed;

/** Every failure reason, in a fixed order (metric labels come from this list only). */
export const FAILURE_REASONS: readonly FailureReason[] = [
  Reason.ProviderError,
  Reason.InvalidLabel,
  Reason.InvalidAnnotation,
  Reason.ControllerSyncError,
  Reason.ControllerPatchError,
  Reason.SecretProviderClassMisconfigured,
  Reason.RemoteSecretStoreFetchFailed,
];

export const Message = {
  CreateSuccessful: "Secret created successfully.",
  UpToDate: "Secret contains last observed values.",
} as const;

/** The CRD keeps at most 16 conditions and 32 KiB per message. */
const MAX_CONDITIONS = 16;
const MAX_MESSAGE = 32 * 1024;

/** True when a condition records a failure: the next reconcile writes the Secret again even with an unchanged hash. */
export function hasFailure(ss: SecretSync): boolean {
  return (ss.status?.conditions ?? []).some((c) => (FAILURE_REASONS as readonly string[]).includes(c.reason));
}

/** The condition type a reconcile reports on: SecretCreated until the first sync succeeded. */
export function conditionTypeFor(ss: SecretSync): string {
  return ss.status?.syncHash ? ConditionType.Updated : ConditionType.Created;
}

/**
 * Sets a condition in a list (a new list is returned): an existing condition
 * of that type keeps its lastTransitionTime unless the status changes.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  update: { type: string; status: ConditionStatus; reason: string; message?: string; observedGeneration?: number },
  now: Date,
): Condition[] {
  const list = (conditions ?? []).map((c) => ({ ...c }));
  const message = (update.message ?? "").slice(0, MAX_MESSAGE);
  const existing = list.find((c) => c.type === update.type);
  if (!existing) {
    const added: Condition = { type: update.type, status: update.status, reason: update.reason, message, lastTransitionTime: now.toISOString().replace(/\.\d{3}Z$/, "Z") };
    if (update.observedGeneration !== undefined) added.observedGeneration = update.observedGeneration;
    list.push(added);
    return list.slice(-MAX_CONDITIONS);
  }
  if (existing.status !== update.status) existing.lastTransitionTime = now.toISOString().replace(/\.\d{3}Z$/, "Z");
  existing.status = update.status;
  existing.reason = update.reason;
  existing.message = message;
  if (update.observedGeneration !== undefined) existing.observedGeneration = update.observedGeneration;
  return list;
}

/** The two conditions a new SecretSync starts with (upstream's initConditions). */
export function initialConditions(ss: SecretSync, now: Date): Condition[] {
  let list = ss.status?.conditions ?? [];
  if (!list.some((c) => c.type === ConditionType.Created)) {
    list = setCondition(list, { type: ConditionType.Created, status: "Unknown", reason: Reason.SyncStarting }, now);
  }
  if (!list.some((c) => c.type === ConditionType.Updated)) {
    list = setCondition(list, { type: ConditionType.Updated, status: "Unknown", reason: Reason.NoUpdatesAttemptedYet }, now);
  }
  return list;
}
