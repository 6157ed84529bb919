// Wraps an async handler as a gRPC unary handler: errors become gRPC statuses
// with their codes, and every call is logged with secrets stripped and every
// field bounded: a request's strings and maps are kubelet's (from the pod's
// spec), so a log line stays a few KiB whatever a pod puts in them.
import * as grpc from "@grpc/grpc-js";
import { sanitizeRequest } from "../../shared/logger.ts";
import { toServiceError } from "../../shared/grpc/grpc-server.ts";
import type { DriverContext } from "../context.ts";
import { traceStep } from "../../shared/trace.ts";

export type Handler<Req, Res> = (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>;

export function unary<Req, Res>(ctx: DriverContext, method: string, handler: Handler<Req, Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const started = Date.now();
    traceStep(`csi ${method}`, () => handler(call.request, call)).then(
      (response) => {
        // The sanitized copy of the request is made only when it is logged.
        if (ctx.logger.isLevelEnabled("debug")) ctx.logger.debug({ method, durationMs: Date.now() - started, request: bounded(sanitizeRequest(call.request)) }, "csi call");
        callback(null, response);
      },
      (err: unknown) => {
        const serviceError = toServiceError(err);
        ctx.logger.info({ method, durationMs: Date.now() - started, code: grpc.status[serviceError.code ?? 2], error: boundedString(serviceError.details ?? "", MAX_LOGGED_ERROR) }, "csi call failed");
        callback(serviceError as grpc.ServiceError);
      },
    );
  };
}

/** The caller's deadline, or the default kubelet uses (2 minutes) when none was sent. */
export function deadlineOf(call: grpc.ServerUnaryCall<unknown, unknown>, defaultMs = 120_000): Date {
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : typeof deadline === "number" && Number.isFinite(deadline) ? deadline : Date.now() + defaultMs;
  return new Date(ms);
}

/** Longest string of a logged request (a target path fits), and the most entries of a logged map. */
const MAX_LOGGED_STRING = 512;
const MAX_LOGGED_ENTRIES = 32;
const MAX_LOGGED_ERROR = 2048;

function boundedString(text: string, max = MAX_LOGGED_STRING): string {
  return text.length > max ? `${text.slice(0, max)}…(${text.length} characters)` : text;
}

/** A copy of a (sanitized) request with every string, map and list cut to a bound, three levels deep. */
export function bounded(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return boundedString(value);
  if (value === null || typeof value !== "object" || Buffer.isBuffer(value)) return value;
  if (depth >= 3) return "…";
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value as Record<string, unknown>);
  const out: Record<string, unknown> = {};
  for (const [key, v] of entries.slice(0, MAX_LOGGED_ENTRIES)) out[boundedString(key, 128)] = bounded(v, depth + 1);
  if (entries.length > MAX_LOGGED_ENTRIES) out["…"] = `${entries.length - MAX_LOGGED_ENTRIES} more`;
  return Array.isArray(value) ? Object.values(out) : out;
}
