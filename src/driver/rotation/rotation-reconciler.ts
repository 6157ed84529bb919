// The rotation reconciler: refreshes every volume mounted on this node each
// --rotation-poll-interval (with jitter), one provider call per refresh group,
// a bounded number of groups at a time. Runs inside the driver process.
import type { DriverContext } from "../context.ts";
import type { MountedVolume } from "../volume/mounted-volumes.ts";
import type { TargetHold } from "../volume/target-locks.ts";
import { groupVolumes, refreshGroupKey } from "./refresh-groups.ts";
import { nextRefreshAt, refreshGroup } from "./volume-refresh.ts";

const MAX_CONCURRENT_GROUPS = 8;
/** A refresh may take as long as the interval, within kubelet's own bounds (10 s to 2 min). */
const refreshDeadlineMs = (intervalMs: number) => Math.min(120_000, Math.max(10_000, intervalMs));
/** Jitter spreads refreshes over up to this share of the interval. */
const JITTER_SHARE = 0.1;

export class RotationReconciler {
  private readonly ctx: DriverContext;
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Map<string, Promise<MountedVolume[]>>();
  private ticking = false;
  readonly tickMs: number;

  constructor(ctx: DriverContext) {
    this.ctx = ctx;
    this.tickMs = Math.min(10_000, Math.max(500, Math.floor(ctx.options.rotationPollIntervalMs / 4)));
  }

  /** A per-volume random offset so refreshes spread out instead of arriving in lockstep. */
  jitterFor(): number {
    return Math.floor(Math.random() * this.ctx.options.rotationPollIntervalMs * JITTER_SHARE);
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Refreshes every group that has a due member. */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const now = Date.now();
      const interval = this.ctx.options.rotationPollIntervalMs;
      const due = [...groupVolumes(this.ctx.volumes.all()).entries()].filter(([key, members]) => !this.inFlight.has(key) && members.some((v) => now >= nextRefreshAt(v, interval)));
      for (let i = 0; i < due.length; i += MAX_CONCURRENT_GROUPS) {
        await Promise.all(due.slice(i, i + MAX_CONCURRENT_GROUPS).map(([key, members]) => this.run(key, members)));
      }
    } catch (err) {
      this.ctx.logger.error({ error: String(err) }, "rotation tick failed");
    } finally {
      this.ticking = false;
    }
  }

  /** Refreshes the volume's whole group now; joins a refresh already under way. */
  async refreshNow(volume: MountedVolume, deadline?: Date, held?: TargetHold): Promise<boolean> {
    const key = refreshGroupKey(volume);
    const members = this.ctx.volumes.all().filter((v) => refreshGroupKey(v) === key);
    const failed = await this.run(key, members.length > 0 ? members : [volume], deadline, held);
    return !failed.includes(volume);
  }

  private run(key: string, members: MountedVolume[], deadline?: Date, held?: TargetHold): Promise<MountedVolume[]> {
    const existing = this.inFlight.get(key);
    if (existing) return existing;
    const promise = refreshGroup(this.ctx, members, deadline ?? new Date(Date.now() + refreshDeadlineMs(this.ctx.options.rotationPollIntervalMs)), held).finally(() =>
      this.inFlight.delete(key),
    );
    this.inFlight.set(key, promise);
    return promise;
  }
}
