// Errors of the provider. Every error carries the gRPC code kubelet reads
// (transient vs final, reference/csi-kubelet.md B.9) and a short, stable error
// class used as a metric label; the message names the object and vault and
// never contains a secret value, a token or file content.
import { status } from "@grpc/grpc-js";
import { GrpcError } from "../shared/grpc-server.ts";

/** Stable error classes: the only values the `error`/`grpc_message` metric labels take. */
export const ERROR_CLASSES = [
  "InvalidArgument",
  "SecretNotFound",
  "KeyNotFound",
  "CertificateNotFound",
  "NotFound",
  "Forbidden",
  "Unauthorized",
  "AuthenticationFailed",
  "BadParameter",
  "Throttled",
  "BudgetExhausted",
  "ServiceUnavailable",
  "NetworkError",
  "DeadlineExceeded",
  "Cancelled",
  "ConversionFailed",
  "KeyVaultError",
  "Internal",
] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

export class ProviderError extends GrpcError {
  readonly errorClass: ErrorClass;
  constructor(code: status, errorClass: ErrorClass, message: string) {
    super(code, message);
    this.errorClass = errorClass;
    this.name = "ProviderError";
  }

  /** The same error with more context in front of the message. */
  wrap(prefix: string): ProviderError {
    return new ProviderError(this.code, this.errorClass, `${prefix}${this.message}`);
  }
}

/** A problem in the SecretProviderClass or the request: final, kubelet shows it to the user. */
export function invalidArgument(message: string): ProviderError {
  return new ProviderError(status.INVALID_ARGUMENT, "InvalidArgument", message);
}

/** A Key Vault value that cannot be turned into the requested file (bad PFX, bad base64...). */
export function conversionFailed(message: string): ProviderError {
  return new ProviderError(status.INVALID_ARGUMENT, "ConversionFailed", message);
}

export function deadlineExceeded(message: string): ProviderError {
  return new ProviderError(status.DEADLINE_EXCEEDED, "DeadlineExceeded", message);
}

/** Error class of anything thrown, for metric labels. */
export function errorClassOf(err: unknown): ErrorClass {
  return err instanceof ProviderError ? err.errorClass : "Internal";
}

/** Message of anything thrown. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
