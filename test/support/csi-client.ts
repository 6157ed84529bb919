// A CSI client for tests: calls the driver over its real unix socket.
import * as grpc from "@grpc/grpc-js";
import { csiServices } from "../../src/shared/grpc/proto.ts";

type Callable = (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void;

export interface CsiClient {
  call<T = Record<string, unknown>>(service: "Identity" | "Node" | "Controller", method: string, request: object, timeoutMs?: number): Promise<T>;
  close(): void;
}

export function csiClient(socketPath: string): CsiClient {
  const ctors = csiServices();
  const clients = {
    Identity: new ctors.Identity(`unix:${socketPath}`, grpc.credentials.createInsecure()),
    Node: new ctors.Node(`unix:${socketPath}`, grpc.credentials.createInsecure()),
    Controller: new ctors.Controller(`unix:${socketPath}`, grpc.credentials.createInsecure()),
  };
  return {
    call<T>(service: keyof typeof clients, method: string, request: object, timeoutMs = 30_000) {
      const client = clients[service] as unknown as Record<string, Callable>;
      const fn = client[method];
      if (!fn) throw new Error(`no method ${service}.${method}`);
      return new Promise<T>((resolve, reject) =>
        fn.call(client, request, new grpc.Metadata(), { deadline: new Date(Date.now() + timeoutMs) }, (err, res) => (err ? reject(err) : resolve(res as T))),
      );
    },
    close() {
      for (const c of Object.values(clients)) c.close();
    },
  };
}

/** Asserts a call failed with the given code; returns the error's message. */
export async function expectGrpcError(promise: Promise<unknown>, code: grpc.status): Promise<string> {
  try {
    await promise;
  } catch (err) {
    const e = err as grpc.ServiceError;
    if (e.code !== code) throw new Error(`expected gRPC ${grpc.status[code]}, got ${grpc.status[e.code]}: ${e.details}`);
    return e.details;
  }
  throw new Error(`expected gRPC ${grpc.status[code]}, but the call succeeded`);
}
