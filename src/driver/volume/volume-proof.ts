// What the driver can prove about a tmpfs at a target it has no record of:
// after a restart, or a volume upstream's driver mounted before an upgrade.
// Its own memory is gone, so it believes only what nobody but kubelet and the
// pod's owner could have made:
//
//   the path    <kubelet-dir>/pods/<uid>/volumes/kubernetes.io~csi/<name>/mount,
//               where kubelet mounts the CSI volume <name> of the pod <uid>;
//   the pod     <uid> exists, runs on this node, and has a CSI volume <name>
//               of this driver naming the SecretProviderClass in question;
//   the mount   a tmpfs with the driver's source name, or upstream's ("tmpfs")
//               no newer than the status object that names it.
//
// A SecretProviderClassPodStatus alone proves nothing: anyone who may write
// one in any namespace can name any path in it, such as another pod's Secret
// volume or service-account token (kubelet mounts those as tmpfs too).
import type { V1Pod } from "@kubernetes/client-node";
import type { DriverContext } from "../context.ts";
import { describeApiError, type PodRef } from "../kube/kube-client.ts";
import type { MountEntry } from "./mounter.ts";
import type { ResolvedTarget } from "./target-state.ts";

/** The source name upstream's driver gives its tmpfs. */
export const UPSTREAM_TMPFS_SOURCE = "tmpfs";

/** The pod and SecretProviderClass a tmpfs is said to belong to: by a status object, or by kubelet's publish request. */
export interface VolumeClaim {
  pod: PodRef;
  spcName: string;
}

export interface CsiVolumePath {
  podUid: string;
  volumeName: string;
}

const CSI_PLUGIN_DIR = "kubernetes.io~csi";

/** The pod uid and volume name of a target of kubelet's CSI volume layout, or undefined for any other path. */
export function csiVolumeOf(target: ResolvedTarget): CsiVolumePath | undefined {
  const [podUid, volumes, plugin, volumeName, mount, ...rest] = target.relative;
  if (rest.length > 0 || volumes !== "volumes" || plugin !== CSI_PLUGIN_DIR || mount !== "mount" || !podUid || !volumeName) return undefined;
  return { podUid, volumeName };
}

const LAYOUT = `<kubelet-dir>/pods/<pod uid>/volumes/${CSI_PLUGIN_DIR}/<volume>/mount`;

/** Why the target path cannot be the claimed pod's CSI volume, or undefined. */
export function pathProblem(target: ResolvedTarget, pod?: PodRef): string | undefined {
  const volume = csiVolumeOf(target);
  if (!volume) return `the path is not a CSI volume's mount path (${LAYOUT})`;
  if (pod && volume.podUid !== pod.uid) return `the path belongs to pod uid ${volume.podUid}, not to pod ${pod.namespace}/${pod.name} (uid ${pod.uid})`;
  return undefined;
}

/** The outcome of a proof: the problem that refutes it, or the pod as the API server has it (none in standalone mode). */
export type PodVolumeCheck = { problem: string } | { problem?: undefined; pod?: V1Pod };

/**
 * Checks that the target is the claimed pod's volume of this driver: the path
 * (above), then the pod as the API server has it. In standalone mode there is
 * no API server (and no tenant): the path is all the driver can check.
 */
export async function checkPodVolume(ctx: DriverContext, target: ResolvedTarget, claim: VolumeClaim): Promise<PodVolumeCheck> {
  const problem = pathProblem(target, claim.pod);
  if (problem) return { problem };
  if (ctx.options.secretProviderClassDir !== undefined) return {};
  if (ctx.kube instanceof Error) return { problem: "the Kubernetes API is not configured, so the pod cannot be checked" };
  const { pod, spcName } = claim;
  const ref = `pod ${pod.namespace}/${pod.name}`;
  let live: V1Pod | undefined;
  try {
    live = await ctx.kube.getPod(pod.namespace, pod.name);
  } catch (err) {
    return { problem: `${ref} could not be read (${describeApiError(err)})` };
  }
  if (!live) return { problem: `${ref} does not exist` };
  if (live.metadata?.uid !== pod.uid) return { problem: `${ref} has uid ${live.metadata?.uid ?? "(none)"}, not ${pod.uid}` };
  if (live.spec?.nodeName !== ctx.options.nodeId) return { problem: `${ref} is not on this node (spec.nodeName ${JSON.stringify(live.spec?.nodeName ?? "")})` };
  const name = csiVolumeOf(target)!.volumeName;
  const volume = live.spec?.volumes?.find((v) => v.name === name);
  if (!volume?.csi) return { problem: `${ref} has no CSI volume ${JSON.stringify(name)}` };
  if (volume.csi.driver !== ctx.options.drivername) return { problem: `volume ${JSON.stringify(name)} of ${ref} is of driver ${JSON.stringify(volume.csi.driver)}` };
  const named = volume.csi.volumeAttributes?.secretProviderClass;
  if (named !== spcName) return { problem: `volume ${JSON.stringify(name)} of ${ref} names SecretProviderClass ${JSON.stringify(named ?? "")}, not ${JSON.stringify(spcName)}` };
  return { pod: live };
}

/**
 * Why a tmpfs the driver has no record of cannot be a volume of this driver
 * or of upstream's, or undefined. `recordedAt` is the creation time of the
 * status object that names it (ms): upstream's driver mounts first and then
 * records, so its tmpfs is no newer (the object has whole seconds).
 */
export function mountProblem(ctx: DriverContext, mount: MountEntry, birthtimeNs: bigint, recordedAt?: number): string | undefined {
  if (mount.fsType !== "tmpfs") return `it is a ${mount.fsType} mount, not a tmpfs`;
  if (mount.source === ctx.options.drivername) return undefined;
  if (mount.source !== UPSTREAM_TMPFS_SOURCE) return `its source ${JSON.stringify(mount.source)} is neither the driver's nor upstream's`;
  if (recordedAt === undefined || !Number.isFinite(recordedAt)) return "a tmpfs with upstream's source name is taken only through a status object that names it";
  if (birthtimeNs > BigInt(recordedAt + 1000) * 1_000_000n) return "it was mounted after the status object that names it was written";
  return undefined;
}
