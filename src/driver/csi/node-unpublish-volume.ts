// NodeUnpublishVolume: unmount the driver's tmpfs and remove the target
// directory if it is then empty. It converges: once nothing of the driver's is
// left at the target the answer is OK, also for an unknown or removed target.
// It never deletes anything recursively and never unmounts a mount the driver
// did not make (volume/target.ts decides what is the driver's); foreign
// content it leaves alone is reported in a log line and, where the pod is
// known, an event.
import { status } from "@grpc/grpc-js";
import type { DriverContext } from "../context.ts";
import { DriverError, ErrorType, invalidArgument } from "../errors.ts";
import type { MountedVolume } from "../volume/mounted-volumes.ts";
import { TargetParentError } from "../volume/target-path.ts";
import { describeEntries, describeMount } from "../volume/target-state.ts";
import { MAX_STACKED_MOUNTS, VolumeTarget, type TargetState } from "../volume/target.ts";

export interface NodeUnpublishVolumeRequest {
  volume_id: string;
  target_path: string;
}

export async function nodeUnpublishVolume(ctx: DriverContext, req: NodeUnpublishVolumeRequest): Promise<void> {
  if (!req.volume_id) throw invalidArgument("Volume ID missing in request");
  if (!req.target_path) throw invalidArgument("Target path missing in request");
  const target = await VolumeTarget.open(ctx, req.target_path, req.volume_id, "NodeUnpublishVolume");
  try {
    await unpublish(ctx, target);
  } catch (err) {
    if (err instanceof DriverError) throw err;
    throw new DriverError(status.INTERNAL, ErrorType.FailedToMount, `failed to clean and unmount target path ${target.path}: ${(err as Error).message}`);
  } finally {
    target.release();
  }
}

/** Unmounts the driver's mounts at the target, top first, until nothing of the driver's is left. */
async function unpublish(ctx: DriverContext, target: VolumeTarget): Promise<void> {
  const record = ctx.volumes.get(target.path);
  const forget = () => ctx.volumes.delete(target.path);
  for (let round = 0; ; round++) {
    let state: TargetState;
    try {
      state = await target.inspect();
    } catch (err) {
      if (!(err instanceof TargetParentError)) throw err;
      // The driver never mounts below a missing or symlinked parent, so
      // nothing of its own can be there.
      forget();
      if (!err.missing) await reportLeftAlone(ctx, record, target, `a path whose parent is not a real directory (${err.message})`);
      return;
    }
    switch (state.kind) {
      case "absent":
        forget();
        return;
      case "not-a-directory":
        forget();
        return reportLeftAlone(ctx, record, target, `${state.what} the driver did not make`);
      case "foreign-content":
        // Files in a plain directory: never the driver's (it writes only into its tmpfs).
        forget();
        return reportLeftAlone(ctx, record, target, `${describeEntries(state.entries)} the driver did not write`);
      case "foreign-mount":
        if (state.driverMountBelow) {
          throw new DriverError(
            status.FAILED_PRECONDITION,
            ErrorType.FailedToMount,
            `failed to clean and unmount target path ${target.path}: ${describeMount(state.mount)} is mounted on top of the driver's tmpfs; unmount it first`,
          );
        }
        forget();
        return reportLeftAlone(ctx, record, target, describeMount(state.mount));
      case "empty-directory":
        forget();
        switch (target.removeDirectory()) {
          case "not-empty":
            // Someone wrote into the directory meanwhile: leave it.
            return reportLeftAlone(ctx, record, target, "content written into the directory meanwhile");
          default:
            return;
        }
      case "driver-tmpfs": {
        const other = target.otherTargetOf(state.mount);
        if (other) {
          // The same tmpfs seen through another path (a bind mount above the
          // target): it is the other pod's volume, not this one's.
          forget();
          return reportLeftAlone(ctx, record, target, `the volume of another target (${other})`);
        }
        if (round >= MAX_STACKED_MOUNTS) throw new Error(`target path ${target.path} is still mounted after ${round} unmounts`);
        await target.unmount();
        // Look again, so stacked mounts and what lies beneath are handled too.
        break;
      }
    }
  }
}

async function reportLeftAlone(ctx: DriverContext, record: MountedVolume | undefined, target: VolumeTarget, what: string): Promise<void> {
  const message = `unpublished ${target.path} without touching ${what}; nothing of the driver's is left there`;
  ctx.logger.warn({ target: target.path, pod: record ? `${record.pod.namespace}/${record.pod.name}` : undefined }, message);
  if (record && !(ctx.kube instanceof Error)) {
    await ctx.kube.recordEvent(record.pod, "Warning", "UnpublishLeftForeignContent", message);
  }
}
