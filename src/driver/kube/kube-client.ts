// The driver's access to the Kubernetes API: read SecretProviderClasses,
// write SecretProviderClassPodStatuses, record Events on pods. The driver
// starts without the API server; calls made while it is unreachable fail with
// Unavailable and say so.
import { status } from "@grpc/grpc-js";
import type { CoreV1Event, V1Pod, V1PodList } from "@kubernetes/client-node";
import type { Logger } from "../../shared/logger.ts";
import { DriverError, ErrorType } from "../errors.ts";
import {
  SPC_GROUP,
  SPC_PLURAL,
  SPC_VERSION,
  SPCPS_PLURAL,
  type SecretProviderClass,
  type SecretProviderClassPodStatus,
} from "../../shared/kube/kube-types.ts";
import type { KubeConnection } from "../../shared/kube/kube-connection.ts";
import { KubeRest, type WatchEvent } from "../../shared/kube/kube-rest.ts";
import { SecretProviderClassReads, type ClassRead } from "./class-reads.ts";

const SPC_BASE = `/apis/${SPC_GROUP}/${SPC_VERSION}`;
const spcPath = (namespace: string, name = "") => `${SPC_BASE}/namespaces/${encodeURIComponent(namespace)}/${SPC_PLURAL}${name ? `/${encodeURIComponent(name)}` : ""}`;
const podStatusPath = (namespace: string, name = "") =>
  `${SPC_BASE}/namespaces/${encodeURIComponent(namespace)}/${SPCPS_PLURAL}${name ? `/${encodeURIComponent(name)}` : ""}`;

export function httpStatusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === "number" ? code : undefined;
}

/** A short description of an API error without echoing bodies or headers. */
export function describeApiError(err: unknown): string {
  const e = err as { code?: unknown; body?: unknown; message?: string; cause?: { code?: string; message?: string } };
  if (typeof e.code === "number") {
    let body: { message?: string; reason?: string } | undefined;
    if (typeof e.body === "string") {
      try {
        body = JSON.parse(e.body) as typeof body;
      } catch {
        body = undefined;
      }
    } else if (e.body && typeof e.body === "object") body = e.body as typeof body;
    return body?.message ?? `HTTP ${e.code}${body?.reason ? ` ${body.reason}` : ""}`;
  }
  const cause = e.cause?.code ?? e.cause?.message;
  return cause ? `${e.message ?? "request failed"} (${cause})` : (e.message ?? String(err));
}

/** True when the API server could not be reached or answered 5xx/429. */
export function isUnavailable(err: unknown): boolean {
  const code = httpStatusOf(err);
  if (code !== undefined) return code >= 500 || code === 429;
  return true;
}

export interface PodRef {
  name: string;
  namespace: string;
  uid: string;
}

export class KubeClient {
  readonly rest: KubeRest;
  private readonly logger: Logger;
  private readonly component: string;
  private readonly nodeName: string;
  private readonly recentEvents = new Map<string, number>();
  private readonly classReads = new SecretProviderClassReads(
    (namespace, name) => this.getSecretProviderClass(namespace, name),
    (err) => err instanceof DriverError && err.code === status.NOT_FOUND,
  );

  constructor(connection: KubeConnection, logger: Logger, options: { nodeName: string; component?: string }) {
    this.rest = new KubeRest(connection);
    this.logger = logger;
    this.nodeName = options.nodeName;
    this.component = options.component ?? "csi-secrets-store-controller";
  }

  /**
   * The class as a GET sent now finds it (`current`, shared with other
   * callers waiting at the same time), and the copy the last GET found
   * (`early`), to start work with meanwhile: see class-reads.ts.
   */
  readSecretProviderClass(namespace: string, name: string): ClassRead {
    return this.classReads.read(namespace, name);
  }

  /** Reads <namespace>/<name>; the error message names both, as kubelet shows it to users. */
  async getSecretProviderClass(namespace: string, name: string): Promise<SecretProviderClass> {
    try {
      return await this.rest.request<SecretProviderClass>({ method: "GET", path: spcPath(namespace, name), what: `failed to get secretproviderclass ${namespace}/${name}` });
    } catch (err) {
      const http = httpStatusOf(err);
      if (http === 404) {
        throw new DriverError(
          status.NOT_FOUND,
          ErrorType.SecretProviderClassNotFound,
          `failed to get secretproviderclass ${namespace}/${name}, error: secretproviderclasses.${SPC_GROUP} "${name}" not found`,
        );
      }
      if (isUnavailable(err)) {
        throw new DriverError(
          status.UNAVAILABLE,
          ErrorType.KubernetesUnavailable,
          `failed to get secretproviderclass ${namespace}/${name}: the Kubernetes API server is unreachable (${describeApiError(err)}); kubelet will retry`,
        );
      }
      throw new DriverError(
        http === 403 ? status.PERMISSION_DENIED : status.INTERNAL,
        ErrorType.SecretProviderClassNotFound,
        `failed to get secretproviderclass ${namespace}/${name}, error: ${describeApiError(err)}`,
      );
    }
  }

