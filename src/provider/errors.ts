// Errors of the provider. Every error carries the gRPC code kubelet reads
// (transient vs final, reference/csi-kubelet.md B.9) and a short, stable error
// class used as a metric label; the message names the object and vault and
// never contains a secret value, a token or file content.
// grpc-js's status codes from the file that defines them, not from its index:
// the objects parser's worker thread builds these errors, and loading grpc-js
// there (http2, tls, net) cost the thread about 11 MiB.
import { Status as status } from "@grpc/grpc-js/build/src/constants.js";
import { GrpcError } from "../shared/grpc/grpc-error.ts";

/** Stable error classes: the only values the `error`/`grpc_message` metric labels take. */
export const ERROR_CLASSES = [
  "InvalidArgument",
  "SecretNotFound",
  "KeyNotFound",
  "CertificateNotFound",
  "NotFound",
  "Forbidden",
  "ObjectDisabled",
  "Unauthorized",
  "AuthenticationFailed",
  "BadParameter",
  "WrongTenant",
  "IdentityNotFound",
  "VaultNotFound",
  "CertificateUntrusted",
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

/** Node's codes for a server certificate the provider does not trust. */
const TLS_TRUST_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);
const TLS_TRUST_TEXT = /self[- ]signed certificate|unable to verify the first certificate|unable to get (local )?issuer certificate|certificate has expired|certificate is not yet valid|Hostname\/IP does not match certificate/i;

/**
 * A TLS trust failure (untrusted CA, expired or mismatching certificate) as a
 * final error naming the host and the problem: retrying cannot fix it.
 */
export function tlsTrustError(err: unknown, fallbackHost: string): ProviderError | undefined {
  const e = err as { code?: unknown; message?: string; request?: { url?: string } };
  const code = typeof e.code === "string" ? e.code : "";
  const message = (e.message ?? "").split("\n")[0]!.trim();
  if (!TLS_TRUST_CODES.has(code) && !TLS_TRUST_TEXT.test(message)) return undefined;
  let host = fallbackHost;
  try {
    if (e.request?.url) host = new URL(e.request.url).host;
  } catch {
    // keep the fallback
  }
  return new ProviderError(
    status.FAILED_PRECONDITION,
    "CertificateUntrusted",
    `TLS: the certificate of ${host} is not trusted: ${message}${code && !message.includes(code) ? ` (${code})` : ""}; ` +
      "the provider trusts the system CAs and those in NODE_EXTRA_CA_CERTS",
  );
}
