// Which mounted volumes may share one provider answer. Two volumes share only
// when the provider would see the same identity and the same request: same
// namespace, same SecretProviderClass, same service account (the workload
// identity behind the tokens) and the same nodePublishSecretRef data. Volumes
// of different identities are never merged.
import { createHash } from "node:crypto";
import type { MountedVolume } from "../volume/mounted-volumes.ts";
import { SERVICE_ACCOUNT_NAME_KEY } from "../../shared/provider-api/volume-attributes.ts";
import { SERVICE_ACCOUNT_TOKENS_KEY } from "../../shared/logger.ts";

/** Volume-context keys that differ per pod but do not change what is fetched. */
const PER_POD_KEYS = new Set([
  "csi.storage.k8s.io/pod.name",
  "csi.storage.k8s.io/pod.uid",
  "csi.storage.k8s.io/ephemeral",
  SERVICE_ACCOUNT_TOKENS_KEY,
]);

export function refreshGroupKey(volume: MountedVolume): string {
  const hash = createHash("sha256");
  hash.update(volume.pod.namespace).update("\0").update(volume.spcName).update("\0");
  hash.update(volume.volumeContext[SERVICE_ACCOUNT_NAME_KEY] ?? "").update("\0");
  // Pod-specific volume attributes a user set (rare) keep volumes apart.
  for (const key of Object.keys(volume.volumeContext).sort()) {
    if (!PER_POD_KEYS.has(key)) hash.update(key).update("=").update(volume.volumeContext[key]!).update("\0");
  }
  // The publish secrets are the identity for service principals; tokens in
  // secrets mode are per pod and excluded like their volume-context twin.
  for (const key of Object.keys(volume.secrets).sort()) {
    if (key !== SERVICE_ACCOUNT_TOKENS_KEY) hash.update(key).update("=").update(volume.secrets[key]!).update("\0");
  }
  return hash.digest("hex");
}

export function groupVolumes(volumes: readonly MountedVolume[]): Map<string, MountedVolume[]> {
  const groups = new Map<string, MountedVolume[]>();
  for (const v of volumes) {
    const key = refreshGroupKey(v);
    const list = groups.get(key);
    if (list) list.push(v);
    else groups.set(key, [v]);
  }
  return groups;
}
