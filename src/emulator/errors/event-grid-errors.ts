// Event Grid data-plane errors (namespace topics), with the Azure Core body
// shape {"error":{"code","message"}} and the x-ms-error-code header.
import { ServiceError } from "./service-error.ts";

export abstract class EventGridError extends ServiceError {
  abstract readonly code: string;

  constructor(message: string) {
    super(message);
  }

  body(): unknown {
    this.headers["x-ms-error-code"] = this.code;
    return { error: { code: this.code, message: this.message } };
  }
}

export class EventGridBadRequestError extends EventGridError {
  readonly statusCode = 400;
  readonly code = "BadRequest";
}

export class EventGridUnauthorizedError extends EventGridError {
  readonly statusCode = 401;
  readonly code = "Unauthorized";
}

export class EventGridForbiddenError extends EventGridError {
  readonly statusCode = 403;
  readonly code = "Forbidden";
}

export class EventGridNotFoundError extends EventGridError {
  readonly statusCode = 404;
  readonly code = "NotFound";
}
