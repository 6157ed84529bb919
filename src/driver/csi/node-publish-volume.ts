// NodePublishVolume: make the pod's objects appear as files on a tmpfs at the
// target path (reference driver-spec §2.5), or refresh a volume that is
// already mounted (republish).
//
// What the driver does on the node goes through the VolumeTarget
// (volume/target.ts); the steps, each of which can refuse without changing
// anything:
//   1. check the request; open the target (path checked, held by this call:
//      another call on it or on the volume id is answered ABORTED);
//   2. look at what is there: the driver's live tmpfs is a republish (one it
//      has no record of only once proven the pod's volume: the target is the
//      pod's CSI volume path and the pod has that volume of this driver); a
//      foreign mount, a symlink or foreign files are refused;
//   3. read the SecretProviderClass, find the provider;
//   4. mount a tmpfs, ask the provider, write the files through the checked tmpfs;
//   5. record the volume and its status object (written after the answer
//      unless Secrets are synced), sync Secrets.
// A failure after 4 started unmounts the driver's tmpfs and removes only the
// directory it created.
import { status } from "@grpc/grpc-js";
import type { DriverContext } from "../context.ts";
import { requireKube } from "../context.ts";
import { DriverError, ErrorType, invalidArgument } from "../errors.ts";
import type { PodRef } from "../kube/kube-client.ts";
import { buildPodStatus } from "../kube/pod-status.ts";
import { nextRefreshAt } from "../rotation/volume-refresh.ts";
import { newVolumeRecord, type MountedVolume } from "../volume/mounted-volumes.ts";
import { MAX_STACKED_MOUNTS, VolumeTarget, type TargetState, type VolumeClaim, type VolumeMount } from "../volume/target.ts";
import { fetchContent, reportMissingObjects } from "../volume/volume-content.ts";
import { sameClass } from "../kube/class-reads.ts";
import type { SecretProviderClass } from "../../shared/kube/kube-types.ts";
import { providerOf } from "../../shared/provider-api/provider-client.ts";
import { POD_NAME_KEY, POD_NAMESPACE_KEY, POD_UID_KEY, PROVIDER_NAME_KEY, SPC_NAME_KEY } from "../../shared/provider-api/volume-attributes.ts";
import { oneLine } from "../../shared/provider-api/provider-errors.ts";
import { traceStep } from "../../shared/trace.ts";

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

export interface PublishDeadlines {
  /** What the provider call may use (the caller's deadline less a margin to report back). */
  provider: Date;
  /** The caller's own deadline: past it, the work stops at the next step. */
  caller: Date;
}

/** Argument checks, in upstream's order; a bad request changes nothing. */
export function validatePublishRequest(req: NodePublishVolumeRequest): void {
  if (!req.volume_capability) throw invalidArgument("Volume capability missing in request");
  if (!req.volume_id) throw invalidArgument("Volume ID missing in request");
  if (!req.target_path) throw invalidArgument("Target path missing in request");
  if (!req.volume_context || Object.keys(req.volume_context).length === 0) throw invalidArgument("Volume attributes missing in request");
  if (!req.readonly) throw invalidArgument("Readonly is not true in request: set readOnly: true on the pod's csi volume");
  mountGroupOf(req);
}

/** The largest group id: (gid_t)-1 means "no change" to chown. */
const MAX_GID = 2 ** 32 - 2;

/**
 * The pod's fsGroup, which kubelet passes as a decimal string in
 * volume_capability.mount.volume_mount_group because the driver advertises
 * VOLUME_MOUNT_GROUP (on every publish and republish); undefined when the
 * pod has none. Anything but a decimal group id is InvalidArgument.
 */
