// A pod's target path, as the driver may touch it: the one interface through
// which publish, unpublish and rotation act on the node. Every step below
// keeps the node-safety rules (docs/reliability.md):
//
//   open       the path is checked as a string (clean, under <kubelet-dir>/pods)
//              and held by one operation at a time (another CSI call: ABORTED);
//   inspect    what is there now: the driver's own tmpfs (the identity it
//              recorded, or one it proves its own after a restart:
//              volume-proof.ts), nothing, or something foreign;
//   mount      the directory (if the driver creates it, through a descriptor of
//              the checked parent) and a size-limited tmpfs mounted through an
//              open descriptor of that very directory;
//   write      files swapped in atomically through a descriptor of the tmpfs,
//              after checking it is still the driver's;
//   unmount / remove  only the driver's own tmpfs, through a descriptor of it,
//              and the directory only when empty (through a descriptor of the
//              checked parent), never recursively;
//   release    lets the next operation on the target in.
import { mkdirSync, rmdirSync } from "node:fs";
import { status } from "@grpc/grpc-js";
import type { DriverContext } from "../context.ts";
import type { PodRef } from "../kube/kube-client.ts";
import { DriverError, ErrorType } from "../errors.ts";
import { formatQuantity } from "../options.ts";
import type { ProviderFile } from "../../shared/provider-api/provider-client.ts";
import { DATA_DIR_NAME_MAX_BYTES, readVolumeFiles, volumeGroup, VolumeTooLargeError, writeVolumeFiles, type VolumeFile } from "./atomic-writer.ts";
import { mountById, mountsAt } from "./mounter.ts";
import type { NewMount } from "./mount-syscalls.ts";
import type { MountedVolume } from "./mounted-volumes.ts";
import { targetKey, volumeKey, type TargetHold, type TargetLease } from "./target-locks.ts";
import {
  describeEntries,
  describeMount,
  identityOf,
  inspectTarget,
  openMountedVolume,
  openTargetDirectory,
  openTargetParent,
  openVolumeRoot,
  resolveTarget,
  stillMountedAt,
  type OpenDirectory,
  type ResolvedTarget,
  type TargetState,
  type VolumeMount,
} from "./target-state.ts";
import { kubeletVolumeProblem } from "./kubelet-volume-data.ts";
import { adoptFromPodStatus, type FoundTmpfs } from "./volume-recovery.ts";
import { checkPodVolume, pathProblem, type VolumeClaim } from "./volume-proof.ts";
import { PATH_MAX_BYTES } from "../../shared/path-names.ts";
import { oneLine } from "../../shared/provider-api/provider-errors.ts";

