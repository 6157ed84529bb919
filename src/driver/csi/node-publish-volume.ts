// NodePublishVolume: make the pod's objects appear as files on a tmpfs at the
// target path (reference driver-spec §2.5), or refresh a volume that is
// already mounted (republish).
//
// The steps, each of which can refuse without changing anything:
//   1. check the request and the target path (clean, under <kubelet-dir>/pods);
//   2. take the target's lease (another call on it is answered ABORTED);
//   3. look at what is there: the driver's live tmpfs is a republish; a foreign
//      mount, a symlink or foreign files are refused with FailedPrecondition;
//   4. read the SecretProviderClass, find the provider;
//   5. create the target directory, mount a tmpfs on it through an open
//      descriptor, ask the provider, write through the checked tmpfs;
//   6. record the status object and the volume.
// A failure after 5 started unmounts the driver's tmpfs and removes only the
// directory it created.
import { mkdirSync, rmdirSync } from "node:fs";
import { status } from "@grpc/grpc-js";
import type { DriverContext } from "../context.ts";
import { requireKube } from "../context.ts";
import { DriverError, ErrorType, invalidArgument } from "../errors.ts";
import type { PodRef } from "../kube/kube-client.ts";
import type { SecretProviderClass } from "../../shared/kube/kube-types.ts";
import { mountById } from "../volume/mounter.ts";
import { buildPodStatus } from "../kube/pod-status.ts";
import { targetKey, volumeKey, type TargetLease } from "../volume/target-locks.ts";
import { providerOf } from "../../shared/provider-api/provider-client.ts";
import { fetchContent, writeContentGuarded } from "../volume/volume-content.ts";
import { POD_NAME_KEY, POD_NAMESPACE_KEY, POD_UID_KEY, PROVIDER_NAME_KEY, SPC_NAME_KEY } from "../../shared/provider-api/volume-attributes.ts";
import { nextRefreshAt } from "../rotation/volume-refresh.ts";
import type { MountedVolume } from "../volume/mounted-volumes.ts";
import {
  describeEntries,
  describeMount,
  identityOf,
  inspectTarget,
  openTargetDirectory,
  resolveTarget,
  sameMount,
  type ResolvedTarget,
  type TargetState,
  type VolumeMount,
} from "../volume/target-state.ts";
import { adoptFromPodStatus } from "../volume/volume-recovery.ts";

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

export interface PublishDeadlines {
  /** What the provider call may use (the caller's deadline less a margin to report back). */
  provider: Date;
  /** The caller's own deadline: past it, the work stops at the next step. */
  caller: Date;
}

export async function nodePublishVolume(ctx: DriverContext, req: NodePublishVolumeRequest, deadlines: PublishDeadlines): Promise<PublishOutcome> {
  validatePublishRequest(req);
  const target = await resolveTarget(req.target_path, ctx.options.kubeletDir);
  const lease = await ctx.locks.acquireForCall([targetKey(target.path), volumeKey(req.volume_id)], "NodePublishVolume");
  try {
    return await publishHoldingLease(ctx, req, target, deadlines, lease);
  } finally {
    lease.release();
  }
}

const failedPrecondition = (message: string) => new DriverError(status.FAILED_PRECONDITION, ErrorType.FailedToEnsureMountPoint, message);

function checkDeadline(deadlines: PublishDeadlines, step: string): void {
  if (Date.now() >= deadlines.caller.getTime()) {
    throw new DriverError(status.DEADLINE_EXCEEDED, ErrorType.FailedToMount, `the caller's deadline passed before ${step}; nothing was left mounted, kubelet retries`);
  }
}

