// Refreshes a mounted volume: asks the provider again with the current object
// versions and swaps in new content if it changed. A failure keeps the old
// files byte for byte, records a Warning event and backs off.
import type { DriverContext } from "./context.ts";
import { requireKube } from "./context.ts";
import { errorTypeOf } from "./errors.ts";
import type { ObjectVersion } from "./kube-types.ts";
import { OS_TYPE } from "./metrics.ts";
import type { MountedVolume } from "./mounted-volumes.ts";
import { buildPodStatus } from "./pod-status.ts";
import { fetchAndWriteContent } from "./volume-content.ts";

const FAILURE_BACKOFF_BASE_MS = 5_000;

/** When the volume is next due: the poll interval, or sooner with backoff after failures. */
export function nextRefreshAt(volume: MountedVolume, intervalMs: number): number {
  if (volume.refreshRequested) return 0;
  if (volume.failures === 0) return volume.lastRefresh + intervalMs;
  const backoff = Math.min(intervalMs, FAILURE_BACKOFF_BASE_MS * 2 ** (volume.failures - 1));
  return volume.lastRefresh + backoff;
}

export function sameVersions(a: readonly ObjectVersion[], b: readonly ObjectVersion[]): boolean {
  if (a.length !== b.length) return false;
  const byId = new Map(a.map((v) => [v.id, v.version]));
  return b.every((v) => byId.get(v.id) === v.version);
}

export interface RefreshOptions {
  deadline: Date;
  /** Skip (and report success) when the volume is not due yet. */
  onlyIfDue: boolean;
}

/** Returns false when the refresh failed (old content kept). */
export async function refreshMountedVolume(ctx: DriverContext, volume: MountedVolume, options: RefreshOptions): Promise<boolean> {
  const now = Date.now();
  if (options.onlyIfDue && now < nextRefreshAt(volume, ctx.options.rotationPollIntervalMs)) return true;
  const started = process.hrtime.bigint();
  const spcRef = `${volume.pod.namespace}/${volume.spcName}`;
  volume.lastRefresh = now;
  volume.refreshRequested = false;
  try {
    const kube = requireKube(ctx);
    const spc = await kube.getSecretProviderClass(volume.pod.namespace, volume.spcName);
    const content = await fetchAndWriteContent(ctx, {
      targetPath: volume.targetPath,
      spc,
      volumeContext: volume.volumeContext,
      secrets: volume.secrets,
      currentObjectVersions: volume.objectVersions,
      deadline: options.deadline,
    });
    volume.provider = content.provider;
    const versionsChanged = !sameVersions(volume.objectVersions, content.objectVersions);
    if (versionsChanged) {
      await kube.upsertPodStatus(
        buildPodStatus({
          pod: volume.pod,
          spcName: volume.spcName,
          nodeName: ctx.options.nodeId,
          targetPath: volume.targetPath,
          objectVersions: content.objectVersions,
        }),
      );
    }
    volume.objectVersions = content.objectVersions;
    volume.failures = 0;
    const rotated = content.changed || versionsChanged;
    if (content.changed) volume.lastChange = Date.now();
    ctx.metrics.rotationReconcile.inc({ provider: content.provider, os_type: OS_TYPE, rotated: String(rotated) });
    ctx.metrics.rotationReconcileDuration.observe({ os_type: OS_TYPE }, Number(process.hrtime.bigint() - started) / 1e9);
    if (rotated) {
      ctx.logger.info({ target: volume.targetPath, spc: spcRef, pod: `${volume.pod.namespace}/${volume.pod.name}` }, "mounted content rotated");
      await kube.recordEvent(volume.pod, "Normal", "MountRotationComplete", `successfully rotated mounted contents for spc ${spcRef}`);
    }
    return true;
  } catch (err) {
    volume.failures++;
    const message = (err as Error).message;
    ctx.metrics.rotationReconcileError.inc({ provider: volume.provider, error_type: errorTypeOf(err), os_type: OS_TYPE, rotated: "false" });
    ctx.logger.warn({ target: volume.targetPath, spc: spcRef, failures: volume.failures, error: message }, "refresh failed; mounted content kept");
    if (!(ctx.kube instanceof Error)) {
      await ctx.kube.recordEvent(volume.pod, "Warning", "MountRotationFailed", `failed to rotate mounted contents for spc ${spcRef}: ${message}`);
    }
    return false;
  }
}
