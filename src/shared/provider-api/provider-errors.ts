// What the driver passes on from a provider's errors. A provider's
// `error.code` becomes the `error_type` metric label only when it is one of a
// fixed set (upstream's error types, its mock provider's code and gRPC's code
// names); any other code is counted as "ProviderError", so a provider (or a
// tenant steering one) cannot grow the number of series. Texts from a provider reach kubelet's events
// and logs as one line without control characters, and bounded in length.

/** The label for codes outside the known set (upstream defines it and never uses it). */
export const UNKNOWN_PROVIDER_CODE = "ProviderError";

const KNOWN_CODES = new Set([
  // upstream's pkg/errors
  "FailedToMount",
  "FailedToEnsureMountPoint",
  "SecretProviderClassNotFound",
  "GRPCProviderError",
  "FileWriteError",
  "ProviderNotFound",
  "FailedToRotate",
  "PodNotFound",
  "PodVolumeNotFound",
  "UnexpectedTargetPath",
  "NodePublishSecretRefNotFound",
  "FailedToLookupProviderGRPCClient",
  "IncompatibleProviderVersion",
  "ProviderError",
  // the mock provider of upstream's end-to-end tests (test/e2eprovider)
  "MockProviderError",
  // gRPC status names, as Go spells them
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
]);

/** The error_type label for a provider's error.code. */
export function errorTypeOfProviderCode(code: string): string {
  return KNOWN_CODES.has(code) ? code : UNKNOWN_PROVIDER_CODE;
}

/** Longest provider text passed on (Kubernetes keeps about 1 KiB of an event's message). */
export const MAX_PROVIDER_TEXT = 1024;

/**
 * One line: line breaks (with the indentation after them) become a space,
 * other control characters (C0, DEL, C1, Unicode line separators, bidi
 * overrides) are shown as \uXXXX escapes, and the text is cut at `max`.
 */
export function oneLine(text: string, max = MAX_PROVIDER_TEXT): string {
  const flat = text
    .replace(/[ \t]*(\r\n|[\r\n\u2028\u2029])\s*/g, " ")
    .replace(/\t/g, " ")
    .replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    .trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
