// Instance Metadata Service errors: {"error","error_description"}.
import { ServiceError } from "./service-error.ts";

export class ImdsError extends ServiceError {
  readonly statusCode: number;
  readonly error: string;
  constructor(statusCode: number, error: string, description: string) {
    super(description);
    this.statusCode = statusCode;
    this.error = error;
  }

  body(): unknown {
    return { error: this.error, error_description: this.message };
  }
}

/** 400 invalid_request: missing Metadata header, missing query variable, unknown identity. */
export class ImdsInvalidRequestError extends ImdsError {
  constructor(description: string) {
    super(400, "invalid_request", description);
  }
}

/** 404 for paths IMDS does not serve. */
export class ImdsNotFoundError extends ImdsError {
  constructor(path: string) {
    super(404, "not_found", `No IMDS endpoint at ${path}.`);
  }
}

/** 429/5xx from an injected fault. */
export class ImdsUnavailableError extends ImdsError {
  constructor(statusCode: number, retryAfterSeconds?: number) {
    super(statusCode, statusCode === 429 ? "too_many_requests" : "service_unavailable", `Injected fault with status ${statusCode}.`);
    if (retryAfterSeconds !== undefined) this.headers["retry-after"] = String(retryAfterSeconds);
  }
}
