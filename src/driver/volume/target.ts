// A pod's target path, as the driver may touch it: the one interface through
// which publish, unpublish and rotation act on the node. Every step below
// keeps the node-safety rules (docs/reliability.md):
//
//   open       the path is checked as a string (clean, under <kubelet-dir>/pods)
//              and held by one operation at a time (another CSI call: ABORTED);
//   inspect    what is there now: the driver's own tmpfs (by source name or by
//              the identity it recorded), nothing, or something foreign;
//   mount      the directory (if the driver creates it) and a size-limited
//              tmpfs mounted through an open descriptor of that very directory;
//   write      files swapped in atomically through a descriptor of the tmpfs,
//              after checking it is still the driver's;
//   unmount / remove  only the driver's own tmpfs, and the directory only when
//              empty, never recursively;
//   release    lets the next operation on the target in.
import { mkdirSync, rmdirSync } from "node:fs";
import { status } from "@grpc/grpc-js";
import type { PodRef } from "../kube/kube-client.ts";
import type { DriverContext } from "../context.ts";
import { DriverError, ErrorType } from "../errors.ts";
import { formatQuantity } from "../options.ts";
import type { ProviderFile } from "../../shared/provider-api/provider-client.ts";
import { VolumeTooLargeError, writeVolumeFiles } from "./atomic-writer.ts";
import { mountById } from "./mounter.ts";
import type { MountedVolume } from "./mounted-volumes.ts";
import { targetKey, volumeKey, type TargetHold, type TargetLease } from "./target-locks.ts";
import {
  describeEntries,
  describeMount,
  identityOf,
  inspectTarget,
  openTargetDirectory,
  openVolumeRoot,
  resolveTarget,
  sameMount,
  type ResolvedTarget,
  type TargetState,
  type VolumeMount,
} from "./target-state.ts";
import { adoptFromPodStatus } from "./volume-recovery.ts";

export type { TargetState, VolumeMount };

/** Bounds the loops that unmount stacked driver mounts: more than this is not a state the driver makes. */
export const MAX_STACKED_MOUNTS = 8;

/** The target is no longer the tmpfs the driver mounted there: nothing was written. */
export class VolumeMountChangedError extends DriverError {
  /** The driver's mount is gone from the target altogether. */
  readonly gone: boolean;
  constructor(message: string, gone: boolean) {
    super(status.FAILED_PRECONDITION, ErrorType.FileWriteError, message);
    this.gone = gone;
  }
}

const failedPrecondition = (message: string) => new DriverError(status.FAILED_PRECONDITION, ErrorType.FailedToEnsureMountPoint, message);

export class VolumeTarget implements TargetHold {
  private readonly ctx: DriverContext;
  private readonly resolved: ResolvedTarget;
  private readonly lease: TargetLease | undefined;
  /** The directory this operation created (removed again if its first mount fails). */
  private createdDirectory = false;
  /** Whether this operation asked the status objects about a tmpfs already (once is enough). */
  private adoptionTried = false;

  private constructor(ctx: DriverContext, resolved: ResolvedTarget, lease: TargetLease | undefined) {
    this.ctx = ctx;
    this.resolved = resolved;
    this.lease = lease;
  }

  /**
   * Checks the path kubelet sent and takes it, with the volume id, for one CSI
   * call. Throws InvalidArgument for a bad path, ABORTED while another call
   * holds either; waits out a rotation write in progress.
   */
  static async open(ctx: DriverContext, targetPath: string, volumeId: string, operation: string): Promise<VolumeTarget> {
    const resolved = await resolveTarget(targetPath, ctx.options.kubeletDir);
    const lease = await ctx.locks.acquireForCall([targetKey(resolved.path), volumeKey(volumeId)], operation);
    return new VolumeTarget(ctx, resolved, lease);
  }

  /**
   * The target of a recorded volume, for a refresh: undefined when an
   * operation holds it right now (the reconciler comes back later). `held` is
   * the target of the publish that asked for this refresh: it is written under
   * that publish's hold.
   */
  static async forRefresh(ctx: DriverContext, volume: MountedVolume, held?: TargetHold): Promise<VolumeTarget | undefined> {
    let lease: TargetLease | undefined;
    if (!held?.holds(volume.targetPath)) {
      lease = ctx.locks.tryAcquireForRefresh([targetKey(volume.targetPath)]);
      if (!lease) return undefined;
    }
    try {
      return new VolumeTarget(ctx, await resolveTarget(volume.targetPath, ctx.options.kubeletDir), lease);
    } catch (err) {
      lease?.release();
      throw err;
    }
  }

  /** The path as kubelet sent it. */
  get path(): string {
    return this.resolved.path;
  }

  /** Whether this operation holds the target at path. */
  holds(path: string): boolean {
    return this.lease?.holds(targetKey(path)) === true;
  }

  release(): void {
    this.lease?.release();
  }

  /**
   * What is at the target now. A tmpfs is the driver's when it carries the
   * driver's source name or is the very mount recorded for this target; a
   * tmpfs of upstream's driver is taken as the driver's when this node's
   * status object for the target (and pod, when known) vouches for it (asked
   * once per operation).
   */
  async inspect(pod?: PodRef): Promise<TargetState> {
    let state = await this.look();
    if (state.kind === "foreign-mount" && state.mount.fsType === "tmpfs" && !state.driverMountBelow && !this.adoptionTried) {
      this.adoptionTried = true;
      const mount = { id: state.mount.id, dev: state.mount.dev, source: state.mount.source, birthtimeNs: state.birthtimeNs };
      if (await adoptFromPodStatus(this.ctx, this.resolved, mount, pod)) state = await this.look();
    }
    return state;
  }