export function mountGroupOf(req: Pick<NodePublishVolumeRequest, "volume_capability">): number | undefined {
  const value = (req.volume_capability as { mount?: { volume_mount_group?: unknown } } | undefined)?.mount?.volume_mount_group;
  if (value === undefined || value === null || value === "") return undefined;
  const text = String(value);
  if (!/^(0|[1-9][0-9]{0,9})$/.test(text) || Number(text) > MAX_GID) {
    throw invalidArgument(`volume_mount_group ${JSON.stringify(oneLine(text, 32))} is not a decimal group id (kubelet sends the pod's fsGroup, 0 to ${MAX_GID})`);
  }
  return Number(text);
}

export async function nodePublishVolume(ctx: DriverContext, req: NodePublishVolumeRequest, deadlines: PublishDeadlines): Promise<PublishOutcome> {
  validatePublishRequest(req);
  const group = mountGroupOf(req);
  const target = await traceStep("open", () => VolumeTarget.open(ctx, req.target_path, req.volume_id, "NodePublishVolume"));
  try {
    // 2. What is there: a republish of the driver's volume, nothing, or something to refuse.
    const volumeContext = req.volume_context;
    const claim = claimOf(volumeContext);
    let state = await traceStep("inspect", () => target.inspect(claim));
    for (let round = 0; state.kind === "driver-tmpfs"; round++) {
      const other = target.otherTargetOf(state.mount);
      if (other) throw failedPrecondition(`target path ${target.path} shows the volume of another target (${other}); refusing to share it`);
      if (state.complete) return await republish(ctx, req, target, state, group, deadlines);
      // Mounted, but the first write never completed (the driver stopped
      // between mounting and writing): the mount is the driver's own and
      // holds nothing yet, so start again.
      if (round >= MAX_STACKED_MOUNTS) throw failedPrecondition(`target path ${target.path} is still mounted after ${round} unmounts`);
      ctx.logger.warn({ target: target.path }, "found the driver's tmpfs without content at the target; mounting it again");
      await target.unmount(state.mount);
      state = await target.inspect(claim);
    }
    target.refuseUnlessEmpty(state);

    // 3. The SecretProviderClass and its provider, before anything is mounted.
    //    A GET for the class goes out now; with a copy from an earlier GET on
    //    this node, the mount and the provider call start before its answer,
    //    which is checked against the copy before anything is written.
    const spcName = volumeContext[SPC_NAME_KEY];
    if (!spcName) throw invalidArgument("secretProviderClass is not set");
    const pod = podFromContext(volumeContext);
    const kube = requireKube(ctx);
    const classRead = kube.readSecretProviderClass(pod.namespace, spcName);
    const current = outcomeOf(classRead.current);

    // 4. Mount, fetch, write.
    const secrets = req.secrets ?? {};
    const absent = state.kind === "absent";
    let provider = classRead.early ? providerOf(classRead.early) : "";
    let mount: VolumeMount | undefined;
    try {
      const fetched = await withCurrentClass(classRead.early, current, async (spc) => {
        provider = providerOf(spc);
        await ctx.providers.get(provider);
        checkDeadline(deadlines, "mounting");
        mount ??= await traceStep("mount tmpfs", () => target.mountTmpfs(absent));
        return traceStep("provider Mount", () =>
          fetchContent(ctx, { targetPath: target.path, spc, volumeContext, secrets, currentObjectVersions: [], deadline: deadlines.provider }),
        );
      }, async () => {
        // A provider that writes the files itself has written the old
        // class's into this tmpfs: start again from a fresh one.
        await target.undoFirstMount(mount);
        mount = undefined;
      });
      const { spc, result: content } = fetched;
      provider = providerOf(spc);
      checkDeadline(deadlines, "writing the files");
      const written = mount!;
      await traceStep("write files", () => target.write(written, content.files, group));

      // 5. Record it: the status object, the driver's own record, the synced Secrets.
      //    The status object is written after the answer (kube/pod-status-writes.ts),
      //    unless Secrets are synced: a bare pod's Secrets are owned by it.
      const podStatus = buildPodStatus({ pod, spcName, nodeName: ctx.options.nodeId, targetPath: target.path, objectVersions: content.objectVersions });
      const syncing = ctx.syncSecrets !== undefined && (spc.spec.secretObjects?.length ?? 0) > 0;
      if (syncing || !ctx.podStatuses) {
        try {
          await traceStep("create SecretProviderClassPodStatus", () => kube.upsertPodStatus(podStatus));
        } catch (err) {
          throw new DriverError(
            status.UNAVAILABLE,
            ErrorType.PodStatusWriteError,
            `failed to create secret provider class pod status for pod ${pod.namespace}/${pod.name}, err: ${(err as Error).message}`,
          );
        }
      }
      const volume = newVolumeRecord({
        targetPath: target.path,
        volumeId: req.volume_id,
        mount: written,
        pod,
        spcName,
        provider,
        volumeContext,
        secrets,
        objectVersions: content.objectVersions,
        mountGroup: group,
        contextUpdatedAt: Date.now(),
        jitterMs: ctx.jitter?.() ?? 0,
        syncedSpcVersion: spc.metadata.resourceVersion,
      });
      ctx.volumes.set(volume);
      if (!syncing) ctx.podStatuses?.write(volume, podStatus);
      await reportMissingObjects(ctx, pod, `${pod.namespace}/${spcName}`, content);
      if (syncing && ctx.syncSecrets) {
        // Synced before kubelet starts the containers, so env vars find the
        // Secret; a sync failure does not fail the mount (it is retried).
        await ctx.syncSecrets(volume, spc).catch((err: unknown) => {
          volume.syncPending = true;
          ctx.logger.warn({ target: target.path, error: (err as Error).message }, "secret sync failed; will retry");
        });
      }
      return { provider, result: "mounted" };
    } catch (err) {
      // A failed first mount leaves nothing: no tmpfs, no directory the driver made.
      const mounted = mount !== undefined;
      await target.undoFirstMount(mount);
      throw labelled(mounted ? describeFailure(err, pod) : err, provider);
    }
  } finally {
    target.release();
  }
}

