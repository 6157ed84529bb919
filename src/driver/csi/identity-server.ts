// CSI Identity service: who the plugin is and whether it is alive.
import type * as grpc from "@grpc/grpc-js";
import { BUILD_VERSION } from "../../shared/cli/version.ts";
import { unary } from "./unary.ts";
import type { DriverContext } from "../context.ts";

export function identityService(ctx: DriverContext): grpc.UntypedServiceImplementation {
  return {
    GetPluginInfo: unary(ctx, "GetPluginInfo", async () => ({ name: ctx.options.drivername, vendor_version: BUILD_VERSION })),
    // No plugin capabilities: kubelet uses none for inline ephemeral volumes,
    // and advertising a Controller service that does not exist only confuses
    // conformance tools.
    GetPluginCapabilities: unary(ctx, "GetPluginCapabilities", async () => ({ capabilities: [] })),
    Probe: unary(ctx, "Probe", async () => ({ ready: { value: true } })),
  };
}
