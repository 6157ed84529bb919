// After a driver restart, rebuilds the record of mounted volumes from this
// node's SecretProviderClassPodStatus objects and the live tmpfs mounts, so
// rotation and sync resume for volumes mounted before the restart, and so the
// driver knows those mounts as its own. The volume context is partial (no
// tokens) until kubelet's next republish.
//
// A status object only says where to look. The tmpfs it names is adopted
// only when the driver can prove it a volume of this driver's (or of
// upstream's driver before an upgrade) for the object's own pod and class
// (volume-proof.ts): the target is that pod's CSI volume path, the pod is on
// this node with that CSI volume naming that class, and the mount is such a
// tmpfs. Anything else is left alone, with one log line, and never written,
// synced or recorded in a status object of the driver's.
import type { DriverContext } from "../context.ts";
import { requireKube } from "../context.ts";
import type { PodRef } from "../kube/kube-client.ts";
import { NODE_NAME_LABEL, type SecretProviderClassPodStatus } from "../../shared/kube/kube-types.ts";
import { oneLine } from "../../shared/provider-api/provider-errors.ts";
import { newVolumeRecord, type MountedVolume } from "./mounted-volumes.ts";
import { POD_NAME_KEY, POD_NAMESPACE_KEY, POD_UID_KEY, SERVICE_ACCOUNT_NAME_KEY, SPC_NAME_KEY } from "../../shared/provider-api/volume-attributes.ts";
import { inspectTarget, openVolumeRoot, resolveTarget, type ResolvedTarget, type VolumeMount } from "./target-state.ts";
import { volumeGroup } from "./atomic-writer.ts";
import type { MountEntry } from "./mounter.ts";
import { checkPodVolume, mountProblem } from "./volume-proof.ts";

/** A tmpfs found at a target: the top mount and its identity. */
export interface FoundTmpfs {
  entry: MountEntry;
  mount: VolumeMount;
}

export async function recoverMountedVolumes(ctx: DriverContext, jitter: () => number): Promise<number> {
  const kube = requireKube(ctx);
  const statuses = await kube.listPodStatuses(`${NODE_NAME_LABEL}=${ctx.options.nodeId}`);
  let recovered = 0;
  for (const st of statuses) {
    const path = st.status?.targetPath;
    if (!path || ctx.volumes.get(path)) continue;
    let target: ResolvedTarget;
    try {
      target = await resolveTarget(path, ctx.options.kubeletDir);
    } catch {
      continue;
    }
    const state = await inspectTarget(target, ctx.options.drivername).catch((err: unknown) => {
      logLeftAlone(ctx, target, st, `the target could not be inspected (${(err as Error).message})`);
      return undefined;
    });
    // Nothing mounted there (the pod is gone, or never mounted): nothing to adopt.
    if (state?.kind !== "foreign-mount") continue;
    if (!state.onTarget || state.driverMountBelow) {
      logLeftAlone(ctx, target, st, "the target shows a mount made over another one");
      continue;
    }
    const found = { entry: state.mount, mount: identityOf(state.mount, state.birthtimeNs) };
    const volume = await adoptByStatus(ctx, target, st, found, undefined, jitter());
    if (volume) recovered++;
  }
  if (recovered > 0) ctx.logger.info({ volumes: recovered }, "recovered mounted volumes after restart");
  return recovered;
}

/**
 * A tmpfs at the target that the driver has no record of, named by this
 * node's status object for the target: recorded as the driver's when the
 * proof holds (for `pod` too, when the caller knows the pod). False in
 * standalone mode or without an API server, when no status object names the
 * target, or when the proof fails (logged).
 */
export async function adoptFromPodStatus(ctx: DriverContext, target: ResolvedTarget, found: FoundTmpfs, pod?: PodRef): Promise<boolean> {
  if (ctx.kube instanceof Error || ctx.options.secretProviderClassDir !== undefined) return false;
  let statuses: SecretProviderClassPodStatus[];
  try {
    statuses = await ctx.kube.listPodStatuses(`${NODE_NAME_LABEL}=${ctx.options.nodeId}`);
  } catch (err) {
    ctx.logger.warn({ target: target.path, error: (err as Error).message }, "could not read the node's status objects to recognise a tmpfs at the target");
    return false;
  }
  const st = statuses.find((s) => s.status?.targetPath === target.path);
  if (!st) return false;
  return (await adoptByStatus(ctx, target, st, found, pod, 0)) !== undefined;
}