type Outcome<T> = { value: T } | { error: unknown };

/** A promise's outcome, awaited later (a rejection meanwhile is not unhandled). */
function outcomeOf<T>(promise: Promise<T>): Promise<Outcome<T>> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

function unwrap<T>(outcome: Outcome<T>): T {
  if ("error" in outcome) throw outcome.error;
  return outcome.value;
}

/**
 * Runs `work` with the class as the GET sent for this publish finds it
 * (`current`). With an `early` copy, `work` starts on the copy while the GET
 * is under way; once it is answered, the copy's result (or error) stands only
 * if the class is still that very version, else `discard` undoes what the
 * try on the copy left behind and `work` runs again on the class as it is
 * now. Nothing `work` does on a copy may be final: it mounts and asks the
 * provider, and the caller writes only what this returns.
 */
async function withCurrentClass<T>(
  early: SecretProviderClass | undefined,
  current: Promise<Outcome<SecretProviderClass>>,
  work: (spc: SecretProviderClass) => Promise<T>,
  discard: () => Promise<void>,
): Promise<{ spc: SecretProviderClass; result: T }> {
  const answer = () => traceStep("get SecretProviderClass", () => current).then(unwrap);
  if (!early) {
    const spc = await answer();
    return { spc, result: await work(spc) };
  }
  const tried = await outcomeOf(work(early));
  const spc = await answer();
  if (sameClass(spc, early)) return { spc, result: unwrap(tried) };
  await discard();
  return { spc, result: await work(spc) };
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
  target: VolumeTarget,
  state: Extract<TargetState, { kind: "driver-tmpfs" }>,
  group: number | undefined,
  deadlines: PublishDeadlines,
): Promise<PublishOutcome> {
  let provider = req.volume_context[PROVIDER_NAME_KEY] ?? "";
  const mount = state.mount;
  // The pod's fsGroup cannot change, but whether kubelet delegates it can
  // (a driver upgrade): the files take the group kubelet sends now.
  if (state.group !== group && (await target.regroup(mount, group))) {
    ctx.logger.info({ target: target.path, group: group ?? null }, "gave the mounted files the group kubelet sent (the pod's fsGroup)");
  }
  let known = ctx.volumes.get(target.path);
  if (!known && (ctx.options.enableSecretRotation || ctx.syncSecrets)) {
    known = recordFromRepublish(ctx, req, target, mount);
  }
  if (!known) return { provider, result: "already-mounted" };
  known.mountGroup = group;
  known.volumeContext = req.volume_context;
  known.secrets = req.secrets ?? {};
  known.contextUpdatedAt = Date.now();
  known.recovered = false;
  provider = known.provider || provider;
  if (ctx.options.enableSecretRotation && ctx.refreshNow && Date.now() >= nextRefreshAt(known, ctx.options.rotationPollIntervalMs)) {
    const ok = await ctx.refreshNow(known, deadlines.provider, target);
    return { provider: known.provider || provider, result: ok ? "refreshed" : "refresh-failed" };
  }
  return { provider, result: "already-mounted" };
}

