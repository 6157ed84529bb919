// Reading errors of Kubernetes API calls made with kube-rest.ts: the HTTP
// status, and a one-line description that carries the API server's own
// message (never a request or response body beyond that).
import { KubeApiError } from "./kube-rest.ts";

/** The HTTP status of a failed call, or undefined when no answer came (network, timeout). */
export function httpStatusOf(err: unknown): number | undefined {
  if (err instanceof KubeApiError) return err.code;
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "number" ? code : undefined;
}

/** The API server's message ("secrets \"x\" is forbidden: ..."), or the network error. */
export function describeApiError(err: unknown): string {
  if (err instanceof KubeApiError) return err.body?.message ?? err.message;
  const e = err as { message?: string; code?: unknown; cause?: { code?: string; message?: string } } | undefined;
  const cause = e?.cause?.code ?? e?.cause?.message ?? (typeof e?.code === "string" ? e.code : undefined);
  const message = e?.message ?? String(err);
  return cause && !message.includes(cause) ? `${message} (${cause})` : message;
}

/** True for what a retry may fix: no answer, 5xx, 429, or a conflict. */
export function isTransient(err: unknown): boolean {
  const code = httpStatusOf(err);
  return code === undefined || code >= 500 || code === 429 || code === 409;
}
