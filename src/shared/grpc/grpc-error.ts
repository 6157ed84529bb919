// The error a gRPC handler throws to answer with a code and a message, in a
// module of its own: code that only builds errors (the provider's objects
// parser in its worker thread) needs it without loading grpc-js.
import type { status } from "@grpc/grpc-js";

/** A gRPC error with a code and a message kubelet shows to the user. */
export class GrpcError extends Error {
  readonly code: status;
  constructor(code: status, message: string) {
    super(message);
    this.code = code;
  }
}
