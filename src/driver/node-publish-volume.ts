// NodePublishVolume: make the pod's objects appear as files on a tmpfs at the
// target path (reference driver-spec §2.5), or refresh a volume that is
// already mounted (republish).
import { mkdir, rmdir } from "node:fs/promises";
import { status } from "@grpc/grpc-js";
import type { DriverContext } from "./context.ts";
import { requireKube } from "./context.ts";
import { DriverError, ErrorType, invalidArgument } from "./errors.ts";
import type { PodRef } from "./kube-client.ts";
import type { SecretProviderClass } from "./kube-types.ts";
import type { MountState } from "./mounter.ts";
import { buildPodStatus } from "./pod-status.ts";
import { fetchAndWriteContent, providerOf } from "./volume-content.ts";
import { POD_NAME_KEY, POD_NAMESPACE_KEY, POD_UID_KEY, PROVIDER_NAME_KEY, SPC_NAME_KEY } from "./volume-attributes.ts";
import { nextRefreshAt } from "./volume-refresh.ts";
import type { MountedVolume } from "./mounted-volumes.ts";

export interface NodePublishVolumeRequest {
  volume_id: string;
  target_path: string;
  volume_capability: unknown;
  readonly: boolean;
  secrets: Record<string, string>;
  volume_context: Record<string, string>;
}

export interface PublishOutcome {
  /** The provider label for metrics ("" before the SecretProviderClass is read). */
  provider: string;
  /** What happened, for logs: mounted, already-mounted, refreshed, refresh-failed. */
  result: "mounted" | "already-mounted" | "refreshed" | "refresh-failed";
}

/** Argument checks, in upstream's order; a bad request changes nothing. */
export function validatePublishRequest(req: NodePublishVolumeRequest): void {
  if (!req.volume_capability) throw invalidArgument("Volume capability missing in request");
  if (!req.volume_id) throw invalidArgument("Volume ID missing in request");
  if (!req.target_path) throw invalidArgument("Target path missing in request");
  if (!req.target_path.startsWith("/")) throw invalidArgument(`Target path ${req.target_path} is not absolute`);
  if (!req.volume_context || Object.keys(req.volume_context).length === 0) throw invalidArgument("Volume attributes missing in request");
  if (!req.readonly) throw invalidArgument("Readonly is not true in request: set readOnly: true on the pod's csi volume");
}

function podFromContext(ctx: Record<string, string>): PodRef {
  const pod = { name: ctx[POD_NAME_KEY] ?? "", namespace: ctx[POD_NAMESPACE_KEY] ?? "", uid: ctx[POD_UID_KEY] ?? "" };
  const missing = Object.entries({ [POD_NAME_KEY]: pod.name, [POD_NAMESPACE_KEY]: pod.namespace, [POD_UID_KEY]: pod.uid })
    .filter(([, v]) => !v)
    .map(([k]) => k);
  if (missing.length > 0) {
    throw invalidArgument(`${missing.join(", ")} missing from the volume context: the CSIDriver object must set podInfoOnMount: true`);
  }
  return pod;
}

export async function nodePublishVolume(ctx: DriverContext, req: NodePublishVolumeRequest, deadline: Date): Promise<PublishOutcome> {
  validatePublishRequest(req);
  const volumeContext = req.volume_context;
  const secrets = req.secrets ?? {};
  const target = req.target_path;
  let provider = volumeContext[PROVIDER_NAME_KEY] ?? "";

  let state: MountState;
  try {
    state = await ctx.mounter.state(target);
  } catch (err) {
    throw new DriverError(
      status.INTERNAL,
      ErrorType.FailedToEnsureMountPoint,
      `failed to check if target path ${target} is mount point, err: ${(err as Error).message}`,
    );
  }

  if (state === "mounted") {
    // A republish (requiresRepublish) or a retry after success: the driver's
    // record of the volume takes the fresh tokens and secrets; the provider is
    // called only when a refresh is due. Never a final error here, because
    // kubelet removes a mount whose republish failed (kubernetes#121271).
    let known = ctx.volumes.get(target);
    if (!known && (ctx.options.enableSecretRotation || ctx.syncSecrets)) {
      known = recordFromRepublish(ctx, req);
    }
    if (known) {
      known.volumeContext = volumeContext;
      known.secrets = secrets;
      known.contextUpdatedAt = Date.now();
      known.recovered = false;
      provider = known.provider || provider;
      if (ctx.options.enableSecretRotation && ctx.refreshNow && Date.now() >= nextRefreshAt(known, ctx.options.rotationPollIntervalMs)) {
        const ok = await ctx.refreshNow(known, deadline);
        return { provider: known.provider || provider, result: ok ? "refreshed" : "refresh-failed" };
      }
    }
    return { provider, result: "already-mounted" };
  }
  if (state === "broken") {
    ctx.logger.warn({ target }, "target path is an unreadable mount point; unmounting it before mounting again");
    await ctx.mounter.unmount(target);
  }

  const spcName = volumeContext[SPC_NAME_KEY];
  if (!spcName) throw invalidArgument("secretProviderClass is not set");
  const pod = podFromContext(volumeContext);
  const kube = requireKube(ctx);
  const spc = await kube.getSecretProviderClass(pod.namespace, spcName);
  provider = providerOf(spc);
  try {
    return await firstMount(ctx, req, { target, state, pod, spcName, spc, provider, deadline });
  } catch (err) {
    // Metrics label errors with the provider once the class names it.
    if (err instanceof DriverError) err.provider = provider;
    throw err;
  }
}

