// Wraps an async handler as a gRPC unary handler: errors become gRPC statuses
// with their codes, and every call is logged with secrets stripped.
import * as grpc from "@grpc/grpc-js";
import { sanitizeRequest } from "../../shared/logger.ts";
import { toServiceError } from "../../shared/grpc/grpc-server.ts";
import type { DriverContext } from "../context.ts";

export type Handler<Req, Res> = (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>;

export function unary<Req, Res>(ctx: DriverContext, method: string, handler: Handler<Req, Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const started = Date.now();
    handler(call.request, call).then(
      (response) => {
        // The sanitized copy of the request is made only when it is logged.
        if (ctx.logger.isLevelEnabled("debug")) ctx.logger.debug({ method, durationMs: Date.now() - started, request: sanitizeRequest(call.request) }, "csi call");
        callback(null, response);
      },
      (err: unknown) => {
        const serviceError = toServiceError(err);
        ctx.logger.info({ method, durationMs: Date.now() - started, code: grpc.status[serviceError.code ?? 2], error: serviceError.details }, "csi call failed");
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
