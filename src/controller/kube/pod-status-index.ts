// The SecretProviderClassPodStatus objects the drivers write (one per mounted
// volume: which pod mounts which class on which node, at which object
// versions), watched cluster-wide and indexed by (namespace, class). Kept
// trimmed to what the controller reads. The index answers which nodes mount
// a class and whether they already hold an object version; updates that move
// a volume to new versions are reported (restart on rotation follows them).
import { NODE_NAME_LABEL, REFRESH_REQUESTED_AT_ANNOTATION, REFRESH_VERSION_ANNOTATION, type ObjectVersion, type SecretProviderClassPodStatus } from "../../shared/kube/kube-types.ts";
import { objectKey } from "./informer.ts";

export type PodStatus = SecretProviderClassPodStatus;

/** What the controller keeps of a status object. */
export function trimPodStatus(ps: PodStatus): PodStatus {
  const annotations: Record<string, string> = {};
  for (const key of [REFRESH_REQUESTED_AT_ANNOTATION, REFRESH_VERSION_ANNOTATION]) {
    const value = ps.metadata.annotations?.[key];
    if (value !== undefined) annotations[key] = value;
  }
  const node = ps.metadata.labels?.[NODE_NAME_LABEL];
  return {
    apiVersion: ps.apiVersion,
    kind: ps.kind,
    metadata: {
      name: ps.metadata.name,
      namespace: ps.metadata.namespace,
      uid: ps.metadata.uid,
      resourceVersion: ps.metadata.resourceVersion,
      ...(node !== undefined ? { labels: { [NODE_NAME_LABEL]: node } } : {}),
      annotations,
      ownerReferences: ps.metadata.ownerReferences?.slice(0, 1),
    },
    status: {
      podName: ps.status?.podName ?? "",
      secretProviderClassName: ps.status?.secretProviderClassName ?? "",
      mounted: ps.status?.mounted ?? false,
      targetPath: "",
      objects: ps.status?.objects ?? [],
    },
  };
}

export const nodeOf = (ps: PodStatus) => ps.metadata.labels?.[NODE_NAME_LABEL] ?? "";

/** True when the volume holds this object version (any object of it). */
export function holdsVersion(ps: PodStatus, version: string): boolean {
  return (ps.status.objects ?? []).some((o) => o.version === version);
}

/** Two version lists say the same (order does not matter). */
export function sameObjects(a: readonly ObjectVersion[] = [], b: readonly ObjectVersion[] = []): boolean {
  if (a.length !== b.length) return false;
  const byId = new Map(a.map((o) => [o.id, o.version]));
  return b.every((o) => byId.get(o.id) === o.version);
}

export interface PodStatusTransition {
  namespace: string;
  className: string;
  before: readonly ObjectVersion[];
  after: readonly ObjectVersion[];
}

const classKey = (namespace: string, className: string) => `${namespace}/${className}`;

export class PodStatusIndex {
  private readonly byClass = new Map<string, Map<string, PodStatus>>();
  private readonly onTransition?: (t: PodStatusTransition) => void;

  constructor(options: { onTransition?: (t: PodStatusTransition) => void } = {}) {
    this.onTransition = options.onTransition;
  }

  add(ps: PodStatus): void {
    const key = classKey(ps.metadata.namespace ?? "", ps.status.secretProviderClassName);
    let map = this.byClass.get(key);
    if (!map) this.byClass.set(key, (map = new Map()));
    map.set(objectKey(ps), ps);
  }

  update(old: PodStatus, ps: PodStatus): void {
    this.remove(old);
    this.add(ps);
    // A volume that moved from versions to other versions: its content changed.
    const before = old.status.objects ?? [];
    const after = ps.status.objects ?? [];
    if (old.metadata.uid === ps.metadata.uid && before.length > 0 && after.length > 0 && !sameObjects(before, after)) {
      this.onTransition?.({ namespace: ps.metadata.namespace ?? "", className: ps.status.secretProviderClassName, before, after });
    }
  }

  remove(ps: PodStatus): void {
    const key = classKey(ps.metadata.namespace ?? "", ps.status.secretProviderClassName);
    const map = this.byClass.get(key);
    map?.delete(objectKey(ps));
    if (map?.size === 0) this.byClass.delete(key);
  }

  /**
   * The classes whose volumes all show the same object versions now (each
   * with them), skipping volumes with none yet; a class mid-rotation (its
   * volumes at different versions) is left out.
   */
  *agreedVersions(): Iterable<{ namespace: string; className: string; objects: readonly ObjectVersion[] }> {
    for (const statuses of this.byClass.values()) {
      let agreed: PodStatus | undefined;
      let split = false;
      for (const ps of statuses.values()) {
        if ((ps.status.objects ?? []).length === 0) continue;
        if (!agreed) agreed = ps;
        else if (!sameObjects(agreed.status.objects, ps.status.objects)) {
          split = true;
          break;
        }
      }
      if (agreed && !split) yield { namespace: agreed.metadata.namespace ?? "", className: agreed.status.secretProviderClassName, objects: agreed.status.objects ?? [] };
    }
  }

  /** The status objects of every volume of this class, on every node. */
  ofClass(namespace: string, className: string): PodStatus[] {
    return [...(this.byClass.get(classKey(namespace, className))?.values() ?? [])];
  }
}
