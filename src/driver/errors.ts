// Errors of the driver. Each carries the gRPC code kubelet reads (final vs
// retryable, reference csi-kubelet B.9) and the upstream `error_type` label
// used by node_publish_error_total.
import { status } from "@grpc/grpc-js";
import { GrpcError } from "../shared/grpc/grpc-server.ts";

/** Upstream's error_type label values (pkg/errors). */
export const ErrorType = {
  FailedToMount: "FailedToMount",
  FailedToEnsureMountPoint: "FailedToEnsureMountPoint",
  SecretProviderClassNotFound: "SecretProviderClassNotFound",
  GRPCProviderError: "GRPCProviderError",
  FileWriteError: "FileWriteError",
  ProviderNotFound: "ProviderNotFound",
  PodStatusWriteError: "PodStatusWriteError",
  KubernetesUnavailable: "KubernetesUnavailable",
  FailedToRotate: "FailedToRotate",
} as const;

export class DriverError extends GrpcError {
  readonly errorType: string;
  /** The provider of the volume, once known (for the metrics label). */
  provider?: string;
  constructor(code: status, errorType: string, message: string) {
    super(code, message);
    this.errorType = errorType;
  }
}

export function invalidArgument(message: string): DriverError {
  return new DriverError(status.INVALID_ARGUMENT, ErrorType.FailedToMount, message);
}

/** The error_type label for anything thrown during a publish. */
export function errorTypeOf(err: unknown): string {
  return err instanceof DriverError ? err.errorType : ErrorType.FailedToMount;
}