/**
 * A volume mounted before a driver restart, first seen again through a
 * republish (inspect() proved the tmpfs the pod's): recorded only when the
 * target is the CSI volume path of the pod kubelet names.
 */
function recordFromRepublish(ctx: DriverContext, req: NodePublishVolumeRequest, target: VolumeTarget, mount: VolumeMount): MountedVolume | undefined {
  const spcName = req.volume_context[SPC_NAME_KEY];
  const pod = podRefOrUndefined(req.volume_context);
  if (!spcName || !pod || !target.isVolumeOf(pod)) return undefined;
  const volume = newVolumeRecord({
    targetPath: req.target_path,
    volumeId: req.volume_id,
    mount,
    pod,
    spcName,
    provider: "",
    volumeContext: req.volume_context,
    secrets: req.secrets ?? {},
    objectVersions: [],
    jitterMs: ctx.jitter?.() ?? 0,
    syncPending: true,
  });
  ctx.volumes.set(volume);
  return volume;
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

/** Whose volume kubelet says this is: the pod and the class of the volume context. */
function claimOf(volumeContext: Record<string, string>): VolumeClaim | undefined {
  const pod = podRefOrUndefined(volumeContext);
  const spcName = volumeContext[SPC_NAME_KEY];
  return pod && spcName ? { pod, spcName } : undefined;
}

function podRefOrUndefined(volumeContext: Record<string, string>): PodRef | undefined {
  try {
    return podFromContext(volumeContext);
  } catch {
    return undefined;
  }
}

const failedPrecondition = (message: string) => new DriverError(status.FAILED_PRECONDITION, ErrorType.FailedToEnsureMountPoint, message);

function checkDeadline(deadlines: PublishDeadlines, step: string): void {
  if (Date.now() >= deadlines.caller.getTime()) {
    throw new DriverError(status.DEADLINE_EXCEEDED, ErrorType.FailedToMount, `the caller's deadline passed before ${step}; nothing was left mounted, kubelet retries`);
  }
}

/** Errors reported as they are: the class read's (whenever it is answered) and those worded for the step already. */
const OWN_WORDING = new Set<string>([ErrorType.FailedToMount, ErrorType.PodStatusWriteError, ErrorType.SecretProviderClassNotFound, ErrorType.KubernetesUnavailable]);

/** Upstream's wording around what failed after the mount began. */
function describeFailure(err: unknown, pod: PodRef): unknown {
  if (!(err instanceof DriverError) || OWN_WORDING.has(err.errorType)) return err;
  return new DriverError(err.code, err.errorType, `failed to mount secrets store objects for pod ${pod.namespace}/${pod.name}, err: ${err.message}`);
}

/** Metrics label an error with the provider once the class names it. */
function labelled(err: unknown, provider: string): unknown {
  // "" before any class was read: the metrics take the volume context's providerName then.
  if (err instanceof DriverError && provider) err.provider = provider;
  return err;
}