  async getPodStatus(namespace: string, name: string): Promise<SecretProviderClassPodStatus | undefined> {
    try {
      return await this.rest.request<SecretProviderClassPodStatus>({
        method: "GET",
        path: podStatusPath(namespace, name),
        what: `failed to get secretproviderclasspodstatus ${namespace}/${name}`,
      });
    } catch (err) {
      if (httpStatusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** Creates the status object, or replaces labels, owners and status of an existing one. */
  async upsertPodStatus(desired: SecretProviderClassPodStatus, options: { expectExisting?: boolean } = {}): Promise<void> {
    const { namespace, name } = desired.metadata as { namespace: string; name: string };
    // A first mount creates the object: try that first and save a read; a
    // refresh (expectExisting) reads and replaces.
    let create = !options.expectExisting;
    for (let attempt = 0; ; attempt++) {
      try {
        const existing = create ? undefined : await this.getPodStatus(namespace, name);
        if (!existing) {
          await this.rest.request({ method: "POST", path: podStatusPath(namespace), body: desired, contentType: "application/json", what: `create ${namespace}/${name}` });
          return;
        }
        const updated: SecretProviderClassPodStatus = {
          ...existing,
          metadata: {
            ...existing.metadata,
            labels: { ...existing.metadata.labels, ...desired.metadata.labels },
            ownerReferences: desired.metadata.ownerReferences,
          },
          status: desired.status,
        };
        await this.rest.request({ method: "PUT", path: podStatusPath(namespace, name), body: updated, contentType: "application/json", what: `update ${namespace}/${name}` });
        return;
      } catch (err) {
        // 409: it exists already, or changed since read; read again.
        if (httpStatusOf(err) === 409 && attempt < 4) {
          create = false;
          continue;
        }
        throw err;
      }
    }
  }

  async listPodStatuses(labelSelector: string): Promise<SecretProviderClassPodStatus[]> {
    const list = await this.rest.request<{ items: SecretProviderClassPodStatus[] }>({
      method: "GET",
      path: `${SPC_BASE}/${SPCPS_PLURAL}`,
      query: { labelSelector },
      what: "list secretproviderclasspodstatuses",
    });
    return list.items;
  }

  /** This node's status objects with the list's resourceVersion, to start a watch from. */
  listPodStatusesForWatch(labelSelector: string): Promise<{ items: SecretProviderClassPodStatus[]; metadata?: { resourceVersion?: string } }> {
    return this.rest.request({ method: "GET", path: `${SPC_BASE}/${SPCPS_PLURAL}`, query: { labelSelector }, what: "list secretproviderclasspodstatuses" });
  }

  /** Watches status objects from resourceVersion until the stream ends or signal aborts it. */
  watchPodStatuses(labelSelector: string, resourceVersion: string | undefined, onEvent: (event: WatchEvent<SecretProviderClassPodStatus>) => void, signal: AbortSignal): Promise<void> {
    return this.rest.watch(`${SPC_BASE}/${SPCPS_PLURAL}`, { labelSelector, resourceVersion, allowWatchBookmarks: "true" }, onEvent, signal);
  }

  /** The Pod, or undefined when it does not exist. */
  async getPod(namespace: string, name: string): Promise<V1Pod | undefined> {
    try {
      return await this.rest.request<V1Pod>({
        method: "GET",
        path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`,
        what: `get pod ${namespace}/${name}`,
      });
    } catch (err) {
      if (httpStatusOf(err) === 404) return undefined;
      throw err;
    }
  }

  listPods(fieldSelector: string): Promise<V1PodList> {
    return this.rest.request<V1PodList>({ method: "GET", path: "/api/v1/pods", query: { fieldSelector }, what: "list pods" });
  }

  /** Watches pods from resourceVersion until the stream ends or signal aborts it. */
  watchPods(fieldSelector: string, resourceVersion: string | undefined, onEvent: (event: WatchEvent<V1Pod>) => void, signal: AbortSignal): Promise<void> {
    return this.rest.watch("/api/v1/pods", { fieldSelector, resourceVersion, allowWatchBookmarks: "true" }, onEvent, signal);
  }

  /**
   * Records an Event on the pod, best effort. The same reason and message for
   * the same pod is recorded at most once a minute, so a failing refresh does
   * not flood the API server.
   */
  async recordEvent(pod: PodRef, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    const key = `${pod.namespace}/${pod.name}/${reason}/${message}`;
    const now = Date.now();
    const last = this.recentEvents.get(key);
    if (last !== undefined && now - last < 60_000) return;
    this.recentEvents.set(key, now);
    if (this.recentEvents.size > 5000) {
      for (const [k, t] of this.recentEvents) if (now - t > 60_000) this.recentEvents.delete(k);
    }
    const time = new Date();
    const body: CoreV1Event = {
      metadata: { generateName: `${pod.name}.`, namespace: pod.namespace },
      involvedObject: { apiVersion: "v1", kind: "Pod", name: pod.name, namespace: pod.namespace, uid: pod.uid },
      type,
      reason,
      message,
      source: { component: this.component, host: this.nodeName },
      reportingComponent: this.component,
      reportingInstance: this.nodeName,
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
    };
    try {
      await this.rest.request({
        method: "POST",
        path: `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/events`,
        body,
        contentType: "application/json",
        what: "create event",
      });
    } catch (err) {
      this.logger.warn({ pod: `${pod.namespace}/${pod.name}`, reason, error: describeApiError(err) }, "failed to record event");
    }
  }
}