async function publishHoldingLease(
  ctx: DriverContext,
  req: NodePublishVolumeRequest,
  target: ResolvedTarget,
  deadlines: PublishDeadlines,
  lease: TargetLease,
): Promise<PublishOutcome> {
  const volumeContext = req.volume_context;
  let provider = volumeContext[PROVIDER_NAME_KEY] ?? "";

  const inspect = async (): Promise<TargetState> => {
    try {
      return await inspectTarget(target, ctx.options.drivername, ctx.volumes.get(target.path)?.mount);
    } catch (err) {
      if (err instanceof DriverError) throw err;
      throw new DriverError(status.INTERNAL, ErrorType.FailedToEnsureMountPoint, `failed to check if target path ${target.path} is mount point, err: ${(err as Error).message}`);
    }
  };
  let state = await inspect();
  if (state.kind === "foreign-mount" && state.mount.fsType === "tmpfs" && !state.driverMountBelow) {
    // A volume mounted by upstream's driver before an upgrade: its status object proves it.
    const mount = { id: state.mount.id, dev: state.mount.dev, source: state.mount.source, birthtimeNs: state.birthtimeNs };
    if (await adoptFromPodStatus(ctx, target, mount, podRefOrUndefined(volumeContext))) state = await inspect();
  }

  switch (state.kind) {
    case "driver-tmpfs": {
      const owner = ctx.volumes.byMount(state.mount);
      if (owner && owner.targetPath !== target.path) {
        throw failedPrecondition(`target path ${target.path} shows the volume of another target (${owner.targetPath}); refusing to share it`);
      }
      if (state.complete) return republish(ctx, req, target, state.mount, deadlines, lease, provider);
      // Mounted, but the first write never completed (the driver stopped
      // between mounting and writing): the mount is the driver's own and
      // holds nothing yet, so start again.
      ctx.logger.warn({ target: target.path }, "found the driver's tmpfs without content at the target; mounting it again");
      await ctx.mounter.unmount(target.realPath);
      return publishHoldingLease(ctx, req, target, deadlines, lease);
    }
    case "foreign-mount":
      throw failedPrecondition(`target path ${target.path} holds ${describeMount(state.mount)}; refusing to mount over it`);
    case "not-a-directory":
      throw failedPrecondition(`target path ${target.path} is ${state.what}, not a directory; refusing to use it`);
    case "foreign-content":
      throw failedPrecondition(`target path ${target.path} is not empty: it holds ${describeEntries(state.entries)} the driver did not write; refusing to mount over it`);
    case "absent":
    case "empty-directory":
      break;
  }

  const spcName = volumeContext[SPC_NAME_KEY];
  if (!spcName) throw invalidArgument("secretProviderClass is not set");
  const pod = podFromContext(volumeContext);
  const kube = requireKube(ctx);
  const spc = await kube.getSecretProviderClass(pod.namespace, spcName);
  provider = providerOf(spc);
  try {
    return await firstMount(ctx, req, { target, created: state.kind === "absent", pod, spcName, spc, provider, deadlines });
  } catch (err) {
    // Metrics label errors with the provider once the class names it.
    if (err instanceof DriverError) err.provider = provider;
    throw err;
  }
}

function podRefOrUndefined(volumeContext: Record<string, string>): PodRef | undefined {
  try {
    return podFromContext(volumeContext);
  } catch {
    return undefined;
  }
}

/**
 * A republish (requiresRepublish) or a retry after success: the driver's
 * record of the volume takes the fresh tokens and secrets; the provider is
 * called only when a refresh is due. Never a final error here, because
 * kubelet removes a mount whose republish failed (kubernetes#121271).
 */
async function republish(
  ctx: DriverContext,
  req: NodePublishVolumeRequest,
  target: ResolvedTarget,
  mount: VolumeMount,
  deadlines: PublishDeadlines,
  lease: TargetLease,
  provider: string,
): Promise<PublishOutcome> {
  let known = ctx.volumes.get(target.path);
  if (!known && (ctx.options.enableSecretRotation || ctx.syncSecrets)) {
    known = recordFromRepublish(ctx, req, mount);
  }
  if (!known) return { provider, result: "already-mounted" };
  known.volumeContext = req.volume_context;
  known.secrets = req.secrets ?? {};
  known.contextUpdatedAt = Date.now();
  known.recovered = false;
  provider = known.provider || provider;
  if (ctx.options.enableSecretRotation && ctx.refreshNow && Date.now() >= nextRefreshAt(known, ctx.options.rotationPollIntervalMs)) {
    const ok = await ctx.refreshNow(known, deadlines.provider, lease);
    return { provider: known.provider || provider, result: ok ? "refreshed" : "refresh-failed" };
  }
  return { provider, result: "already-mounted" };
}

interface FirstMount {
  target: ResolvedTarget;
  /** Whether the target directory did not exist (the driver creates it, and removes it on failure). */
  created: boolean;
  pod: PodRef;
  spcName: string;
  spc: SecretProviderClass;
  provider: string;
  deadlines: PublishDeadlines;
}

