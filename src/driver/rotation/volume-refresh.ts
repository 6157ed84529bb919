// Refreshes mounted volumes: asks the provider again with the current object
// versions and swaps in new content where it changed. Volumes that share an
// identity and a request (refresh-groups.ts) are refreshed from one provider
// answer, so they switch to a new version together and Key Vault reads grow
// with distinct identities, not with pods. A failure keeps the old files byte
// for byte, records a Warning event and backs off.
import type { DriverContext } from "../context.ts";
import { requireKube } from "../context.ts";
import { errorTypeOf } from "../errors.ts";
import type { ObjectVersion } from "../../shared/kube/kube-types.ts";
import { OS_TYPE } from "../metrics.ts";
import type { MountedVolume } from "../volume/mounted-volumes.ts";
import { buildPodStatus } from "../kube/pod-status.ts";
import type { TargetHold } from "../volume/target-locks.ts";
import { VolumeMountChangedError, VolumeTarget } from "../volume/target.ts";
import { fetchContent, reportMissingObjects } from "../volume/volume-content.ts";

const FAILURE_BACKOFF_BASE_MS = 5_000;

/** When the volume is next due: the poll interval (plus its jitter), or sooner with backoff after failures. */
export function nextRefreshAt(volume: MountedVolume, intervalMs: number): number {
  if (volume.refreshRequested) return 0;
  if (volume.failures === 0) return volume.lastRefresh + intervalMs + (volume.jitterMs ?? 0);
  const backoff = Math.min(intervalMs, FAILURE_BACKOFF_BASE_MS * 2 ** (volume.failures - 1));
  return volume.lastRefresh + backoff;
}

export function sameVersions(a: readonly ObjectVersion[], b: readonly ObjectVersion[]): boolean {
  if (a.length !== b.length) return false;
  const byId = new Map(a.map((v) => [v.id, v.version]));
  return b.every((v) => byId.get(v.id) === v.version);
}

/** The member whose tokens kubelet sent most recently is asked on behalf of the group. */
function leaderOf(group: readonly MountedVolume[]): MountedVolume {
  return group.reduce((a, b) => ((b.contextUpdatedAt ?? 0) > (a.contextUpdatedAt ?? 0) ? b : a));
}

/**
 * Refreshes a group of volumes that share one request. Returns the volumes
 * whose refresh failed (their old content is kept). A volume whose target an
 * operation holds right now is skipped and due again at once; `held` is the
 * target of a publish that asked for this refresh (written under its hold).
 */
export async function refreshGroup(ctx: DriverContext, group: readonly MountedVolume[], deadline: Date, held?: TargetHold): Promise<MountedVolume[]> {
  if (group.length === 0) return [];
  const started = process.hrtime.bigint();
  const leader = leaderOf(group);
  const spcRef = `${leader.pod.namespace}/${leader.spcName}`;
  const now = Date.now();
  const previousRefresh = new Map(group.map((v) => [v, v.lastRefresh]));
  for (const v of group) {
    v.lastRefresh = now;
    v.refreshRequested = false;
  }
  let kube;
  let spc;
  let content;
  try {
    kube = requireKube(ctx);
    // Read again so edits to the SecretProviderClass take effect.
    spc = await kube.readSecretProviderClass(leader.pod.namespace, leader.spcName).current;
    content = await fetchContent(ctx, {
      targetPath: leader.targetPath,
      spc,
      volumeContext: leader.volumeContext,
      secrets: leader.secrets,
      currentObjectVersions: leader.objectVersions,
      deadline,
    });
  } catch (err) {
    await Promise.all(group.map((v) => recordFailure(ctx, v, err)));
    return [...group];
  }

  const failed: MountedVolume[] = [];
  await Promise.all(
    group.map(async (volume) => {
      let target: VolumeTarget | undefined;
      try {
        target = await VolumeTarget.forRefresh(ctx, volume, held);
        if (!target) {
          // Due again at once, asked for or not.
          volume.lastRefresh = previousRefresh.get(volume)!;
          volume.refreshRequested = true;
          return;
        }
        // Unpublished while the provider was asked: nothing to write, nothing to report.
        if (ctx.volumes.get(volume.targetPath) !== volume) return;
        const changed = await target.write(volume.mount, content.files, volume.mountGroup);
        const versionsChanged = !sameVersions(volume.objectVersions, content.objectVersions);
        if (versionsChanged) {
          const podStatus = buildPodStatus({
            pod: volume.pod,
            spcName: volume.spcName,
            nodeName: ctx.options.nodeId,
            targetPath: volume.targetPath,
            objectVersions: content.objectVersions,
          });
          // The first write still under way takes these versions instead of racing them.
          if (ctx.podStatuses?.isPending(volume)) ctx.podStatuses.write(volume, podStatus, true);
          else await kube.upsertPodStatus(podStatus, { expectExisting: true });
        }
        const before = volume.objectVersions;
        volume.provider = content.provider;
        volume.objectVersions = content.objectVersions;
        volume.failures = 0;
        const rotated = changed || versionsChanged;
        ctx.metrics.rotationReconcile.inc({ provider: ctx.metrics.providerLabel(content.provider), os_type: OS_TYPE, rotated: String(rotated) });
        if (rotated) {
          volume.lastChange = Date.now();
          ctx.logger.info({ target: volume.targetPath, spc: spcRef, pod: `${volume.pod.namespace}/${volume.pod.name}` }, "mounted content rotated");
          await kube.recordEvent(volume.pod, "Normal", "MountRotationComplete", `successfully rotated mounted contents for spc ${spcRef}`);
          // a recovered volume's versions come from its status object, which names its missing objects too
          await reportMissingObjects(ctx, volume.pod, `${volume.pod.namespace}/${volume.spcName}`, content, before);
        }
        // Secrets follow content changes, a failed earlier sync, and edits
        // to the SecretProviderClass (its secretObjects may have changed).
        const spcVersion = spc.metadata.resourceVersion;
        if ((rotated || volume.syncPending || spcVersion !== volume.syncedSpcVersion) && ctx.syncSecrets) {
          volume.syncPending = false;
          volume.syncedSpcVersion = spcVersion;
          await ctx.syncSecrets(volume, spc);
        }
      } catch (err) {
        failed.push(volume);
        if (err instanceof VolumeMountChangedError && err.gone && ctx.volumes.get(volume.targetPath) === volume) {
          // The tmpfs went away without an unpublish (an external umount):
          // there is nothing left to refresh, so the reconciler forgets it.
          ctx.volumes.delete(volume.targetPath);
        }
        await recordFailure(ctx, volume, err);
      } finally {
        target?.release();
      }
    }),
  );
  ctx.metrics.rotationReconcileDuration.observe({ os_type: OS_TYPE }, Number(process.hrtime.bigint() - started) / 1e9);
  return failed;
}

async function recordFailure(ctx: DriverContext, volume: MountedVolume, err: unknown): Promise<void> {
  volume.failures++;
  const spcRef = `${volume.pod.namespace}/${volume.spcName}`;
  const message = (err as Error).message;
  ctx.metrics.rotationReconcileError.inc({ provider: ctx.metrics.providerLabel(volume.provider), error_type: errorTypeOf(err), os_type: OS_TYPE, rotated: "false" });
  ctx.logger.warn({ target: volume.targetPath, spc: spcRef, failures: volume.failures, error: message }, "refresh failed; mounted content kept");
  if (!(ctx.kube instanceof Error)) {
    await ctx.kube.recordEvent(volume.pod, "Warning", "MountRotationFailed", `failed to rotate mounted contents for spc ${spcRef}: ${message}`);
  }
}
