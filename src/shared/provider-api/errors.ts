// Errors of a secrets-store CSI operation: the gRPC code kubelet reads (final
// vs retryable, reference csi-kubelet B.9) and upstream's `error_type` label
// (its pkg/errors) that node_publish_error_total counts. The driver throws
// them, and so does the provider client that the driver and the cluster-level
// controller share.
import { status } from "@grpc/grpc-js";
import { GrpcError } from "../grpc/grpc-server.ts";

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
  /** ABORTED: another call on the same target or volume is in progress (kubelet retries); not a mount failure. */
  OperationInProgress: "OperationInProgress",
} as const;

export class OperationError extends GrpcError {
  readonly errorType: string;
  /** The provider of the volume, once known (for the metrics label). */
  provider?: string;
  constructor(code: status, errorType: string, message: string) {
    super(code, message);
    this.errorType = errorType;
  }
}
