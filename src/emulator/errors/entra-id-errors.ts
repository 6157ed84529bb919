// Entra ID (Azure AD v2.0) token endpoint errors, one class per OAuth error
// code, with the body shape MSAL parses:
// {"error","error_description":"AADSTS…","error_codes":[…],"timestamp","trace_id","correlation_id"}.
import { randomUUID } from "node:crypto";
import { ServiceError } from "./service-error.ts";

export abstract class EntraIdError extends ServiceError {
  abstract readonly error: string;
  readonly aadstsCode: number;
  readonly traceId = randomUUID();
  correlationId: string = randomUUID();

  constructor(aadstsCode: number, message: string) {
    super(`AADSTS${aadstsCode}: ${message}`);
    this.aadstsCode = aadstsCode;
  }

  body(): unknown {
    const timestamp = new Date().toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
    return {
      error: this.error,
      error_description: `${this.message} Trace ID: ${this.traceId} Correlation ID: ${this.correlationId} Timestamp: ${timestamp}`,
      error_codes: [this.aadstsCode],
      timestamp,
      trace_id: this.traceId,
      correlation_id: this.correlationId,
    };
  }
}

export class InvalidRequestError extends EntraIdError {
  readonly statusCode = 400;
  readonly error = "invalid_request";
}

export class InvalidClientError extends EntraIdError {
  readonly statusCode = 401;
  readonly error = "invalid_client";
}

export class UnauthorizedClientError extends EntraIdError {
  readonly statusCode = 400;
  readonly error = "unauthorized_client";
}

export class UnsupportedGrantTypeError extends EntraIdError {
  readonly statusCode = 400;
  readonly error = "unsupported_grant_type";
}

export class InvalidScopeError extends EntraIdError {
  readonly statusCode = 400;
  readonly error = "invalid_scope";
}

/** 429/5xx from an injected fault. */
export class TemporarilyUnavailableError extends EntraIdError {
  readonly statusCode: number;
  readonly error = "temporarily_unavailable";
  constructor(statusCode: number, retryAfterSeconds?: number) {
    super(statusCode === 429 ? 50196 : 90033, statusCode === 429 ? "The server terminated an operation because it encountered a client request loop." : "A transient error has occurred. Please try again.");
    this.statusCode = statusCode;
    if (retryAfterSeconds !== undefined) this.headers["retry-after"] = String(retryAfterSeconds);
  }
}
