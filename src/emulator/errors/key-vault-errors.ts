// Key Vault data-plane errors, one class per service error code, with the
// body shape {"error":{"code","message","innererror":{"code"}}}.
import { ServiceError } from "./service-error.ts";

export type ObjectKindName = "secret" | "key" | "certificate";

export abstract class KeyVaultError extends ServiceError {
  abstract readonly code: string;
  readonly innerCode: string | undefined = undefined;

  body(): unknown {
    const error: Record<string, unknown> = { code: this.code, message: this.message };
    if (this.innerCode) error.innererror = { code: this.innerCode };
    return { error };
  }
}

/** 401 without or with an unusable bearer token; carries the challenge. */
export class UnauthorizedError extends KeyVaultError {
  readonly statusCode = 401;
  readonly code = "Unauthorized";
  constructor(message: string, challenge: string) {
    super(message);
    this.headers["www-authenticate"] = challenge;
  }
}

export abstract class ForbiddenError extends KeyVaultError {
  readonly statusCode = 403;
  readonly code = "Forbidden";
}

export class SecretDisabledError extends ForbiddenError {
  override readonly innerCode = "SecretDisabled";
  constructor(operation = "get") {
    super(`Operation ${operation} is not allowed on a disabled secret.`);
  }
}

export class KeyDisabledError extends ForbiddenError {
  override readonly innerCode = "KeyDisabled";
  constructor(operation = "get") {
    super(`Operation ${operation} is not allowed on a disabled key.`);
  }
}

export class ForbiddenByRbacError extends ForbiddenError {
  override readonly innerCode = "ForbiddenByRbac";
}

export class SecretNotFoundError extends KeyVaultError {
  readonly statusCode = 404;
  readonly code = "SecretNotFound";
}

export class KeyNotFoundError extends KeyVaultError {
  readonly statusCode = 404;
  readonly code = "KeyNotFound";
}

export class CertificateNotFoundError extends KeyVaultError {
  readonly statusCode = 404;
  readonly code = "CertificateNotFound";
}

export class PendingCertificateNotFoundError extends KeyVaultError {
  readonly statusCode = 404;
  readonly code = "PendingCertificateNotFound";
}

/** The host names a vault the emulator does not hold (real Key Vault would fail DNS resolution). */
export class VaultNotFoundError extends KeyVaultError {
  readonly statusCode = 404;
  readonly code = "VaultNotFound";
  constructor(vault: string, host: string) {
    super(`The vault '${vault}' (host ${host}) does not exist in the Key Vault emulator. Seed it first (vaults[].name).`);
  }
}

/** A path that is no Key Vault operation. */
export class OperationNotFoundError extends KeyVaultError {
  readonly statusCode = 404;
  readonly code = "NotFound";
}

export class MethodNotAllowedError extends KeyVaultError {
  readonly statusCode = 405;
  readonly code = "MethodNotAllowed";
}

export class BadParameterError extends KeyVaultError {
  readonly statusCode = 400;
  readonly code = "BadParameter";
}

export class ConflictError extends KeyVaultError {
  readonly statusCode = 409;
  readonly code = "Conflict";
}

export class ThrottledError extends KeyVaultError {
  readonly statusCode = 429;
  readonly code = "Throttled";
  constructor(retryAfterSeconds: number) {
    super("Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached");
    this.headers["retry-after"] = String(retryAfterSeconds);
  }
}

export class InternalServerError extends KeyVaultError {
  readonly statusCode = 500;
  readonly code = "InternalServerError";
}

export class ServiceUnavailableError extends KeyVaultError {
  readonly statusCode = 503;
  readonly code = "ServiceUnavailable";
}

/** Any other 5xx status injected by a fault rule. */
export class ServerError extends KeyVaultError {
  readonly statusCode: number;
  readonly code: string;
  constructor(statusCode: number, code: string, message: string) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
  }
}

const NOT_FOUND = { secret: SecretNotFoundError, key: KeyNotFoundError, certificate: CertificateNotFoundError } as const;

/** "A secret with (name/id) s1/abc was not found in this key vault. …" */
export function objectNotFound(kind: ObjectKindName, name: string, version?: string): KeyVaultError {
  const id = version ? `${name}/${version}` : name;
  return new NOT_FOUND[kind](
    `A ${kind} with (name/id) ${id} was not found in this key vault. If you recently deleted this ${kind} you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );
}

export function deletedObjectNotFound(kind: ObjectKindName, name: string): KeyVaultError {
  const label = kind.charAt(0).toUpperCase() + kind.slice(1);
  return new NOT_FOUND[kind](`Deleted ${label} not found: ${name}`);
}

/** The error a fault rule injects for a status code. */
export function injectedServerError(statusCode: number): KeyVaultError {
  if (statusCode === 500) return new InternalServerError("The server encountered an internal error (injected fault).");
  if (statusCode === 503) return new ServiceUnavailableError("The service is temporarily unavailable (injected fault).");
  const codes: Record<number, string> = { 502: "BadGateway", 504: "GatewayTimeout", 408: "RequestTimeout" };
  return new ServerError(statusCode, codes[statusCode] ?? "ServiceError", `Injected fault with status ${statusCode}.`);
}