async function adoptByStatus(
  ctx: DriverContext,
  target: ResolvedTarget,
  st: SecretProviderClassPodStatus,
  found: FoundTmpfs,
  pod: PodRef | undefined,
  jitterMs: number,
): Promise<MountedVolume | undefined> {
  const owner = st.metadata.ownerReferences?.find((o) => o.kind === "Pod");
  if (!owner?.uid || !owner.name) {
    logLeftAlone(ctx, target, st, "the status object names no owner pod");
    return undefined;
  }
  const claimed: PodRef = { name: owner.name, namespace: st.metadata.namespace ?? "", uid: owner.uid };
  if (pod && pod.uid !== claimed.uid) {
    logLeftAlone(ctx, target, st, `the status object's pod ${claimed.namespace}/${claimed.name} is not the publishing pod ${pod.namespace}/${pod.name}`);
    return undefined;
  }
  const spcName = st.status?.secretProviderClassName ?? "";
  const mountRefuted = mountProblem(ctx, found.entry, found.mount.birthtimeNs, Date.parse(st.metadata.creationTimestamp ?? ""));
  const check = mountRefuted ? { problem: mountRefuted } : await checkPodVolume(ctx, target, { pod: claimed, spcName });
  if (check.problem !== undefined) {
    logLeftAlone(ctx, target, st, check.problem);
    return undefined;
  }
  // The record made now checks the mount's identity before every later write and read.
  const serviceAccount = check.pod?.spec?.serviceAccountName ?? "default";
  const volume = recordFromStatus(st, found.mount, claimed, serviceAccount, jitterMs, await groupOfVolume(target, found.mount));
  ctx.volumes.set(volume);
  ctx.logger.info({ target: target.path, pod: `${claimed.namespace}/${claimed.name}`, source: found.entry.source }, "adopted the volume at the target, proven by its pod and status object");
  return volume;
}

/**
 * The group the volume's files were written with (the pod's fsGroup), read
 * from its root, so that refreshes before kubelet's next republish keep it.
 */
async function groupOfVolume(target: ResolvedTarget, mount: VolumeMount): Promise<number | undefined> {
  const root = await openVolumeRoot(target, mount);
  if ("problem" in root) return undefined;
  try {
    return volumeGroup(root.path);
  } finally {
    root.close();
  }
}

function identityOf(entry: MountEntry, birthtimeNs: bigint): VolumeMount {
  return { id: entry.id, dev: entry.dev, source: entry.source, birthtimeNs };
}

/** One line, no secrets: what was left alone and why (the status object is a tenant's, so its strings are bounded). */
function logLeftAlone(ctx: DriverContext, target: ResolvedTarget, st: SecretProviderClassPodStatus, reason: string): void {
  ctx.logger.warn(
    { target: target.path, statusObject: oneLine(`${st.metadata.namespace}/${st.metadata.name}`, 300), reason: oneLine(reason, 500) },
    "left alone a mount that a status object names but the driver cannot prove its own volume",
  );
}

function recordFromStatus(st: SecretProviderClassPodStatus, mount: VolumeMount, pod: PodRef, serviceAccount: string, jitterMs: number, mountGroup: number | undefined): MountedVolume {
  const spcName = st.status.secretProviderClassName;
  return newVolumeRecord({
    targetPath: st.status.targetPath,
    volumeId: "",
    mount,
    pod,
    spcName,
    provider: "",
    volumeContext: {
      [SPC_NAME_KEY]: spcName,
      [POD_NAME_KEY]: pod.name,
      [POD_NAMESPACE_KEY]: pod.namespace,
      [POD_UID_KEY]: pod.uid,
      [SERVICE_ACCOUNT_NAME_KEY]: serviceAccount,
      "csi.storage.k8s.io/ephemeral": "true",
    },
    secrets: {},
    objectVersions: st.status.objects ?? [],
    mountGroup,
    contextUpdatedAt: 0,
    jitterMs,
    syncPending: true,
    recovered: true,
  });
}
