// A gRPC server listening on a unix socket (or TCP) as the upstream programs
// do: a stale socket file is removed first, and the socket can be created
// owner-only.
import { chmod, lstat, mkdir, rm } from "node:fs/promises";
import { dirname } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { parseEndpoint } from "./endpoint.ts";
import { GrpcError } from "./grpc-error.ts";

export interface GrpcServerOptions {
  endpoint: string;
  /** chmod applied to the unix socket after bind (e.g. 0o600 for owner-only). */
  socketMode?: number;
  maxReceiveMessageLength?: number;
}

export interface RunningGrpcServer {
  server: grpc.Server;
  /** The address clients dial: "unix:/path" or "host:port". */
  address: string;
  /** Graceful stop with a deadline, then force. Removes the socket file. */
  stop(graceMs?: number): Promise<void>;
}

export async function startGrpcServer(
  options: GrpcServerOptions,
  register: (server: grpc.Server) => void,
): Promise<RunningGrpcServer> {
  const endpoint = parseEndpoint(options.endpoint);
  // No channelz: nothing serves it, and its bookkeeping is work on every call.
  const serverOptions: grpc.ServerOptions = { "grpc.enable_channelz": 0 };
  if (options.maxReceiveMessageLength) serverOptions["grpc.max_receive_message_length"] = options.maxReceiveMessageLength;
  const server = new grpc.Server(serverOptions);
  register(server);

  let address: string;
  if (endpoint.kind === "unix") {
    await mkdir(dirname(endpoint.path), { recursive: true });
    try {
      const st = await lstat(endpoint.path);
      if (st.isSocket()) await rm(endpoint.path);
      else throw new Error(`cannot listen on ${endpoint.path}: a file that is not a socket is in the way`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    address = `unix:${endpoint.path}`;
  } else {
    address = endpoint.address;
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, boundPort) => (err ? reject(err) : resolve(boundPort))),
  );
  if (endpoint.kind === "unix" && options.socketMode !== undefined) await chmod(endpoint.path, options.socketMode);
  if (endpoint.kind === "tcp") address = address.replace(/:0$/, `:${port}`);

  return {
    server,
    address,
    async stop(graceMs = 5000) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (endpoint.kind === "unix") await rm(endpoint.path, { force: true });
    },
  };
}

export { GrpcError };

/** Converts anything thrown into a ServiceError for a unary callback. */
export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  if (err instanceof GrpcError) return { code: err.code, details: err.message, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: grpc.status.INTERNAL, details: message, message };
}
