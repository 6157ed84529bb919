// NodeUnpublishVolume: unmount the driver's tmpfs and remove the target
// directory if it is then empty. It converges: once nothing of the driver's is
// left at the target the answer is OK, also for an unknown or removed target.
// It never deletes anything recursively and never unmounts a mount the driver
// did not make; foreign content it leaves alone is reported in a log line and,
// where the pod is known, an event.
import { rmdirSync } from "node:fs";
import { status } from "@grpc/grpc-js";
import type { DriverContext } from "../context.ts";
import { DriverError, ErrorType, invalidArgument } from "../errors.ts";
import type { MountedVolume } from "../volume/mounted-volumes.ts";
import { targetKey, volumeKey } from "../volume/target-locks.ts";
import { adoptFromPodStatus } from "../volume/volume-recovery.ts";
import { TargetParentError } from "../volume/target-path.ts";
import { describeEntries, describeMount, inspectTarget, resolveTarget, type ResolvedTarget, type TargetState } from "../volume/target-state.ts";

export interface NodeUnpublishVolumeRequest {
  volume_id: string;
  target_path: string;
}

/** Bounds the unmount loop: more stacked driver mounts than this is not a state the driver makes. */
const MAX_STACKED_MOUNTS = 8;

export async function nodeUnpublishVolume(ctx: DriverContext, req: NodeUnpublishVolumeRequest): Promise<void> {
  if (!req.volume_id) throw invalidArgument("Volume ID missing in request");
  if (!req.target_path) throw invalidArgument("Target path missing in request");
  const target = await resolveTarget(req.target_path, ctx.options.kubeletDir);
  const lease = await ctx.locks.acquireForCall([targetKey(target.path), volumeKey(req.volume_id)], "NodeUnpublishVolume");
  try {
    await unpublish(ctx, target);
  } catch (err) {
    if (err instanceof DriverError) throw err;
    throw new DriverError(status.INTERNAL, ErrorType.FailedToMount, `failed to clean and unmount target path ${target.path}: ${(err as Error).message}`);
  } finally {
    lease.release();
  }
}

async function unpublish(ctx: DriverContext, target: ResolvedTarget): Promise<void> {
  const record = ctx.volumes.get(target.path);
  let recorded = record?.mount;
  let adoptionTried = false;
  for (let round = 0; ; round++) {
    let state: TargetState;
    try {
      state = await inspectTarget(target, ctx.options.drivername, recorded);
    } catch (err) {
      if (!(err instanceof TargetParentError)) throw err;
      // The driver never mounts below a missing or symlinked parent, so
      // nothing of its own can be there.
      ctx.volumes.delete(target.path);
      if (!err.missing) await reportLeftAlone(ctx, record, target, `a path whose parent is not a real directory (${err.message})`);
      return;
    }
    switch (state.kind) {
      case "absent":
        ctx.volumes.delete(target.path);
        return;
      case "not-a-directory":
        ctx.volumes.delete(target.path);
        await reportLeftAlone(ctx, record, target, `${state.what} the driver did not make`);
        return;
      case "foreign-content":
        // Files in a plain directory: never the driver's (it writes only into its tmpfs).
        ctx.volumes.delete(target.path);
        await reportLeftAlone(ctx, record, target, `${describeEntries(state.entries)} the driver did not write`);
        return;
      case "foreign-mount":
        if (!state.driverMountBelow && state.mount.fsType === "tmpfs" && !adoptionTried) {
          // Possibly a volume upstream's driver mounted before an upgrade.
          adoptionTried = true;
          const mount = { id: state.mount.id, dev: state.mount.dev, source: state.mount.source, birthtimeNs: state.birthtimeNs };
          if (await adoptFromPodStatus(ctx, target, mount)) {
            recorded = mount;
            break;
          }
        }
        if (state.driverMountBelow) {
          throw new DriverError(
            status.FAILED_PRECONDITION,
            ErrorType.FailedToMount,
            `failed to clean and unmount target path ${target.path}: ${describeMount(state.mount)} is mounted on top of the driver's tmpfs; unmount it first`,
          );
        }
        ctx.volumes.delete(target.path);
        await reportLeftAlone(ctx, record, target, describeMount(state.mount));
        return;
      case "empty-directory":
        ctx.volumes.delete(target.path);
        await removeTargetDirectory(ctx, record, target);
        return;
      case "driver-tmpfs": {
        const owner = ctx.volumes.byMount(state.mount);
        if (owner && owner.targetPath !== target.path) {
          // The same tmpfs seen through another path (a bind mount above the
          // target): it is the other pod's volume, not this one's.
          ctx.volumes.delete(target.path);
          await reportLeftAlone(ctx, record, target, `the volume of another target (${owner.targetPath})`);
          return;
        }
        if (round >= MAX_STACKED_MOUNTS) throw new Error(`target path ${target.path} is still mounted after ${round} unmounts`);
        await ctx.mounter.unmount(target.realPath);
        // Loop: look again, so stacked mounts and what lies beneath are handled too.
        break;
      }
    }
  }
}

async function removeTargetDirectory(ctx: DriverContext, record: MountedVolume | undefined, target: ResolvedTarget): Promise<void> {
  try {
    rmdirSync(target.path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return;
    // Someone wrote into the directory meanwhile: leave it.
    if (code === "ENOTEMPTY" || code === "EEXIST") return reportLeftAlone(ctx, record, target, "content written into the directory meanwhile");
    throw err;
  }
}

async function reportLeftAlone(ctx: DriverContext, record: MountedVolume | undefined, target: ResolvedTarget, what: string): Promise<void> {
  const message = `unpublished ${target.path} without touching ${what}; nothing of the driver's is left there`;
  ctx.logger.warn({ target: target.path, pod: record ? `${record.pod.namespace}/${record.pod.name}` : undefined }, message);
  if (record && !(ctx.kube instanceof Error)) {
    await ctx.kube.recordEvent(record.pod, "Warning", "UnpublishLeftForeignContent", message);
  }
}
