// Asks the drivers to refresh the volumes of a class now. The controller
// never touches a node and never patches a pod: it annotates one
// SecretProviderClassPodStatus of the class per node (the driver of that
// node watches the status objects labelled with its node), with the time of
// the request and the object version that prompted it. The driver refreshes
// every volume of that namespace and class on its node that does not hold
// the version yet, once per refresh group (identity), so Key Vault is read
// once per (identity, object) per node whatever the number of pods. Nodes
// whose volumes all hold the version already are left alone.
import { describeApiError, httpStatusOf } from "../../shared/kube/api-errors.ts";
import type { KubeRest } from "../../shared/kube/kube-rest.ts";
import { REFRESH_REQUESTED_AT_ANNOTATION, REFRESH_VERSION_ANNOTATION, SPC_GROUP, SPC_VERSION, SPCPS_PLURAL } from "../../shared/kube/kube-types.ts";
import { holdsVersion, nodeOf, type PodStatus, type PodStatusIndex } from "../kube/pod-status-index.ts";

/** Patches sent at the same time. */
const CONCURRENCY = 16;

export interface SignalOutcome {
  /** Nodes asked to refresh. */
  signalled: number;
  /** Nodes whose volumes hold the version already. */
  current: number;
}

const statusPath = (namespace: string, name: string) =>
  `/apis/${SPC_GROUP}/${SPC_VERSION}/namespaces/${encodeURIComponent(namespace)}/${SPCPS_PLURAL}/${encodeURIComponent(name)}`;

/** Kubernetes MicroTime-like text: unique enough per request, readable in kubectl. */
const requestedAt = () => new Date().toISOString().replace(/Z$/, "000Z");

export class VolumeSignals {
  private readonly rest: KubeRest;
  private readonly index: PodStatusIndex;

  constructor(rest: KubeRest, index: PodStatusIndex) {
    this.rest = rest;
    this.index = index;
  }

  /** The volumes of this class that do not hold `version` (all of them without a version). */
  pending(namespace: string, className: string, version: string | undefined): PodStatus[] {
    return this.index.ofClass(namespace, className).filter((ps) => version === undefined || !holdsVersion(ps, version));
  }

  /**
   * Signals each node with a volume of the class lacking `version` (every
   * node when no version is given: a re-check of access). Throws when a
   * patch fails for another reason than the object being gone.
   */
  async signal(namespace: string, className: string, version: string | undefined): Promise<SignalOutcome> {
    const all = this.index.ofClass(namespace, className);
    const nodes = new Map<string, PodStatus>();
    for (const ps of all) {
      if (version !== undefined && holdsVersion(ps, version)) continue;
      const node = nodeOf(ps);
      if (!nodes.has(node)) nodes.set(node, ps);
    }
    const current = new Set(all.map(nodeOf)).size - nodes.size;
    const targets = [...nodes.values()];
    const value = requestedAt();
    for (let i = 0; i < targets.length; i += CONCURRENCY) {
      await Promise.all(targets.slice(i, i + CONCURRENCY).map((ps) => this.patch(ps, value, version)));
    }
    return { signalled: targets.length, current };
  }

  private async patch(ps: PodStatus, at: string, version: string | undefined): Promise<void> {
    const namespace = ps.metadata.namespace ?? "";
    try {
      await this.rest.request({
        method: "PATCH",
        path: statusPath(namespace, ps.metadata.name),
        body: { metadata: { annotations: { [REFRESH_REQUESTED_AT_ANNOTATION]: at, [REFRESH_VERSION_ANNOTATION]: version ?? null } } },
        contentType: "application/merge-patch+json",
        what: `annotate secretproviderclasspodstatus ${namespace}/${ps.metadata.name}`,
      });
    } catch (err) {
      // The pod went away meanwhile: nothing to refresh there.
      if (httpStatusOf(err) === 404) return;
      throw new Error(`failed to ask the driver on node ${nodeOf(ps) || "(unknown)"} to refresh secretproviderclasspodstatus ${namespace}/${ps.metadata.name}: ${describeApiError(err)}`, { cause: err });
    }
  }
}
