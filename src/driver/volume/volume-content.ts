// Fetches a volume's objects from its provider and swaps them onto the tmpfs.
// Shared by the first mount, republishes and the rotation reconciler, so all
// three validate and write content the same way. Fetching and writing are
// separate so one provider answer can be written to every volume that shares it.
import { status } from "@grpc/grpc-js";
import { VolumeTooLargeError, writeVolumeFiles } from "./atomic-writer.ts";
import type { DriverContext } from "../context.ts";
import { DriverError, ErrorType } from "../errors.ts";
import type { ObjectVersion, SecretProviderClass } from "../../shared/kube/kube-types.ts";
import { providerOf, type MountResult } from "../../shared/provider-api/provider-client.ts";
import { formatQuantity } from "../options.ts";
import { buildAttributes, buildSecrets, DEFAULT_PERMISSION } from "../../shared/provider-api/volume-attributes.ts";
import { openVolumeRoot, type ResolvedTarget, type VolumeMount } from "./target-state.ts";

export interface ContentRequest {
  targetPath: string;
  spc: SecretProviderClass;
  volumeContext: Record<string, string>;
  secrets: Record<string, string>;
  currentObjectVersions: ObjectVersion[];
  deadline: Date;
}

export interface FetchedContent extends MountResult {
  provider: string;
}

export interface ContentResult {
  provider: string;
  objectVersions: ObjectVersion[];
  /** Whether the files on the tmpfs changed. */
  changed: boolean;
}

/** Asks the provider for the volume's objects; the answer is validated, nothing is written. */
export async function fetchContent(ctx: DriverContext, req: ContentRequest): Promise<FetchedContent> {
  const provider = providerOf(req.spc);
  const client = await ctx.providers.get(provider);
  const result = await client.mount(
    {
      attributes: buildAttributes(req.spc.spec.parameters ?? {}, req.volumeContext, req.secrets),
      secrets: buildSecrets(req.secrets),
      target_path: req.targetPath,
      permission: DEFAULT_PERMISSION,
      current_object_version: req.currentObjectVersions,
    },
    req.deadline,
  );
  return { ...result, provider };
}

/** The target is no longer the tmpfs the driver mounted there: nothing was written. */
export class VolumeMountChangedError extends DriverError {
  /** The driver's mount is gone from the target altogether. */
  readonly gone: boolean;
  constructor(message: string, gone: boolean) {
    super(status.FAILED_PRECONDITION, ErrorType.FileWriteError, message);
    this.gone = gone;
  }
}

/**
 * Swaps fetched files onto a volume, after checking that the target is still
 * the driver's tmpfs; returns whether anything changed.
 */
export async function writeContentGuarded(ctx: DriverContext, target: ResolvedTarget, mount: VolumeMount, content: MountResult): Promise<boolean> {
  if (content.files.length === 0) return false;
  const root = await openVolumeRoot(target, mount);
  if ("problem" in root) throw new VolumeMountChangedError(root.problem, root.gone);
  const setting = `--tmpfs-size (now ${formatQuantity(ctx.options.tmpfsSizeBytes)})`;
  try {
    return await writeVolumeFiles(root.path, content.files, { capacityBytes: ctx.options.tmpfsSizeBytes, capacitySetting: setting });
  } catch (err) {
    const message = (err as Error).message.replaceAll(root.path, target.path);
    if (err instanceof VolumeTooLargeError) {
      throw new DriverError(status.FAILED_PRECONDITION, ErrorType.FileWriteError, `failed to write files to ${target.path}: ${message}`);
    }
    if ((err as NodeJS.ErrnoException).code === "ENOSPC") {
      throw new DriverError(status.RESOURCE_EXHAUSTED, ErrorType.FileWriteError, `failed to write files to ${target.path}: the volume's tmpfs is full; raise ${setting}`);
    }
    throw new DriverError(status.INTERNAL, ErrorType.FileWriteError, `failed to write files to ${target.path}: ${message}`);
  } finally {
    root.close();
  }
}
