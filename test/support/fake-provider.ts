// A secrets provider for driver tests: serves the real v1alpha1 provider API on
// a real unix socket and answers Mount with whatever the test scripts.
import * as grpc from "@grpc/grpc-js";
import { startGrpcServer, type RunningGrpcServer } from "../../src/shared/grpc/grpc-server.ts";
import { providerService } from "../../src/shared/grpc/proto.ts";

export interface FakeMountRequest {
  attributes: string;
  secrets: string;
  target_path: string;
  permission: string;
  current_object_version: Array<{ id: string; version: string }>;
}

export interface FakeMountResponse {
  object_version?: Array<{ id: string; version: string }>;
  files?: Array<{ path: string; mode: number; contents: Buffer | string }>;
  error?: { code: string };
}

export type MountBehaviour = (req: FakeMountRequest, metadata: grpc.Metadata) => Promise<FakeMountResponse> | FakeMountResponse;

export interface FakeProvider {
  socketPath: string;
  requests: FakeMountRequest[];
  authorities: string[];
  versionCalls: number;
  /** The provider API version Version reports. */
  apiVersion: string;
  behaviour: MountBehaviour;
  stop(): Promise<void>;
}

/** Files a, dir/b with modes 0644/0600 at version v1, the default answer. */
export const defaultMount: MountBehaviour = () => ({
  object_version: [
    { id: "secret/a", version: "v1" },
    { id: "secret/b", version: "v1" },
  ],
  files: [
    { path: "a", mode: 0o644, contents: "alpha" },
    { path: "dir/b", mode: 0o600, contents: "bravo" },
  ],
});

export async function startFakeProvider(socketPath: string, behaviour: MountBehaviour = defaultMount): Promise<FakeProvider> {
  const fake: FakeProvider = {
    socketPath,
    requests: [],
    authorities: [],
    versionCalls: 0,
    apiVersion: "v1alpha1",
    behaviour,
    stop: async () => undefined,
  };
  const server: RunningGrpcServer = await startGrpcServer({ endpoint: `unix://${socketPath}` }, (s) => {
    s.addService(providerService().service, {
      Version: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        fake.versionCalls++;
        cb(null, { version: fake.apiVersion, runtime_name: "fake", runtime_version: "0.0.1" });
      },
      Mount: (call: grpc.ServerUnaryCall<FakeMountRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        fake.requests.push(call.request);
        fake.authorities.push(call.getHost());
        Promise.resolve()
          .then(() => fake.behaviour(call.request, call.metadata))
          .then(
            (res) => cb(null, { ...res, files: res.files?.map((f) => ({ ...f, contents: Buffer.from(f.contents) })) }),
            (err: unknown) => cb(err as grpc.ServiceError),
          );
      },
    });
  });
  fake.stop = () => server.stop(100);
  return fake;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

