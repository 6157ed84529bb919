// The Deployments, StatefulSets and DaemonSets that opted in to restart on
// rotation, watched cluster-wide and kept as little as possible: name, uid,
// what each follows (following.ts) and the rollout annotations of its pod
// template. Workloads that follow nothing are kept as a name only.
import type { Logger } from "../../shared/logger.ts";
import type { KubeRest } from "../../shared/kube/kube-rest.ts";
import { Informer } from "../kube/informer.ts";
import { FOLLOW_ANNOTATIONS, followingOf, ROLLOUT_ANNOTATION_PREFIX, type Following, type RawPodTemplate, type WorkloadKind } from "./following.ts";

export interface TrackedWorkload {
  kind: WorkloadKind;
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; annotations?: Record<string, string> };
  following?: Following;
  /** The pod template's rollout annotations (ours only). */
  templateAnnotations: Record<string, string>;
}

interface RawWorkload {
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; annotations?: Record<string, string> };
  spec?: { template?: RawPodTemplate };
}

const RESOURCES: Array<[WorkloadKind, string]> = [
  ["Deployment", "deployments"],
  ["StatefulSet", "statefulsets"],
  ["DaemonSet", "daemonsets"],
];

function track(kind: WorkloadKind, raw: RawWorkload): TrackedWorkload {
  const { name, namespace, uid, resourceVersion } = raw.metadata;
  const own: Record<string, string> = {};
  for (const key of FOLLOW_ANNOTATIONS) {
    const v = raw.metadata.annotations?.[key];
    if (v !== undefined) own[key] = v.slice(0, 4096);
  }
  const template: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw.spec?.template?.metadata?.annotations ?? {})) if (k.startsWith(ROLLOUT_ANNOTATION_PREFIX)) template[k] = v;
  const following = followingOf(own, raw.spec?.template);
  return { kind, metadata: { name, namespace, uid, resourceVersion, annotations: own }, ...(following ? { following } : {}), templateAnnotations: template };
}

export class WorkloadIndex {
  private readonly informers: Array<Informer<TrackedWorkload>>;
  /** Annotations set by this controller that the watch may not show yet, per uid. */
  private readonly rolled = new Map<string, Record<string, string>>();
  private readonly onForget: (uid: string) => void;

  constructor(rest: KubeRest, logger: Logger, options: { onForget?: (uid: string) => void } = {}) {
    this.onForget = options.onForget ?? (() => undefined);
    this.informers = RESOURCES.map(
      ([kind, plural]) =>
        new Informer<TrackedWorkload>(rest, logger, {
          path: `/apis/apps/v1/${plural}`,
          resource: plural,
          transform: (obj) => track(kind, obj as unknown as RawWorkload),
          handlers: {
            onUpdate: (_old, w) => {
              if (w.metadata.uid) this.rolled.delete(w.metadata.uid);
            },
            onDelete: (w) => {
              if (!w.metadata.uid) return;
              this.rolled.delete(w.metadata.uid);
              this.onForget(w.metadata.uid);
            },
          },
        }),
    );
  }

  get hasSynced(): boolean {
    return this.informers.every((i) => i.hasSynced);
  }

  get size(): number {
    return this.informers.reduce((n, i) => n + i.size, 0);
  }

  run(signal: AbortSignal): void {
    for (const i of this.informers) void i.run(signal);
  }

  async waitForSync(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.waitForSync()));
  }

  followingClass(namespace: string, className: string): TrackedWorkload[] {
    return this.select(namespace, (f) => f.classes.includes(className));
  }

  followingSecret(namespace: string, secret: string): TrackedWorkload[] {
    return this.select(namespace, (f) => f.secrets.includes(secret));
  }

  /** The hash a workload's template carries (or is being given) for a rollout annotation. */
  recorded(w: TrackedWorkload, annotation: string): string | undefined {
    return (w.metadata.uid ? this.rolled.get(w.metadata.uid)?.[annotation] : undefined) ?? w.templateAnnotations[annotation];
  }

  rememberRolled(w: TrackedWorkload, annotations: Record<string, string>): void {
    if (!w.metadata.uid) return;
    this.rolled.set(w.metadata.uid, { ...this.rolled.get(w.metadata.uid), ...annotations });
  }

  private select(namespace: string, test: (f: Following) => boolean): TrackedWorkload[] {
    const out: TrackedWorkload[] = [];
    for (const informer of this.informers) {
      for (const w of informer.values()) if (w.metadata.namespace === namespace && w.following && test(w.following)) out.push(w);
    }
    return out;
  }
}
