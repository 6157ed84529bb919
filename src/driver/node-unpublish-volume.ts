// NodeUnpublishVolume: unmount the tmpfs and remove the target path. Always
// converges: an unknown or already removed target is success.
import { rm } from "node:fs/promises";
import { status } from "@grpc/grpc-js";
import type { DriverContext } from "./context.ts";
import { DriverError, ErrorType, invalidArgument } from "./errors.ts";

export interface NodeUnpublishVolumeRequest {
  volume_id: string;
  target_path: string;
}

export async function nodeUnpublishVolume(ctx: DriverContext, req: NodeUnpublishVolumeRequest): Promise<void> {
  if (!req.volume_id) throw invalidArgument("Volume ID missing in request");
  if (!req.target_path) throw invalidArgument("Target path missing in request");
  const target = req.target_path;
  if (!target.startsWith("/") || target === "/") throw invalidArgument(`Target path ${target} is not an absolute volume path`);

  ctx.volumes.delete(target);
  const state = await ctx.mounter.state(target).catch(() => "broken" as const);
  if (state === "absent") return;
  try {
    if (state === "mounted" || state === "broken") await ctx.mounter.unmount(target);
    // After unmounting, only what was written beneath the mount (normally
    // nothing) remains; it is removed with the directory.
    if ((await ctx.mounter.state(target)) === "mounted") throw new Error("target is still mounted");
    await rm(target, { recursive: true, force: true });
  } catch (err) {
    throw new DriverError(status.INTERNAL, ErrorType.FailedToMount, `failed to clean and unmount target path ${target}: ${(err as Error).message}`);
  }
}
