// Owner references of synced Secrets (reference driver-spec §6.3): the pod's
// own owners (e.g. its ReplicaSet), or for a bare pod its
// SecretProviderClassPodStatus. Kubernetes garbage collection then deletes the
// Secret when the last owner is gone, never earlier: a Deployment scaled to
// zero keeps its Secret because its ReplicaSet still exists. The driver never
// marks itself controller and never blocks owner deletion, and owners are only
// ever added to a Secret, never removed.
import type { KubeClient } from "../kube/kube-client.ts";
import { SPC_GROUP, SPC_VERSION, SPCPS_KIND, type OwnerReference } from "../../shared/kube/kube-types.ts";
import type { MountedVolume } from "../volume/mounted-volumes.ts";
import { podStatusName } from "../kube/pod-status.ts";
import type { SecretsApi } from "./secret-api.ts";

export const SPCPS_API_VERSION = `${SPC_GROUP}/${SPC_VERSION}`;

export type OwnerResolution =
  | { kind: "owners"; owners: OwnerReference[] }
  /** The volume's pod is gone or finishing: nothing to sync for it. */
  | { kind: "skip"; reason: string };

/** The failure to find a Secret's owners; the message names objects only. */
export class OwnerLookupError extends Error {
  override readonly name = "OwnerLookupError";
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

interface OwnerLike {
  apiVersion?: string;
  kind?: string;
  name?: string;
  uid?: string;
}

/** apiVersion, kind, name and uid only: no controller, no blockOwnerDeletion. */
export function plainOwner(ref: OwnerLike): OwnerReference {
  return { apiVersion: ref.apiVersion ?? "", kind: ref.kind ?? "", name: ref.name ?? "", uid: ref.uid ?? "" };
}

/**
 * Adds the wanted owners missing (by uid) from the existing ones. Existing
 * owners are kept as they are, in order. `changed` says whether any was added.
 */
export function mergeOwners(
  existing: readonly OwnerLike[] | undefined,
  wanted: readonly OwnerReference[],
): { owners: OwnerReference[]; changed: boolean } {
  const owners: OwnerReference[] = (existing ?? []).map((o) => ({ ...o }) as OwnerReference);
  const uids = new Set(owners.map((o) => o.uid));
  let changed = false;
  for (const w of wanted) {
    if (uids.has(w.uid)) continue;
    owners.push(plainOwner(w));
    uids.add(w.uid);
    changed = true;
  }
  return { owners, changed };
}

/**
 * The owners a Secret synced for this volume must carry. Reads the pod (and,
 * for a bare pod, its SecretProviderClassPodStatus) from the API server, so
 * the uids are the live ones.
 */
export async function resolveOwners(kube: KubeClient, secrets: SecretsApi, volume: MountedVolume): Promise<OwnerResolution> {
  const { pod } = volume;
  const podRef = `${pod.namespace}/${pod.name}`;
  let live;
  try {
    live = await kube.getPod(pod.namespace, pod.name);
  } catch (err) {
    throw new OwnerLookupError(`failed to get pod ${podRef}`, err);
  }
  if (!live) return { kind: "skip", reason: `pod ${podRef} not found` };
  if (pod.uid && live.metadata?.uid && live.metadata.uid !== pod.uid) {
    return { kind: "skip", reason: `pod ${podRef} was replaced (uid ${live.metadata.uid}, volume of uid ${pod.uid})` };
  }
  if (live.metadata?.deletionTimestamp) return { kind: "skip", reason: `pod ${podRef} is being deleted` };
  const phase = live.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") return { kind: "skip", reason: `pod ${podRef} has terminated (${phase})` };

  const podOwners = (live.metadata?.ownerReferences ?? []).filter((o) => o.uid && o.name && o.kind && o.apiVersion);
  if (podOwners.length > 0) return { kind: "owners", owners: podOwners.map(plainOwner) };

  const statusName = podStatusName(pod.name, pod.namespace, volume.spcName);
  let status;
  try {
    status = await kube.getPodStatus(pod.namespace, statusName);
  } catch (err) {
    throw new OwnerLookupError(`failed to get secretproviderclasspodstatus ${pod.namespace}/${statusName}`, err);
  }
  if (!status?.metadata.uid) {
    throw new OwnerLookupError(`secretproviderclasspodstatus ${pod.namespace}/${statusName} not found; it owns the synced secrets of bare pod ${podRef}`);
  }
  return { kind: "owners", owners: [{ apiVersion: SPCPS_API_VERSION, kind: SPCPS_KIND, name: statusName, uid: status.metadata.uid }] };
}