export type { TargetState, VolumeClaim, VolumeMount };

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
  /** The volume id of the CSI call ("" for a refresh). */
  private readonly volumeId: string;
  /** The directory this operation created (removed again if its first mount fails). */
  private createdDirectory = false;
  /** The unrecorded mounts this operation tried to prove its own (once each is enough). */
  private readonly adoptionTried = new Set<string>();
  /** A tmpfs with the driver's source name that this operation proved its own without a status object. */
  private provenMount: VolumeMount | undefined;
  /** The root of the tmpfs this operation mounted, held open until it ends. */
  private newRoot: OpenDirectory | undefined;
  /** The tmpfs mounts this operation detached (unmount), as `${id}:${birthtime}`. */
  private readonly detached = new Set<string>();

  private constructor(ctx: DriverContext, resolved: ResolvedTarget, lease: TargetLease | undefined, volumeId = "") {
    this.ctx = ctx;
    this.resolved = resolved;
    this.lease = lease;
    this.volumeId = volumeId;
  }

  /**
   * Checks the path kubelet sent and takes it, with the volume id, for one CSI
   * call. Throws InvalidArgument for a bad path, ABORTED while another call
   * holds either; waits out a rotation write in progress.
   */
  static async open(ctx: DriverContext, targetPath: string, volumeId: string, operation: string): Promise<VolumeTarget> {
    const resolved = await resolveTarget(targetPath, ctx.options.kubeletDir);
    const lease = await ctx.locks.acquireForCall([targetKey(resolved.path), volumeKey(volumeId)], operation);
    return new VolumeTarget(ctx, resolved, lease, volumeId);
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
    this.closeNewRoot();
    this.lease?.release();
  }

  /**
   * What is at the target now. A tmpfs is the driver's when it is the very
   * mount recorded for this target. A tmpfs the driver has no record of is
   * taken for its own only when proven (volume-proof.ts): by this node's
   * status object for the target, or, for one with the driver's source name,
   * by `claim` (a publish: kubelet names the pod and class) or by kubelet's
   * own record of the volume (an unpublish). The proof is tried once per
   * mount and operation. A volume proven by its status object is recorded;
   * one proven by kubelet's word counts for this operation (a republish
   * records it).
   */
  async inspect(claim?: VolumeClaim): Promise<TargetState> {
    let state = await this.look();
    if (state.kind === "foreign-mount" && state.mount.fsType === "tmpfs" && state.onTarget && !state.driverMountBelow) {
      const key = `${state.mount.id}:${state.birthtimeNs}`;
      if (!this.adoptionTried.has(key)) {
        this.adoptionTried.add(key);
        const found: FoundTmpfs = {
          entry: state.mount,
          mount: { id: state.mount.id, dev: state.mount.dev, source: state.mount.source, birthtimeNs: state.birthtimeNs },
        };
        if (await this.prove(found, claim)) state = await this.look();
      }
    }
    return state;
  }

  private async prove(found: FoundTmpfs, claim: VolumeClaim | undefined): Promise<boolean> {
    if (await adoptFromPodStatus(this.ctx, this.resolved, found, claim?.pod)) return true;
    // Without a status object only the driver's own source name can be
    // proven, and only by kubelet's word on whose volume this path is.
    if (found.entry.source !== this.ctx.options.drivername) return false;
    let problem: string | undefined;
    let proof: string;
    if (claim) {
      proof = "the publishing pod's volume";
      problem = (await checkPodVolume(this.ctx, this.resolved, claim)).problem;
    } else if (this.ctx.options.secretProviderClassDir !== undefined) {
      proof = "the path (standalone mode)";
      problem = pathProblem(this.resolved);
    } else {
      proof = "kubelet's record of the volume";
      problem = pathProblem(this.resolved) ?? kubeletVolumeProblem(this.resolved, this.ctx.options.drivername, this.volumeId);
    }
    if (problem) {
      this.ctx.logger.warn(
        { target: this.path, source: found.entry.source, reason: oneLine(problem, 500) },
        "left alone a tmpfs with the driver's source name that the driver has no record of and cannot prove its own",
      );
      return false;
    }
    this.provenMount = found.mount;
    this.ctx.logger.info({ target: this.path, proof }, "recognised the driver's tmpfs at the target");
    return true;
  }

  private async look(): Promise<TargetState> {
    const state = await inspectTarget(this.resolved, this.ctx.options.drivername, this.ctx.volumes.get(this.path)?.mount ?? this.provenMount);
    if (state.kind === "foreign-mount" && state.onTarget && state.mount.fsType === "tmpfs") {
      // The tmpfs recorded for another target, seen here through a bind
      // mount: the driver's, but another pod's volume (see otherTargetOf).
      const owner = this.ctx.volumes.byMount({ ...state.mount, birthtimeNs: state.birthtimeNs });
      if (owner && owner.targetPath !== this.path) return { kind: "driver-tmpfs", mount: owner.mount, complete: true };
    }
    return state;
  }

  /** Whether the target path is the CSI volume path of `pod` (for a record made from a republish). */
  isVolumeOf(pod: PodRef): boolean {
    return pathProblem(this.resolved, pod) === undefined;
  }

  /**
   * Where the recorded tmpfs `mount` is still mounted although the target
   * path no longer leads to it (a path element moved or swapped), or
   * undefined when it is gone: an unpublish never answers OK before it is.
   */
  async stillMounted(mount: VolumeMount): Promise<string | undefined> {
    // A mount this operation detached itself is gone: umount2 succeeded on a
    // descriptor checked to show exactly it (id, device, root birth time),
    // and the kernel detached that very mount. Only another one is looked
    // for in the mount table (read whole: 0.7 ms with 250 volumes mounted).
    if (this.detached.has(`${mount.id}:${mount.birthtimeNs}`)) return undefined;
    return stillMountedAt(mount);
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
      const parent = openTargetParent(this.resolved);
      try {
        mkdirSync(parent.entry, { mode: 0o750 });
      } finally {
        parent.close();
      }
      this.createdDirectory = true;
    }
    try {
      const dir = openTargetDirectory(this.resolved);
      let made: NewMount | undefined;
      try {
        made = await this.ctx.mounter.mountTmpfs(dir, this.ctx.options.drivername, this.ctx.options.tmpfsSizeBytes);
      } finally {
        dir.close();
      }
      const root = openTargetDirectory(this.resolved);
      try {
        // The target must now open onto the new tmpfs. When the kernel said
        // which mount it made, the same id and device prove it (the mount
        // was the driver's tmpfs before it was attached); else the mount
        // table says what the mount with that id is and where.
        const seen = identityOf(root);
        const source = this.ctx.options.drivername;
        if (made) {
          if (made.id !== seen.id || made.dev !== seen.dev) throw new Error(`the new tmpfs is not the top mount at ${this.resolved.realPath}`);
        } else {
          const mount = await mountById(seen.id);
          if (mount?.fsType !== "tmpfs" || mount.source !== source || mount.mountPoint !== this.resolved.realPath) {
            throw new Error(`the new tmpfs is not the top mount at ${this.resolved.realPath}`);
          }
        }
        // Held until the operation ends: a failed first mount is undone
        // through it, exactly this tmpfs, wherever its path has gone.
        this.newRoot = root;
        return { ...seen, source };
      } finally {
        if (this.newRoot !== root) root.close();
      }
    } catch (err) {
      this.removeCreatedDirectory();
      throw new DriverError(status.INTERNAL, ErrorType.FailedToMount, `failed to mount tmpfs at ${this.path}: ${(err as Error).message}`);
    }
  }

  /**
   * Swaps files onto the volume, after checking that the target still shows
   * the tmpfs `mount`; returns whether anything changed. A set larger than
   * half the tmpfs is refused before anything is written. With `group` (the
   * pod's fsGroup) every file and directory is root:<group> (atomic-writer.ts).
   */
  async write(mount: VolumeMount, files: readonly ProviderFile[], group?: number): Promise<boolean> {
    if (files.length === 0) return false;
    this.checkPathLengths(files);
    const root = await openVolumeRoot(this.resolved, mount);
    if ("problem" in root) throw new VolumeMountChangedError(root.problem, root.gone);
    try {
      return await this.writeThrough(root.path, files, group);
    } finally {
      root.close();
    }
  }

  /**
   * Gives the files already on the volume the group `group` (none: the
   * driver's own) when the volume's root says they have another: the same
   * content swapped in again with the new owner, no provider call. For a
   * republish whose fsGroup differs from the one the volume was written with
   * (kubelet started delegating it after an upgrade of the driver). Returns
   * whether the owner changed.
   */
  async regroup(mount: VolumeMount, group: number | undefined): Promise<boolean> {
    const root = await openVolumeRoot(this.resolved, mount);
    if ("problem" in root) throw new VolumeMountChangedError(root.problem, root.gone);
    try {
      if (volumeGroup(root.path) === group) return false;
      const files = [...(await readVolumeFiles(root.path)).values()].map(({ path, mode, contents }) => ({ path, mode, contents }));
      await this.writeThrough(root.path, files, group);
      return true;
    } finally {
      root.close();
    }
  }

  private async writeThrough(rootPath: string, files: readonly ProviderFile[], group: number | undefined): Promise<boolean> {
    const setting = `--tmpfs-size (now ${formatQuantity(this.ctx.options.tmpfsSizeBytes)})`;
    try {
      return await writeVolumeFiles(rootPath, files, { capacityBytes: this.ctx.options.tmpfsSizeBytes, capacitySetting: setting, group });
    } catch (err) {
      const message = (err as Error).message.replaceAll(rootPath, this.path);
      if (err instanceof VolumeTooLargeError) {
        throw new DriverError(status.FAILED_PRECONDITION, ErrorType.FileWriteError, `failed to write files to ${this.path}: ${message}`);
      }
      if ((err as NodeJS.ErrnoException).code === "ENOSPC") {
        throw new DriverError(status.RESOURCE_EXHAUSTED, ErrorType.FileWriteError, `failed to write files to ${this.path}: the volume's tmpfs is full; raise ${setting}`);
      }
      throw new DriverError(status.INTERNAL, ErrorType.FileWriteError, `failed to write files to ${this.path}: ${message}`);
    }
  }

  /**
   * A provider file's path as a process on the node names it (the target,
   * the data directory, the file) must fit the kernel's path limit, or the
   * write fails half way with ENAMETOOLONG. Refused before anything is written.
   */
  private checkPathLengths(files: readonly ProviderFile[]): void {
    const prefix = Math.max(Buffer.byteLength(this.path), Buffer.byteLength(this.resolved.realPath)) + 1 + DATA_DIR_NAME_MAX_BYTES + 1;
    const limit = PATH_MAX_BYTES - 1;
    const longest = files.reduce((a, f) => (Buffer.byteLength(f.path) > Buffer.byteLength(a.path) ? f : a));
    const bytes = Buffer.byteLength(longest.path);
    if (prefix + bytes > limit) {
      throw new DriverError(
        status.FAILED_PRECONDITION,
        ErrorType.FileWriteError,
        `provider file path ${JSON.stringify(oneLine(longest.path, 96))} is ${bytes} bytes: below the target ${this.path} it would take ${prefix + bytes} bytes, ` +
          `more than the ${limit}-byte path limit of the node's kernel (PATH_MAX); at most ${Math.max(0, limit - prefix)} bytes fit; nothing was written`,
      );
    }
  }

  /**
   * Reads the files the driver wrote on the volume (the atomic-writer layout
   * under ..data), through a descriptor of the tmpfs after checking it is
   * still exactly the recorded mount. Nothing else at the target is read.
   */
  static async readFiles(ctx: DriverContext, volume: MountedVolume): Promise<Map<string, VolumeFile>> {
    const resolved = await resolveTarget(volume.targetPath, ctx.options.kubeletDir);
    const root = await openVolumeRoot(resolved, volume.mount);
    if ("problem" in root) throw new VolumeMountChangedError(root.problem.replace("nothing was written", "nothing was read"), root.gone);
    try {
      return await readVolumeFiles(root.path);
    } finally {
      root.close();
    }
  }

  /**
   * Unmounts the tmpfs `mount`, which inspect() has just shown at the target,
   * through a descriptor checked to show exactly it.
   */
  async unmount(mount: VolumeMount): Promise<void> {
    const dir = openMountedVolume(this.resolved, mount);
    try {
      await this.ctx.mounter.unmount(dir);
      this.detached.add(`${mount.id}:${mount.birthtimeNs}`);
    } finally {
      dir.close();
    }
  }

  /**
   * After a failed first mount: unmounts the tmpfs this operation mounted,
   * through the descriptor held on it, if it is still the top mount where it
   * is, and removes the directory if this operation created it (only when
   * empty, and only in the checked parent). Never throws: the first error is
   * the one to report.
   */
  async undoFirstMount(mount: VolumeMount | undefined): Promise<void> {
    const root = this.newRoot;
    if (mount && root) {
      try {
        const seen = identityOf(root);
        const at = await mountById(mount.id);
        const top = at && (await mountsAt(at.mountPoint)).at(-1);
        if (seen.id === mount.id && seen.birthtimeNs === mount.birthtimeNs && top?.id === mount.id) await this.ctx.mounter.unmount(root);
        else this.ctx.logger.warn({ target: this.path }, "left the tmpfs of a failed mount alone: something is mounted over it");
      } catch (err) {
        this.ctx.logger.error({ target: this.path, error: String(err) }, "failed to unmount after a failed mount");
      }
    }
    this.closeNewRoot();
    this.removeCreatedDirectory();
  }

  private closeNewRoot(): void {
    this.newRoot?.close();
    this.newRoot = undefined;
  }

  private removeCreatedDirectory(): void {
    if (!this.createdDirectory) return;
    this.createdDirectory = false;
    try {
      this.rmdirTarget();
    } catch {
      // not empty, moved or already gone: never removed recursively
    }
  }

  /**
   * Removes the target directory, which inspect() has just shown empty.
   * "not-empty" when something was written into it meanwhile (it stays).
   * Throws TargetMovedError when a path element was swapped since.
   */
  removeDirectory(): "removed" | "gone" | "not-empty" {
    try {
      this.rmdirTarget();
      return "removed";
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return "gone";
      if (code === "ENOTEMPTY" || code === "EEXIST") return "not-empty";
      throw err;
    }
  }

  /** rmdir of the target inside its checked parent, held open: never a directory elsewhere. */
  private rmdirTarget(): void {
    const parent = openTargetParent(this.resolved);
    try {
      rmdirSync(parent.entry);
    } finally {
      parent.close();
    }
  }
}
