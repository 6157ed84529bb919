// A volume's first SecretProviderClassPodStatus, written once NodePublishVolume
// has answered. The status object is the cluster's record of the volume
// (kubectl, the controller's refresh requests, recovery after a restart), but
// the publish itself needs nothing from it: rotation and unpublish work from
// the driver's own record (MountedVolumes). Written before answering, it made
// every pod wait for an etcd write (4.4–5.8 ms of a 20–26 ms publish).
//
// A driver that stops before the write lands leaves a tmpfs without a status
// object, which a restart already handles: kubelet's next republish proves the
// tmpfs the pod's (volume/volume-proof.ts) and the first refresh of the
// volume writes its status. A stopping driver waits for its writes a moment.
//
// One write at a time per volume, always of the latest status wanted (a
// refresh that changed the versions hands its status over instead of racing
// the first write), retried with backoff for as long as the volume is the
// driver's. A class whose Secrets are synced does not come here: a bare pod's
// Secrets are owned by its status object, so that publish writes it first.
import type { Logger } from "../../shared/logger.ts";
import type { SecretProviderClassPodStatus } from "../../shared/kube/kube-types.ts";
import type { MountedVolume, MountedVolumes } from "../volume/mounted-volumes.ts";
import type { KubeClient } from "./kube-client.ts";

/** The first retry's wait; it doubles up to MAX_BACKOFF_MS. */
export const FIRST_BACKOFF_MS = 200;
export const MAX_BACKOFF_MS = 30_000;
/** How long after the answer the first write starts. */
export const AFTER_ANSWER_MS = 5;

interface Pending {
  /** The status to write next (the latest wanted). */
  desired: SecretProviderClassPodStatus;
  /** The status object may exist already: read before writing. */
  exists: boolean;
  /** The loop writing it. */
  done: Promise<void>;
}

export class PodStatusWrites {
  private readonly kube: Pick<KubeClient, "upsertPodStatus">;
  private readonly volumes: MountedVolumes;
  private readonly logger: Logger;
  private readonly pending = new Map<MountedVolume, Pending>();
  private readonly waits = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  private readonly firstBackoffMs: number;
  private draining = false;
  private stopped = false;

  constructor(kube: Pick<KubeClient, "upsertPodStatus">, volumes: MountedVolumes, logger: Logger, options: { firstBackoffMs?: number } = {}) {
    this.kube = kube;
    this.volumes = volumes;
    this.logger = logger;
    this.firstBackoffMs = options.firstBackoffMs ?? FIRST_BACKOFF_MS;
  }

  /** Whether a write for the volume has not landed yet. */
  isPending(volume: MountedVolume): boolean {
    return this.pending.has(volume);
  }

  /**
   * Writes `status` for the volume in the background; a write still pending
   * for it takes this status instead. `exists`: the object may be there
   * already (a refresh), so it is read and replaced rather than created.
   */
  write(volume: MountedVolume, status: SecretProviderClassPodStatus, exists = false): void {
    const found = this.pending.get(volume);
    if (found) {
      found.desired = status;
      found.exists ||= exists;
      return;
    }
    const entry: Pending = { desired: status, exists, done: Promise.resolve() };
    this.pending.set(volume, entry);
    // Started a moment after the answer: grpc-js sends a reply's status only
    // once its message is written, turns of the event loop later, and a
    // request built before that delays the reply by its CPU (traced: 5.8-6.7
    // ms from the handler's end to the client on the next turn, 4.2-4.3 ms
    // after this delay, 3.1-3.9 ms with no write at all).
    entry.done = new Promise<void>((resolve) => setTimeout(resolve, AFTER_ANSWER_MS)).then(() => this.run(volume, entry));
  }

  /**
   * A stopping driver: every pending write is tried once more at once (none
   * after that), and this waits for them, at most `ms`.
   */
  async drain(ms: number): Promise<void> {
    this.draining = true;
    for (const wait of this.waits) {
      clearTimeout(wait.timer);
      wait.resolve();
    }
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms).unref()));
    await Promise.race([Promise.all([...this.pending.values()].map((p) => p.done)), limit]);
    clearTimeout(timer);
    this.stopped = true;
  }

  private async run(volume: MountedVolume, entry: Pending): Promise<void> {
    // The entry is forgotten in the very turn the loop decides it is done (a
    // finally of this function, not of a promise chain after it): a status
    // wanted a turn later starts a write of its own instead of joining a loop
    // that has ended.
    try {
      for (let attempt = 0; ; attempt++) {
        // Unpublished meanwhile: its pod is going away, and with it (owner
        // reference) any status object written for it.
        if (this.stopped || this.volumes.get(volume.targetPath) !== volume) return;
        const desired = entry.desired;
        try {
          await this.kube.upsertPodStatus(desired, { expectExisting: entry.exists });
          entry.exists = true;
          if (entry.desired === desired) return;
          attempt = -1;
          continue;
        } catch (err) {
          entry.exists = true;
          const waitMs = Math.min(MAX_BACKOFF_MS, this.firstBackoffMs * 2 ** attempt);
          const { namespace, name } = desired.metadata;
          const fields = { target: volume.targetPath, podStatus: `${namespace}/${name}`, attempt: attempt + 1, error: (err as Error).message };
          if (this.draining) {
            // Kubelet's next republish after the restart proves the volume and a refresh writes it.
            this.logger.warn(fields, "could not write the volume's status object before stopping; the volume stays mounted");
            return;
          }
          this.logger.warn({ ...fields, retryInMs: waitMs }, "could not write the volume's status object; the volume is mounted, retrying");
          await this.sleep(waitMs);
        }
      }
    } finally {
      this.pending.delete(volume);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wait = {
        timer: setTimeout(() => {
          this.waits.delete(wait);
          resolve();
        }, ms).unref(),
        resolve,
      };
      this.waits.add(wait);
    });
  }
}
