// CSI Node service: publish and unpublish the pod's volume; everything else a
// node-only, ephemeral-only plugin is never asked for is unimplemented.
import * as grpc from "@grpc/grpc-js";
import { GrpcError } from "../../shared/grpc/grpc-server.ts";
import type { DriverContext } from "../context.ts";
import { DriverError, errorTypeOf } from "../errors.ts";
import { OS_TYPE } from "../metrics.ts";
import { nodePublishVolume, type NodePublishVolumeRequest } from "./node-publish-volume.ts";
import { nodeUnpublishVolume, type NodeUnpublishVolumeRequest } from "./node-unpublish-volume.ts";
import { deadlineOf, unary } from "./unary.ts";
import { PROVIDER_NAME_KEY } from "../../shared/provider-api/volume-attributes.ts";

/** Leave the provider call this much of kubelet's deadline to report back and clean up. */
const DEADLINE_MARGIN_MS = 2_000;

const isAborted = (err: unknown) => err instanceof DriverError && err.code === grpc.status.ABORTED;

const unimplemented = (name: string) => async () => {
  throw new GrpcError(grpc.status.UNIMPLEMENTED, `${name} is not implemented`);
};

export function nodeService(ctx: DriverContext): grpc.UntypedServiceImplementation {
  return {
    // VOLUME_MOUNT_GROUP: kubelet passes the pod's fsGroup on every publish
    // and leaves the files' ownership to the driver (KEP-2317).
    NodeGetCapabilities: unary(ctx, "NodeGetCapabilities", async () => ({ capabilities: [{ rpc: { type: "VOLUME_MOUNT_GROUP" } }] })),
    NodeGetInfo: unary(ctx, "NodeGetInfo", async () => ({ node_id: ctx.options.nodeId })),
    NodeStageVolume: unary(ctx, "NodeStageVolume", unimplemented("NodeStageVolume")),
    NodeUnstageVolume: unary(ctx, "NodeUnstageVolume", unimplemented("NodeUnstageVolume")),
    NodeExpandVolume: unary(ctx, "NodeExpandVolume", unimplemented("NodeExpandVolume")),
    NodeGetVolumeStats: unary(ctx, "NodeGetVolumeStats", unimplemented("NodeGetVolumeStats")),

    NodePublishVolume: unary(ctx, "NodePublishVolume", async (req: NodePublishVolumeRequest, call) => {
      const started = process.hrtime.bigint();
      const callerDeadline = deadlineOf(call);
      const deadline = new Date(Math.max(Date.now() + 1000, callerDeadline.getTime() - DEADLINE_MARGIN_MS));
      const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
      try {
        const outcome = await nodePublishVolume(ctx, req, { provider: deadline, caller: callerDeadline });
        const provider = ctx.metrics.providerLabel(outcome.provider);
        if (outcome.result === "refresh-failed") {
          ctx.metrics.nodePublishError.inc({ provider, error_type: "FailedToRotate", os_type: OS_TYPE });
        } else {
          ctx.metrics.nodePublish.inc({ provider, os_type: OS_TYPE });
        }
        ctx.metrics.nodePublishDuration.observe({ provider, outcome: outcome.result }, seconds());
        if (outcome.result === "mounted") {
          const ctxv = req.volume_context;
          ctx.logger.info(
            { target: req.target_path, pod: `${ctxv["csi.storage.k8s.io/pod.namespace"]}/${ctxv["csi.storage.k8s.io/pod.name"]}`, provider: outcome.provider, durationMs: Math.round(seconds() * 1000) },
            "node publish volume complete",
          );
        }
        return {};
      } catch (err) {
        // Another call on the target is in progress: kubelet retries, nothing failed.
        if (isAborted(err)) {
          ctx.metrics.nodePublishAborted.inc({ os_type: OS_TYPE });
          throw err;
        }
        const provider = ctx.metrics.providerLabel((err instanceof DriverError ? err.provider : undefined) ?? req.volume_context?.[PROVIDER_NAME_KEY] ?? "");
        ctx.metrics.nodePublishError.inc({ provider, error_type: errorTypeOf(err), os_type: OS_TYPE });
        ctx.metrics.nodePublishDuration.observe({ provider, outcome: "error" }, seconds());
        throw err;
      }
    }),

    NodeUnpublishVolume: unary(ctx, "NodeUnpublishVolume", async (req: NodeUnpublishVolumeRequest) => {
      try {
        await nodeUnpublishVolume(ctx, req);
        ctx.metrics.nodeUnpublish.inc({ os_type: OS_TYPE });
        return {};
      } catch (err) {
        if (isAborted(err)) ctx.metrics.nodeUnpublishAborted.inc({ os_type: OS_TYPE });
        else ctx.metrics.nodeUnpublishError.inc({ os_type: OS_TYPE });
        throw err;
      }
    }),
  };
}
