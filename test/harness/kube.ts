// Helpers for *.cluster.test.ts files: clients for the shared test cluster,
// create-or-replace of YAML manifests, polling with descriptive timeouts, raw
// HTTPS requests (to see headers such as Warning) and the audit log.
import { readFile, stat } from "node:fs/promises";
import * as https from "node:https";
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  type KubernetesObject,
  type V1Namespace,
} from "@kubernetes/client-node";
import { inject } from "vitest";
import YAML from "yaml";

/** Loads a kubeconfig file into a KubeConfig. */
export function loadKubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/** The admin (system:masters) KubeConfig of the cluster started by the global setup. */
export function kubeConfigFromInjected(): KubeConfig {
  return loadKubeConfig(inject("kubeconfig"));
}

async function control(path: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${inject("kubeControlUrl")}/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const result = (await res.json()) as { error?: string };
  if (!res.ok) throw new Error(`test harness ${path}: ${result.error ?? `HTTP ${res.status}`}`);
  return result;
}

/**
 * Writes a kubeconfig for `user` (member of `groups`, plus system:authenticated)
 * authenticated by a client certificate from the cluster CA, and returns its path.
 * The user has no RBAC rights until a test grants some.
 */
export async function kubeconfigFor(user: string, groups: string[] = []): Promise<string> {
  const { path } = (await control("kubeconfig", { user, groups })) as { path: string };
  return path;
}

/** Starts kube-controller-manager (garbage collector, deployments, service accounts, ...) if not yet running. */
export async function startControllerManager(): Promise<void> {
  await control("controller-manager", {});
}

/** The HTTP status code of a failed client-node call, or undefined for other errors. */
export function apiErrorCode(err: unknown): number | undefined {
  return err instanceof ApiException ? (err as ApiException<unknown>).code : undefined;
}

/**
 * Creates every object of a (multi-document) YAML text, replacing objects that
 * already exist. Works for any kind the API server serves, custom resources included.
 */
export async function applyYaml(kc: KubeConfig, yamlText: string): Promise<KubernetesObject[]> {
  const client = KubernetesObjectApi.makeApiClient(kc);
  const applied: KubernetesObject[] = [];
  for (const doc of YAML.parseAllDocuments(yamlText)) {
    if (doc.errors.length > 0) throw new Error(`applyYaml: invalid YAML: ${doc.errors[0]?.message ?? ""}`);
    const spec = doc.toJSON() as KubernetesObject | null;
    if (spec === null || spec === undefined) continue;
    if (!spec.apiVersion || !spec.kind || !spec.metadata?.name) {
      throw new Error(`applyYaml: every document needs apiVersion, kind and metadata.name: ${JSON.stringify(spec)}`);
    }
    applied.push(await createOrReplace(client, spec));
  }
  return applied;
}

async function createOrReplace(client: KubernetesObjectApi, spec: KubernetesObject): Promise<KubernetesObject> {
  try {
    return await client.create(spec);
  } catch (err) {
    if (apiErrorCode(err) !== 409) throw err;
  }
  for (let attempt = 1; ; attempt++) {
    const existing = await client.read({
      apiVersion: spec.apiVersion ?? "",
      kind: spec.kind ?? "",
      metadata: { name: spec.metadata?.name ?? "", namespace: spec.metadata?.namespace ?? "" },
    });
    try {
      return await client.replace({
        ...spec,
        metadata: { ...spec.metadata, resourceVersion: existing.metadata?.resourceVersion },
      });
    } catch (err) {
      if (apiErrorCode(err) !== 409 || attempt >= 5) throw err;
    }
  }
}

/**
 * Creates a namespace and its "default" ServiceAccount (pod admission needs it,
 * and the service-account controller only runs once the controller manager is started).
 * An existing namespace or ServiceAccount is kept.
 */
export async function createNamespace(kc: KubeConfig, name: string): Promise<V1Namespace> {
  const core = kc.makeApiClient(CoreV1Api);
  let ns: V1Namespace;
  try {
    ns = await core.createNamespace({ body: { metadata: { name } } });
  } catch (err) {
    if (apiErrorCode(err) !== 409) throw err;
    ns = await core.readNamespace({ name });
  }
  try {
    await core.createNamespacedServiceAccount({ namespace: name, body: { metadata: { name: "default" } } });
  } catch (err) {
    if (apiErrorCode(err) !== 409) throw err;
  }
  return ns;
}

export interface WaitForOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** What is awaited, for the timeout error ("SPCPS ns/name to be garbage-collected"). */
  description: string;
}

/**
 * Calls `fn` until it returns a value other than undefined, null or false, and
 * returns that value. Errors thrown by `fn` count as "not yet" and the last one
 * is reported if the wait times out.
 */
export async function waitFor<T>(
  fn: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  options: WaitForOptions,
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const intervalMs = options.intervalMs ?? 200;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let lastValue: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined && value !== null && value !== false) return value;
      lastValue = value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail =
        lastError !== undefined
          ? `last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`
          : `last result: ${String(lastValue)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.description}; ${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The body parsed as JSON, or undefined if it is not JSON. */
  json: unknown;
}

/** Sends one HTTPS request to the API server with the credentials of `kc` (to see status and headers directly). */
export async function rawRequest(
  kc: KubeConfig,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("rawRequest: the kubeconfig has no current cluster");
  const options: https.RequestOptions = { method, headers: { accept: "application/json", ...headers } };
  await kc.applyToHTTPSOptions(options);
  const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  if (payload !== undefined) {
    options.headers = { "content-type": "application/json", ...options.headers, "content-length": Buffer.byteLength(payload) };
  }
  return new Promise((resolve, reject) => {
    const req = https.request(`${cluster.server}${path}`, { ...options, timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json });
      });
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/** One line of the API server's audit log (the fields the tests use). */
export interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  requestURI: string;
  user: { username: string; groups?: string[] };
  impersonatedUser?: { username: string; groups?: string[] };
  userAgent?: string;
  objectRef?: {
    resource?: string;
    subresource?: string;
    namespace?: string;
    name?: string;
    apiGroup?: string;
    apiVersion?: string;
  };
  responseStatus?: { code?: number; reason?: string };
  annotations?: Record<string, string>;
}

/** Current size of the audit log: pass it later as `fromOffset` to read only newer events. */
export async function auditLogOffset(path: string = inject("auditLogPath")): Promise<number> {
  return (await stat(path)).size;
}

/** Parses the audit log (optionally from a byte offset); a half-written last line is ignored. */
export async function readAuditEvents(options: { path?: string; fromOffset?: number } = {}): Promise<AuditEvent[]> {
  const buf = await readFile(options.path ?? inject("auditLogPath"));
  const lines = buf.subarray(options.fromOffset ?? 0).toString("utf8").split("\n");
  const events: AuditEvent[] = [];
  for (const [i, line] of lines.entries()) {
    if (!line.trim()) continue;
    try {
      events.push(JSON.parse(line) as AuditEvent);
    } catch (err) {
      if (i === lines.length - 1) continue;
      throw new Error(`audit log line ${i + 1} is not JSON: ${(err as Error).message}`);
    }
  }
  return events;
}
