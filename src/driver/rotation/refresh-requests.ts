// On-demand refresh: annotating a pod with
//   secrets-store.csi.k8s.io/refresh-requested-at=<any new value>
// refreshes that pod's volumes now instead of at the next interval. The driver
// watches only the pods of its own node.
import type { V1Pod } from "@kubernetes/client-node";
import type { DriverContext } from "../context.ts";
import type { KubeClient } from "../kube/kube-client.ts";

export const REFRESH_ANNOTATION = "secrets-store.csi.k8s.io/refresh-requested-at";

export class RefreshRequests {
  private readonly ctx: DriverContext;
  private readonly kube: KubeClient;
  private readonly seen = new Map<string, string>();
  private readonly abort = new AbortController();
  private stopped = false;
  private readonly onRequest: (podUid: string) => void;

  constructor(ctx: DriverContext, kube: KubeClient, onRequest: (podUid: string) => void) {
    this.ctx = ctx;
    this.kube = kube;
    this.onRequest = onRequest;
  }

  private observe(pod: V1Pod, initial: boolean): void {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    const value = pod.metadata?.annotations?.[REFRESH_ANNOTATION];
    const previous = this.seen.get(uid);
    if (value === undefined) {
      this.seen.delete(uid);
      return;
    }
    this.seen.set(uid, value);
    if (!initial && value !== previous) {
      this.ctx.logger.info({ pod: `${pod.metadata?.namespace}/${pod.metadata?.name}` }, "refresh requested by annotation");
      this.onRequest(uid);
    }
  }

  async start(): Promise<void> {
    const fieldSelector = `spec.nodeName=${this.ctx.options.nodeId}`;
    while (!this.stopped) {
      try {
        const list = await this.kube.listPods(fieldSelector);
        for (const pod of list.items) this.observe(pod, true);
        // Until the server ends the watch (timeout, 410 Gone); then list again.
        await this.kube.watchPods(
          fieldSelector,
          list.metadata?.resourceVersion,
          ({ type, object: pod }) => {
            if (type === "ADDED" || type === "MODIFIED") this.observe(pod, false);
            if (type === "DELETED" && pod.metadata?.uid) this.seen.delete(pod.metadata.uid);
          },
          this.abort.signal,
        );
      } catch (err) {
        this.ctx.logger.debug({ error: String(err) }, "pod watch failed; retrying");
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, 2000));
    }
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
  }
}