  private async look(): Promise<TargetState> {
    return inspectTarget(this.resolved, this.ctx.options.drivername, this.ctx.volumes.get(this.path)?.mount);
  }

  /** The volume recorded for another target whose tmpfs this is (the same tmpfs seen through a bind mount). */
  otherTargetOf(mount: VolumeMount): string | undefined {
    const owner = this.ctx.volumes.byMount(mount);
    return owner && owner.targetPath !== this.path ? owner.targetPath : undefined;
  }

  /** For a first mount: refuses, with FailedPrecondition naming what is there, anything but nothing or an empty directory. */
  refuseUnlessEmpty(state: TargetState): void {
    switch (state.kind) {
      case "absent":
      case "empty-directory":
        return;
      case "driver-tmpfs":
        throw failedPrecondition(`target path ${this.path} already holds the driver's tmpfs`);
      case "foreign-mount":
        throw failedPrecondition(`target path ${this.path} holds ${describeMount(state.mount)}; refusing to mount over it`);
      case "not-a-directory":
        throw failedPrecondition(`target path ${this.path} is ${state.what}, not a directory; refusing to use it`);
      case "foreign-content":
        throw failedPrecondition(`target path ${this.path} is not empty: it holds ${describeEntries(state.entries)} the driver did not write; refusing to mount over it`);
    }
  }

  /**
   * Creates the target directory when `absent` says it is not there, and
   * mounts the driver's tmpfs on it through an open descriptor, so the mount
   * lands on exactly the directory that was checked. Returns the new mount's
   * identity (mount id, device, root birth time).
   */
  async mountTmpfs(absent: boolean): Promise<VolumeMount> {
    if (absent) {
      mkdirSync(this.path, { mode: 0o750 });
      this.createdDirectory = true;
    }
    try {
      const dir = openTargetDirectory(this.resolved);
      try {
        await this.ctx.mounter.mountTmpfs(dir, this.ctx.options.drivername, this.ctx.options.tmpfsSizeBytes);
      } finally {
        dir.close();
      }
      const root = openTargetDirectory(this.resolved);
      try {
        const seen = identityOf(root);
        const mount = await mountById(seen.id);
        if (mount?.fsType !== "tmpfs" || mount.source !== this.ctx.options.drivername || mount.mountPoint !== this.resolved.realPath) {
          throw new Error(`the new tmpfs is not the top mount at ${this.resolved.realPath}`);
        }
        return { ...seen, source: mount.source };
      } finally {
        root.close();
      }
    } catch (err) {
      this.removeCreatedDirectory();
      throw new DriverError(status.INTERNAL, ErrorType.FailedToMount, `failed to mount tmpfs at ${this.path}: ${(err as Error).message}`);
    }
  }

  /**
   * Swaps files onto the volume, after checking that the target still shows
   * the tmpfs `mount`; returns whether anything changed. A set larger than
   * half the tmpfs is refused before anything is written.
   */
  async write(mount: VolumeMount, files: readonly ProviderFile[]): Promise<boolean> {
    if (files.length === 0) return false;
    const root = await openVolumeRoot(this.resolved, mount);
    if ("problem" in root) throw new VolumeMountChangedError(root.problem, root.gone);
    const setting = `--tmpfs-size (now ${formatQuantity(this.ctx.options.tmpfsSizeBytes)})`;
    try {
      return await writeVolumeFiles(root.path, files, { capacityBytes: this.ctx.options.tmpfsSizeBytes, capacitySetting: setting });
    } catch (err) {
      const message = (err as Error).message.replaceAll(root.path, this.path);
      if (err instanceof VolumeTooLargeError) {
        throw new DriverError(status.FAILED_PRECONDITION, ErrorType.FileWriteError, `failed to write files to ${this.path}: ${message}`);
      }
      if ((err as NodeJS.ErrnoException).code === "ENOSPC") {
        throw new DriverError(status.RESOURCE_EXHAUSTED, ErrorType.FileWriteError, `failed to write files to ${this.path}: the volume's tmpfs is full; raise ${setting}`);
      }
      throw new DriverError(status.INTERNAL, ErrorType.FileWriteError, `failed to write files to ${this.path}: ${message}`);
    } finally {
      root.close();
    }
  }

  /** Unmounts the top mount at the target, which inspect() has just shown to be the driver's. */
  async unmount(): Promise<void> {
    await this.ctx.mounter.unmount(this.resolved.realPath);
  }

  /**
   * After a failed first mount: unmounts the tmpfs this operation mounted if
   * it is still the top mount there, and removes the directory if this
   * operation created it (only when empty). Never throws: the first error is
   * the one to report.
   */
  async undoFirstMount(mount: VolumeMount | undefined): Promise<void> {
    if (mount) {
      try {
        const state = await inspectTarget(this.resolved, this.ctx.options.drivername, mount);
        if (state.kind === "driver-tmpfs" && sameMount(state.mount, mount)) await this.unmount();
      } catch (err) {
        this.ctx.logger.error({ target: this.path, error: String(err) }, "failed to unmount after a failed mount");
      }
    }
    this.removeCreatedDirectory();
  }

  private removeCreatedDirectory(): void {
    if (!this.createdDirectory) return;
    this.createdDirectory = false;
    try {
      rmdirSync(this.path);
    } catch {
      // not empty or already gone: never removed recursively
    }
  }

  /**
   * Removes the target directory, which inspect() has just shown empty.
   * "not-empty" when something was written into it meanwhile (it stays).
   */
  removeDirectory(): "removed" | "gone" | "not-empty" {
    try {
      rmdirSync(this.path);
      return "removed";
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return "gone";
      if (code === "ENOTEMPTY" || code === "EEXIST") return "not-empty";
      throw err;
    }
  }
}
