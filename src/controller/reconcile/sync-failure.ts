// A reconcile that cannot finish: the condition reason upstream uses for it,
// and one line that names the object and the fix. The message goes into the
// SecretSync's status, an Event and the log, so it never holds a secret value.
import type { FailureReason } from "../api/conditions.ts";
import { oneLine } from "../../shared/provider-api/provider-errors.ts";

export class SyncFailure extends Error {
  override readonly name = "SyncFailure";
  readonly reason: FailureReason;
  /** False for what no retry can fix until an object changes (e.g. a missing sourcePath). */
  readonly retryable: boolean;

  constructor(reason: FailureReason, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(oneLine(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    this.retryable = options.retryable ?? true;
  }
}

/** How many names a message lists before it says how many more there are. */
export const MAX_LISTED_NAMES = 10;

/** "a, b, c and 7 more": a bounded list of names for a one-line message. */
export function listNames(names: readonly string[], max = MAX_LISTED_NAMES): string {
  if (names.length === 0) return "(none)";
  const shown = names.slice(0, max).map((n) => oneLine(n, 128));
  const rest = names.length - shown.length;
  return rest > 0 ? `${shown.join(", ")} and ${rest} more` : shown.join(", ");
}
