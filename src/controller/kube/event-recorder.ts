// Events on SecretSyncs (`kubectl describe secretsync` shows them), and on
// the pods and workloads event-driven rotation concerns. Best effort: a
// failed Event is logged, never retried. The same reason and message for
// the same object is recorded once per window, so a failure
// repeated at every retry does not flood the API server; the memory of what
// was sent is bounded.
import type { Logger } from "../../shared/logger.ts";
import { describeApiError } from "../../shared/kube/api-errors.ts";
import type { KubeRest } from "../../shared/kube/kube-rest.ts";
import { LruCache } from "../../shared/lru.ts";
import { SECRET_SYNC_API_VERSION, SECRET_SYNC_KIND, type SecretSync } from "../api/secret-sync.ts";

export const EVENT_COMPONENT = "secrets-store-sync-controller";

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid?: string;
}

export interface EventRecorderOptions {
  /** The replica's pod name (reportingInstance). */
  instance: string;
  /** An identical Event is sent again only after this long. */
  repeatAfterMs: number;
  /** Distinct (object, reason, message) remembered at most. */
  maxRemembered: number;
}

export class EventRecorder {
  private readonly rest: KubeRest;
  private readonly logger: Logger;
  private readonly options: EventRecorderOptions;
  private readonly sent: LruCache<string, number>;

  constructor(rest: KubeRest, logger: Logger, options: EventRecorderOptions) {
    this.rest = rest;
    this.logger = logger;
    this.options = options;
    this.sent = new LruCache({ maxEntries: options.maxRemembered, idleMs: options.repeatAfterMs });
  }

  get remembered(): number {
    return this.sent.size;
  }

  record(ss: SecretSync, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    const { name, namespace, uid } = ss.metadata;
    return this.recordFor({ apiVersion: SECRET_SYNC_API_VERSION, kind: SECRET_SYNC_KIND, name, namespace: namespace ?? "", uid }, type, reason, message);
  }

  /** An Event on any namespaced object (a pod, a Deployment, a SecretSync). */
  async recordFor(object: InvolvedObject, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    const { namespace } = object;
    const key = `${object.uid ?? `${object.kind}/${namespace}/${object.name}`}\0${reason}\0${message}`;
    const now = Date.now();
    const last = this.sent.get(key);
    if (last !== undefined && now - last < this.options.repeatAfterMs) return;
    this.sent.set(key, now);
    const time = new Date(now).toISOString().replace(/\.\d{3}Z$/, "Z");
    try {
      await this.rest.request({
        method: "POST",
        path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/events`,
        body: {
          apiVersion: "v1",
          kind: "Event",
          metadata: { generateName: `${object.name}.`, namespace },
          involvedObject: object,
          type,
          reason,
          message,
          source: { component: EVENT_COMPONENT },
          reportingComponent: EVENT_COMPONENT,
          reportingInstance: this.options.instance,
          firstTimestamp: time,
          lastTimestamp: time,
          count: 1,
        },
        contentType: "application/json",
        what: "create event",
      });
    } catch (err) {
      this.logger.warn({ object: `${object.kind} ${namespace}/${object.name}`, reason, error: describeApiError(err) }, "failed to record event");
    }
  }
}
