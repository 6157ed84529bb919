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
import { traceStep, traceStepSync } from "../../shared/trace.ts";

export interface NodeUnpublishVolumeRequest {
  volume_id: string;
  target_path: string;
}

export async function nodeUnpublishVolume(ctx: DriverContext, req: NodeUnpublishVolumeRequest): Promise<void> {
  if (!req.volume_id) throw invalidArgument("Volume ID missing in request");
  if (!req.target_path) throw invalidArgument("Target path missing in request");
  const target = await traceStep("open", () => VolumeTarget.open(ctx, req.target_path, req.volume_id, "NodeUnpublishVolume"));
  try {
    await unpublish(ctx, target);
  } catch (err) {
    if (err instanceof DriverError) throw err;
    throw new DriverError(status.INTERNAL, ErrorType.FailedToMount, `failed to clean and unmount target path ${target.path}: ${(err as Error).message}`);
  } finally {
    target.release();
  }
}

/**
 * Unmounts the driver's mounts at the target, top first, until nothing of the
 * driver's is left. Answers OK only once the recorded tmpfs is gone from the
 * node: if the target path no longer leads to it (a path element moved or
 * swapped for a symlink), the volume stays recorded and the call fails.
 */
async function unpublish(ctx: DriverContext, target: VolumeTarget): Promise<void> {
  const record = ctx.volumes.get(target.path);
  /** What is at the target now is left alone (when said); the record goes once its tmpfs is gone. */
  const finish = async (leftAlone?: string): Promise<void> => {
    if (record) {
      const at = await traceStep("still mounted", () => target.stillMounted(record.mount));
      if (at !== undefined) {
        throw new DriverError(
          status.FAILED_PRECONDITION,
          ErrorType.FailedToMount,
          `failed to clean and unmount target path ${target.path}: the driver's tmpfs of this target is still mounted at ${at}, ` +
            `but the target path no longer leads to it${leftAlone ? ` (it shows ${leftAlone})` : ""}; nothing was unmounted or removed`,
        );
      }
    }
    ctx.volumes.delete(target.path);
    if (leftAlone) await reportLeftAlone(ctx, record, target, leftAlone);
  };
  for (let round = 0; ; round++) {
    let state: TargetState;
    try {
      state = await traceStep("inspect", () => target.inspect());
    } catch (err) {
      if (!(err instanceof TargetParentError)) throw err;
      // The driver never mounts below a missing or symlinked parent, so
      // nothing of its own can be there.
      return finish(err.missing ? undefined : `a path whose parent is not a real directory (${err.message})`);
    }
    switch (state.kind) {
      case "absent":
        return finish();
      case "not-a-directory":
        return finish(`${state.what} the driver did not make`);
      case "foreign-content":
        // Files in a plain directory: never the driver's (it writes only into its tmpfs).
        return finish(`${describeEntries(state.entries)} the driver did not write`);
      case "foreign-mount":
        if (state.driverMountBelow) {
          throw new DriverError(
            status.FAILED_PRECONDITION,
            ErrorType.FailedToMount,
            `failed to clean and unmount target path ${target.path}: ${describeMount(state.mount)} is mounted on top of the driver's tmpfs; unmount it first`,
          );
        }
        return finish(describeMount(state.mount));
      case "empty-directory":
        // Removed through a descriptor of the checked parent: never a directory elsewhere.
        switch (traceStepSync("remove directory", () => target.removeDirectory())) {
          case "not-empty":
            // Someone wrote into the directory meanwhile: leave it.
            return finish("content written into the directory meanwhile");
          default:
            return finish();
        }
      case "driver-tmpfs": {
        const other = target.otherTargetOf(state.mount);
        if (other) {
          // The same tmpfs seen through another path (a bind mount above the
          // target): it is the other pod's volume, not this one's.
          ctx.volumes.delete(target.path);
          return reportLeftAlone(ctx, record, target, `the volume of another target (${other})`);
        }
        if (round >= MAX_STACKED_MOUNTS) throw new Error(`target path ${target.path} is still mounted after ${round} unmounts`);
        const mount = state.mount;
        await traceStep("unmount", () => target.unmount(mount));
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