interface FirstMount {
  target: string;
  state: "absent" | "not-mounted" | "broken";
  pod: PodRef;
  spcName: string;
  spc: SecretProviderClass;
  provider: string;
  deadline: Date;
}

async function firstMount(ctx: DriverContext, req: NodePublishVolumeRequest, m: FirstMount): Promise<PublishOutcome> {
  const { target, state, pod, spcName, spc, provider, deadline } = m;
  const volumeContext = req.volume_context;
  const secrets = req.secrets ?? {};
  const kube = requireKube(ctx);
  // Find the provider before mounting anything, so a missing one leaves nothing behind.
  await ctx.providers.get(provider);

  const created = state === "absent";
  if (created) await mkdir(target, { recursive: true, mode: 0o750 });
  let mounted = false;
  try {
    try {
      await ctx.mounter.mountTmpfs(target, ctx.options.tmpfsSizeBytes);
      mounted = true;
    } catch (err) {
      throw new DriverError(status.INTERNAL, ErrorType.FailedToMount, `failed to mount tmpfs at ${target}: ${(err as Error).message}`);
    }
    const content = await fetchAndWriteContent(ctx, { targetPath: target, spc, volumeContext, secrets, currentObjectVersions: [], deadline });
    try {
      await kube.upsertPodStatus(buildPodStatus({ pod, spcName, nodeName: ctx.options.nodeId, targetPath: target, objectVersions: content.objectVersions }));
    } catch (err) {
      throw new DriverError(
        status.UNAVAILABLE,
        ErrorType.PodStatusWriteError,
        `failed to create secret provider class pod status for pod ${pod.namespace}/${pod.name}, err: ${(err as Error).message}`,
      );
    }
    const now = Date.now();
    const volume: MountedVolume = {
      targetPath: target,
      volumeId: req.volume_id,
      pod,
      spcName,
      provider,
      volumeContext,
      secrets,
      objectVersions: content.objectVersions,
      lastRefresh: now,
      lastChange: now,
      failures: 0,
      contextUpdatedAt: now,
      jitterMs: ctx.jitter?.() ?? 0,
      syncedSpcVersion: spc.metadata.resourceVersion,
    };
    ctx.volumes.set(volume);
    if (ctx.syncSecrets && spc.spec.secretObjects?.length) {
      // Synced before kubelet starts the containers, so env vars find the
      // Secret; a sync failure does not fail the mount (it is retried).
      await ctx.syncSecrets(volume, spc).catch((err: unknown) => {
        volume.syncPending = true;
        ctx.logger.warn({ target, error: (err as Error).message }, "secret sync failed; will retry");
      });
    }
    return { provider, result: "mounted" };
  } catch (err) {
    // A failed first mount leaves nothing: no tmpfs, no directory we made.
    if (mounted) {
      await ctx.mounter.unmount(target).catch((e: unknown) => ctx.logger.error({ target, error: String(e) }, "failed to unmount after a failed mount"));
    }
    await rmdir(target).catch(() => undefined);
    if (err instanceof DriverError && err.errorType !== ErrorType.FailedToMount && err.errorType !== ErrorType.PodStatusWriteError) {
      throw new DriverError(err.code, err.errorType, `failed to mount secrets store objects for pod ${pod.namespace}/${pod.name}, err: ${err.message}`);
    }
    throw err;
  }
}

/** A volume mounted before a driver restart, first seen again through a republish. */
function recordFromRepublish(ctx: DriverContext, req: NodePublishVolumeRequest): MountedVolume | undefined {
  const spcName = req.volume_context[SPC_NAME_KEY];
  let pod: PodRef;
  try {
    pod = podFromContext(req.volume_context);
  } catch {
    return undefined;
  }
  if (!spcName) return undefined;
  const now = Date.now();
  const volume: MountedVolume = {
    targetPath: req.target_path,
    volumeId: req.volume_id,
    pod,
    spcName,
    provider: "",
    volumeContext: req.volume_context,
    secrets: req.secrets ?? {},
    objectVersions: [],
    lastRefresh: now,
    lastChange: now,
    failures: 0,
    jitterMs: ctx.jitter?.() ?? 0,
    syncPending: true,
  };
  ctx.volumes.set(volume);
  return volume;
}
