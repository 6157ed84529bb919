// The SecretProviderClassPodStatus the driver records for each mounted volume
// (reference driver-spec §4.3): what is mounted where, at which versions.
import { createHash } from "node:crypto";
import { NODE_NAME_LABEL, SPC_GROUP, SPC_VERSION, SPCPS_KIND, type ObjectVersion, type SecretProviderClassPodStatus } from "../../shared/kube/kube-types.ts";
import type { PodRef } from "./kube-client.ts";

const MAX_NAME = 253;

/**
 * <pod>-<namespace>-<spc>, as upstream names it. Names longer than Kubernetes
 * allows are shortened with a hash suffix instead of failing the mount.
 */
export function podStatusName(podName: string, namespace: string, spcName: string): string {
  const name = `${podName}-${namespace}-${spcName}`;
  if (name.length <= MAX_NAME) return name;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 10);
  return `${name.slice(0, MAX_NAME - 11).replace(/[-.]+$/, "")}-${hash}`;
}

export function buildPodStatus(options: {
  pod: PodRef;
  spcName: string;
  nodeName: string;
  targetPath: string;
  objectVersions: readonly ObjectVersion[];
}): SecretProviderClassPodStatus {
  const { pod, spcName } = options;
  return {
    apiVersion: `${SPC_GROUP}/${SPC_VERSION}`,
    kind: SPCPS_KIND,
    metadata: {
      name: podStatusName(pod.name, pod.namespace, spcName),
      namespace: pod.namespace,
      labels: { [NODE_NAME_LABEL]: options.nodeName },
      ownerReferences: [{ apiVersion: "v1", kind: "Pod", name: pod.name, uid: pod.uid }],
    },
    status: {
      podName: pod.name,
      secretProviderClassName: spcName,
      mounted: true,
      targetPath: options.targetPath,
      objects: [...options.objectVersions].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    },
  };
}
