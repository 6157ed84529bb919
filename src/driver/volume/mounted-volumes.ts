// The driver's in-memory record of the volumes mounted on this node: what the
// rotation reconciler refreshes and what a republish updates. Secrets and
// tokens live only here and on the tmpfs, never on disk elsewhere.
import type { PodRef } from "../kube/kube-client.ts";
import type { ObjectVersion } from "../../shared/kube/kube-types.ts";
import type { VolumeMount } from "./target-state.ts";

export interface MountedVolume {
  targetPath: string;
  volumeId: string;
  /** The tmpfs the driver mounted at targetPath; every write checks it is still there. */
  mount: VolumeMount;
  pod: PodRef;
  spcName: string;
  provider: string;
  /** The latest volume_context kubelet sent (fresh service-account tokens on each republish). */
  volumeContext: Record<string, string>;
  /** The latest nodePublishSecretRef data kubelet sent. */
  secrets: Record<string, string>;
  objectVersions: ObjectVersion[];
  /**
   * The group the files belong to: the pod's fsGroup, which kubelet sends
   * (volume_mount_group) on every publish and republish; undefined for none.
   * Every refresh writes with it. After a driver restart it is read back from
   * the volume's root until kubelet's next republish.
   */
  mountGroup?: number;
  /** When the provider was last asked (ms since epoch). */
  lastRefresh: number;
  /** When the mounted content last changed. */
  lastChange: number;
  /** Consecutive refresh failures, for backoff. */
  failures: number;
  /** Set when a user asked for an immediate refresh. */
  refreshRequested?: boolean;
  /** When kubelet last sent the volume context (tokens), ms since epoch. */
  contextUpdatedAt?: number;
  /** A random offset added to the poll interval so volumes do not refresh in lockstep. */
  jitterMs?: number;
  /** The SecretProviderClass resourceVersion the Secrets were last synced from. */
  syncedSpcVersion?: string;
  /** Secrets still need syncing (first mount failed to sync, or recovered after a restart). */
  syncPending?: boolean;
  /** Rebuilt from the status object after a driver restart; the volume context is partial until kubelet republishes. */
  recovered?: boolean;
}

type RequiredFields = "targetPath" | "volumeId" | "mount" | "pod" | "spcName" | "provider" | "volumeContext" | "secrets" | "objectVersions";

/** The record of a volume the driver takes on now: counted as refreshed and changed now, no failures yet. */
export function newVolumeRecord(fields: Pick<MountedVolume, RequiredFields> & Partial<MountedVolume>): MountedVolume {
  const now = Date.now();
  return { lastRefresh: now, lastChange: now, failures: 0, ...fields };
}

export class MountedVolumes {
  private readonly byTarget = new Map<string, MountedVolume>();

  get(targetPath: string): MountedVolume | undefined {
    return this.byTarget.get(targetPath);
  }

  set(volume: MountedVolume): void {
    this.byTarget.set(volume.targetPath, volume);
  }

  delete(targetPath: string): boolean {
    return this.byTarget.delete(targetPath);
  }

  /** The volume whose tmpfs this is (seen through any path), if any. */
  byMount(mount: VolumeMount): MountedVolume | undefined {
    for (const v of this.byTarget.values()) if (v.mount.dev === mount.dev && v.mount.birthtimeNs === mount.birthtimeNs) return v;
    return undefined;
  }

  all(): MountedVolume[] {
    return [...this.byTarget.values()];
  }

  get size(): number {
    return this.byTarget.size;
  }
}