async function firstMount(ctx: DriverContext, req: NodePublishVolumeRequest, m: FirstMount): Promise<PublishOutcome> {
  const { target, created, pod, spcName, spc, provider, deadlines } = m;
  const volumeContext = req.volume_context;
  const secrets = req.secrets ?? {};
  const kube = requireKube(ctx);
  // Find the provider before mounting anything, so a missing one leaves nothing behind.
  await ctx.providers.get(provider);
  checkDeadline(deadlines, "mounting");

  if (created) mkdirSync(target.path, { mode: 0o750 });
  let mount: VolumeMount | undefined;
  try {
    try {
      mount = await mountTmpfs(ctx, target);
    } catch (err) {
      throw new DriverError(status.INTERNAL, ErrorType.FailedToMount, `failed to mount tmpfs at ${target.path}: ${(err as Error).message}`);
    }
    const content = await fetchContent(ctx, { targetPath: target.path, spc, volumeContext, secrets, currentObjectVersions: [], deadline: deadlines.provider });
    checkDeadline(deadlines, "writing the files");
    await writeContentGuarded(ctx, target, mount, content);
    try {
      await kube.upsertPodStatus(buildPodStatus({ pod, spcName, nodeName: ctx.options.nodeId, targetPath: target.path, objectVersions: content.objectVersions }));
    } catch (err) {
      throw new DriverError(
        status.UNAVAILABLE,
        ErrorType.PodStatusWriteError,
        `failed to create secret provider class pod status for pod ${pod.namespace}/${pod.name}, err: ${(err as Error).message}`,
      );
    }
    const now = Date.now();
    const volume: MountedVolume = {
      targetPath: target.path,
      volumeId: req.volume_id,
      mount,
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
        ctx.logger.warn({ target: target.path, error: (err as Error).message }, "secret sync failed; will retry");
      });
    }
    return { provider, result: "mounted" };
  } catch (err) {
    // A failed first mount leaves nothing: no tmpfs, no directory we made.
    if (mount) await unmountOwn(ctx, target, mount);
    if (created) {
      try {
        rmdirSync(target.path);
      } catch {
        // not empty or already gone: never removed recursively
      }
    }
    if (err instanceof DriverError && err.errorType !== ErrorType.FailedToMount && err.errorType !== ErrorType.PodStatusWriteError) {
      throw new DriverError(err.code, err.errorType, `failed to mount secrets store objects for pod ${pod.namespace}/${pod.name}, err: ${err.message}`);
    }
    throw err;
  }
}

/** Mounts the driver's tmpfs on the checked directory and returns its identity. */
async function mountTmpfs(ctx: DriverContext, target: ResolvedTarget): Promise<VolumeMount> {
  const dir = openTargetDirectory(target);
  try {
    await ctx.mounter.mountTmpfs(dir, ctx.options.drivername, ctx.options.tmpfsSizeBytes);
  } finally {
    dir.close();
  }
  const root = openTargetDirectory(target);
  try {
    const seen = identityOf(root);
    const mount = await mountById(seen.id);
    if (mount?.fsType !== "tmpfs" || mount.source !== ctx.options.drivername || mount.mountPoint !== target.realPath) {
      throw new Error(`the new tmpfs is not the top mount at ${target.realPath}`);
    }
    return { ...seen, source: mount.source };
  } finally {
    root.close();
  }
}

/** Unmounts the driver's tmpfs after a failed first mount, only if it is still the top mount there. */
async function unmountOwn(ctx: DriverContext, target: ResolvedTarget, mount: VolumeMount): Promise<void> {
  try {
    const state = await inspectTarget(target, ctx.options.drivername, mount);
    if (state.kind === "driver-tmpfs" && sameMount(state.mount, mount)) await ctx.mounter.unmount(target.realPath);
  } catch (err) {
    ctx.logger.error({ target: target.path, error: String(err) }, "failed to unmount after a failed mount");
  }
}

/** A volume mounted before a driver restart, first seen again through a republish. */
function recordFromRepublish(ctx: DriverContext, req: NodePublishVolumeRequest, mount: VolumeMount): MountedVolume | undefined {
  const spcName = req.volume_context[SPC_NAME_KEY];
  const pod = podRefOrUndefined(req.volume_context);
  if (!spcName || !pod) return undefined;
  const now = Date.now();
  const volume: MountedVolume = {
    targetPath: req.target_path,
    volumeId: req.volume_id,
    mount,
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
