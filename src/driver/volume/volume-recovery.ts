// After a driver restart, rebuilds the record of mounted volumes from this
// node's SecretProviderClassPodStatus objects and the live tmpfs mounts, so
// rotation and sync resume for volumes mounted before the restart, and so the
// driver knows those mounts as its own. The volume context is partial (no
// tokens) until kubelet's next republish.
//
// A status object names the target a secrets-store driver mounted; a tmpfs at
// that target is adopted with its identity (volume-target.ts) when it carries
// the driver's source name, or upstream's ("tmpfs") and is no newer than the
// status object (upstream mounts first, then records): that covers volumes
// mounted by upstream's driver before an upgrade, and not a tmpfs someone
// mounted there after the volume was gone.
import type { DriverContext } from "../context.ts";
import { requireKube } from "../context.ts";
import type { PodRef } from "../kube/kube-client.ts";
import { NODE_NAME_LABEL, type SecretProviderClassPodStatus } from "../../shared/kube/kube-types.ts";
import type { MountedVolume } from "./mounted-volumes.ts";
import { POD_NAME_KEY, POD_NAMESPACE_KEY, POD_UID_KEY, SERVICE_ACCOUNT_NAME_KEY, SPC_NAME_KEY } from "../../shared/provider-api/volume-attributes.ts";
import { inspectTarget, resolveTarget, type ResolvedTarget, type VolumeMount } from "./target-state.ts";

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
    const state = await inspectTarget(target, ctx.options.drivername).catch(() => undefined);
    let mount: VolumeMount;
    if (state?.kind === "driver-tmpfs") mount = state.mount;
    else if (state?.kind === "foreign-mount") {
      mount = { id: state.mount.id, dev: state.mount.dev, source: state.mount.source, birthtimeNs: state.birthtimeNs };
      if (!isUpstreamVolume(st, mount)) continue;
    } else continue;
    const owner = st.metadata.ownerReferences?.find((o) => o.kind === "Pod");
    const namespace = st.metadata.namespace!;
    if (!owner) continue;
    let serviceAccount = "";
    try {
      const pod = await kube.getPod(namespace, owner.name);
      if (!pod || pod.metadata?.uid !== owner.uid) continue;
      serviceAccount = pod.spec?.serviceAccountName ?? "default";
    } catch {
      continue;
    }
    ctx.volumes.set(recordFromStatus(st, mount, { name: owner.name, namespace, uid: owner.uid }, serviceAccount, jitter()));
    recovered++;
  }
  if (recovered > 0) ctx.logger.info({ volumes: recovered }, "recovered mounted volumes after restart");
  return recovered;
}

function recordFromStatus(st: SecretProviderClassPodStatus, mount: VolumeMount, pod: PodRef, serviceAccount: string, jitterMs: number): MountedVolume {
  const now = Date.now();
  return {
    targetPath: st.status.targetPath,
    volumeId: "",
    mount,
    pod,
    spcName: st.status.secretProviderClassName,
    provider: "",
    volumeContext: {
      [SPC_NAME_KEY]: st.status.secretProviderClassName,
      [POD_NAME_KEY]: pod.name,
      [POD_NAMESPACE_KEY]: pod.namespace,
      [POD_UID_KEY]: pod.uid,
      [SERVICE_ACCOUNT_NAME_KEY]: serviceAccount,
      "csi.storage.k8s.io/ephemeral": "true",
    },
    secrets: {},
    objectVersions: st.status.objects ?? [],
    lastRefresh: now,
    lastChange: now,
    failures: 0,
    contextUpdatedAt: 0,
    jitterMs,
    syncPending: true,
    recovered: true,
  };
}

/**
 * A tmpfs at the target that the driver has no record of, but that this
 * node's status object for the target (and pod, when known) vouches for: the
 * mount is recorded as the driver's. False in standalone mode or without an
 * API server, or when no status object names the target.
 */
export async function adoptFromPodStatus(ctx: DriverContext, target: ResolvedTarget, mount: VolumeMount, pod?: PodRef): Promise<boolean> {
  if (ctx.kube instanceof Error || ctx.options.secretProviderClassDir !== undefined) return false;
  let statuses: SecretProviderClassPodStatus[];
  try {
    statuses = await ctx.kube.listPodStatuses(`${NODE_NAME_LABEL}=${ctx.options.nodeId}`);
  } catch (err) {
    ctx.logger.warn({ target: target.path, error: (err as Error).message }, "could not read the node's status objects to recognise a tmpfs at the target");
    return false;
  }
  const st = statuses.find((s) => s.status?.targetPath === target.path);
  const owner = st?.metadata.ownerReferences?.find((o) => o.kind === "Pod");
  if (!st || !owner || (pod && owner.uid !== pod.uid) || !isUpstreamVolume(st, mount)) return false;
  const record = recordFromStatus(st, mount, { name: owner.name, namespace: st.metadata.namespace!, uid: owner.uid }, "", 0);
  ctx.volumes.set(record);
  ctx.logger.info({ target: target.path, pod: `${record.pod.namespace}/${record.pod.name}` }, "adopted a tmpfs that the node's status object names");
  return true;
}

/** Upstream's driver mounts with source "tmpfs", then creates the status object (timestamps in whole seconds). */
function isUpstreamVolume(st: SecretProviderClassPodStatus, mount: VolumeMount): boolean {
  const created = Date.parse(st.metadata.creationTimestamp ?? "");
  if (mount.source !== UPSTREAM_TMPFS_SOURCE || !Number.isFinite(created)) return false;
  return mount.birthtimeNs <= BigInt(created + 1000) * 1_000_000n;
}

const UPSTREAM_TMPFS_SOURCE = "tmpfs";
