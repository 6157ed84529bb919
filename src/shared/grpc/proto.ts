// Loads the .proto definitions at run time with @grpc/proto-loader. The proto
// directory sits beside src/ in the repository and beside the bundle in images.
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const LOADER_OPTIONS: protoLoader.Options = {
  // Field names stay as on the wire (volume_id, target_path) so code reads
  // like the CSI spec.
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** Finds proto/: $SSCSI_PROTO_DIR, then ./proto beside the bundle, then the repository's. */
export function protoDir(): string {
  const fromEnv = process.env.SSCSI_PROTO_DIR;
  if (fromEnv) return fromEnv;
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, "proto"), resolve(here, "../../../proto"), resolve(here, "../proto")]) {
    if (existsSync(join(candidate, "csi.proto"))) return candidate;
  }
  throw new Error(`proto directory not found near ${here}; set SSCSI_PROTO_DIR`);
}

const cache = new Map<string, grpc.GrpcObject>();

export function loadProto(file: "csi.proto" | "provider.proto" | "pluginregistration.proto"): grpc.GrpcObject {
  let loaded = cache.get(file);
  if (!loaded) {
    const definition = protoLoader.loadSync(join(protoDir(), file), LOADER_OPTIONS);
    loaded = grpc.loadPackageDefinition(definition);
    cache.set(file, loaded);
  }
  return loaded;
}

type ServiceCtor = grpc.ServiceClientConstructor;

export function csiServices(): { Identity: ServiceCtor; Node: ServiceCtor; Controller: ServiceCtor } {
  const pkg = (loadProto("csi.proto").csi as grpc.GrpcObject).v1 as grpc.GrpcObject;
  return { Identity: pkg.Identity as ServiceCtor, Node: pkg.Node as ServiceCtor, Controller: pkg.Controller as ServiceCtor };
}

export function providerService(): ServiceCtor {
  return (loadProto("provider.proto").v1alpha1 as grpc.GrpcObject).CSIDriverProvider as ServiceCtor;
}

/** kubelet's plugin registration service (served by plugins, called by kubelet). */
export function pluginRegistrationService(): ServiceCtor {
  return (loadProto("pluginregistration.proto").pluginregistration as grpc.GrpcObject).Registration as ServiceCtor;
}
