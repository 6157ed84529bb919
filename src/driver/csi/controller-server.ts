// CSI Controller service. The driver has no controller side; csi-sanity
// (up to v5.4) nevertheless requires ControllerGetCapabilities to answer with
// a non-empty list, so it answers UNKNOWN. Every other Controller RPC is
// unimplemented.
import type * as grpc from "@grpc/grpc-js";
import type { DriverContext } from "../context.ts";
import { unary } from "./unary.ts";

export function controllerService(ctx: DriverContext): grpc.UntypedServiceImplementation {
  return {
    ControllerGetCapabilities: unary(ctx, "ControllerGetCapabilities", async () => ({ capabilities: [{ rpc: { type: "UNKNOWN" } }] })),
  };
}
