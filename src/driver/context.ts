// What every part of the driver shares: options, logger, metrics, the mounter,
// provider clients, Kubernetes access and the record of mounted volumes.
import { status } from "@grpc/grpc-js";
import type { Logger } from "../shared/logger.ts";
import type { PodStatusWrites } from "./kube/pod-status-writes.ts";
import { DriverError, ErrorType } from "./errors.ts";
import type { KubeClient } from "./kube/kube-client.ts";
import type { MountedVolume, MountedVolumes } from "./volume/mounted-volumes.ts";
import type { SecretProviderClass } from "../shared/kube/kube-types.ts";
import type { Mounter } from "./volume/mounter.ts";
import type { DriverMetrics } from "./metrics.ts";
import type { DriverOptions } from "./options.ts";
import type { ProviderClients } from "../shared/provider-api/provider-client.ts";
import type { TargetHold, TargetLocks } from "./volume/target-locks.ts";

export interface DriverContext {
  options: DriverOptions;
  logger: Logger;
  metrics: DriverMetrics;
  mounter: Mounter;
  providers: ProviderClients;
  volumes: MountedVolumes;
  /** One operation per target at a time. */
  locks: TargetLocks;
  /** The Kubernetes client, or the reason there is none (e.g. no kubeconfig). */
  kube: KubeClient | Error;
  /** Mirrors the volume's secretObjects into Kubernetes Secrets (when sync is enabled). */
  syncSecrets?: (volume: MountedVolume, spc: SecretProviderClass) => Promise<void>;
  /** A random per-volume offset for the poll interval. */
  jitter?: () => number;
  /** Writes the volumes' status objects after their publish has answered (absent: the publish writes it itself). */
  podStatuses?: PodStatusWrites;
  /** Refreshes the volume's group now (rotation reconciler), when rotation is enabled. */
  refreshNow?: (volume: MountedVolume, deadline: Date, held?: TargetHold) => Promise<boolean>;
}

export function requireKube(ctx: DriverContext): KubeClient {
  if (ctx.kube instanceof Error) {
    throw new DriverError(
      status.UNAVAILABLE,
      ErrorType.KubernetesUnavailable,
      `the Kubernetes API is not configured: ${ctx.kube.message}`,
    );
  }
  return ctx.kube;
}
