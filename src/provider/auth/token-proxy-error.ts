// A failure on the way to identity binding's token proxy (its server name,
// its certificate, its address), kept apart from Entra ID's answers: MSAL
// reduces every transport failure to a bare "network_error", so the proxy
// client records what really happened and this error carries it, with the
// gRPC code kubelet reads and the flag to fix.
import type { status } from "@grpc/grpc-js";
import type { ErrorClass } from "../errors.ts";

export class TokenProxyError extends Error {
  readonly code: status;
  readonly errorClass: ErrorClass;

  constructor(code: status, errorClass: ErrorClass, message: string) {
    super(message);
    this.name = "TokenProxyError";
    this.code = code;
    this.errorClass = errorClass;
  }
}
