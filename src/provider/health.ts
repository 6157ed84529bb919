// grpc.health.v1.Health, served on the provider socket next to the provider
// API (Check always answers SERVING, as upstream), and the HTTP /healthz
// probe, which performs a real Check call over the socket. The two tiny
// messages are encoded by hand (field 1 only), so no extra .proto is needed.
import * as grpc from "@grpc/grpc-js";

const SERVING = 1;

function encodeString(field: number, text: string): Buffer {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length === 0) return Buffer.alloc(0);
  const len: number[] = [];
  let n = bytes.length;
  while (n >= 0x80) {
    len.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  len.push(n);
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...len]), bytes]);
}

/** Reads field 1 as a varint (HealthCheckResponse.status). */
function decodeStatus(buf: Buffer): number {
  let i = 0;
  while (i < buf.length) {
    const tag = buf[i++]!;
    if (tag === 0x08) {
      let value = 0;
      let shift = 0;
      while (i < buf.length) {
        const b = buf[i++]!;
        value |= (b & 0x7f) << shift;
        if (!(b & 0x80)) break;
        shift += 7;
      }
      return value;
    }
    return 0;
  }
  return 0;
}

export interface HealthCheckRequest {
  service: string;
}
export interface HealthCheckResponse {
  status: number;
}

export const healthServiceDefinition = {
  Check: {
    path: "/grpc.health.v1.Health/Check",
    requestStream: false,
    responseStream: false,
    requestSerialize: (req: HealthCheckRequest) => encodeString(1, req.service),
    requestDeserialize: (_buf: Buffer): HealthCheckRequest => ({ service: "" }),
    responseSerialize: (res: HealthCheckResponse) => Buffer.from([0x08, res.status]),
    responseDeserialize: (buf: Buffer): HealthCheckResponse => ({ status: decodeStatus(buf) }),
  },
} satisfies grpc.ServiceDefinition;

export const healthHandlers = {
  Check: (_call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, callback: grpc.sendUnaryData<HealthCheckResponse>) =>
    callback(null, { status: SERVING }),
};

type HealthClient = grpc.Client & {
  Check(req: HealthCheckRequest, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: HealthCheckResponse) => void): void;
};

/** A probe that calls Check over the socket with a timeout; resolves when SERVING. */
export function grpcHealthProbe(address: string, timeoutMs: number): { check: () => Promise<void>; close: () => void } {
  const Ctor = grpc.makeGenericClientConstructor(healthServiceDefinition, "Health");
  const client = new Ctor(address, grpc.credentials.createInsecure(), { "grpc.default_authority": "localhost" }) as unknown as HealthClient;
  return {
    check: () =>
      new Promise<void>((resolve, reject) => {
        client.Check({ service: "" }, { deadline: Date.now() + timeoutMs }, (err, res) => {
          if (err) reject(new Error(`health check over ${address} failed: ${err.details || err.message}`));
          else if (res?.status !== SERVING) reject(new Error(`health check over ${address}: status ${res?.status ?? "unknown"}`));
          else resolve();
        });
      }),
    close: () => client.close(),
  };
}
