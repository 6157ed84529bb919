// Errors of the driver: gRPC code plus upstream's `error_type` label
// (src/shared/provider-api/errors.ts, shared with the provider client).
import { status } from "@grpc/grpc-js";
import { ErrorType, OperationError } from "../shared/provider-api/errors.ts";

export { ErrorType, OperationError as DriverError };

export function invalidArgument(message: string): OperationError {
  return new OperationError(status.INVALID_ARGUMENT, ErrorType.FailedToMount, message);
}

/** The error_type label for anything thrown during a publish. */
export function errorTypeOf(err: unknown): string {
  return err instanceof OperationError ? err.errorType : ErrorType.FailedToMount;
}
