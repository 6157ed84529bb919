// Rotation by group. SecretSyncs that share a namespace, a
// SecretProviderClass and a service account share one provider answer, so
// they rotate together: each group has one timer, and at each tick all its
// SecretSyncs are queued asking for an answer fetched after the tick, which
// the first of them fetches and the others reuse. Ticks come every interval
// plus up to a tenth of it (never more often than the interval); a new
// group's first tick falls anywhere from half to one interval, so groups
// created together (a restart, a bulk apply) spread their provider calls.
// The index also answers which SecretSyncs use a class, for the class watch.
export interface SyncGroupKey {
  namespace: string;
  className: string;
  serviceAccount: string;
}

export interface RotationOptions {
  /** 0 turns rotation off (changes are still synced as they happen). */
  intervalMs: number;
  /** Extra delay of each tick, as a fraction of the interval. */
  jitter: number;
  onTick(members: readonly string[], at: number): void;
  random?: () => number;
}

interface Group {
  members: Set<string>;
  timer?: NodeJS.Timeout;
}

const groupKeyOf = (g: SyncGroupKey) => `${g.namespace}\0${g.className}\0${g.serviceAccount}`;
const classKeyOf = (namespace: string, className: string) => `${namespace}\0${className}`;

export class RotationSchedule {
  private readonly options: RotationOptions;
  private readonly random: () => number;
  private readonly groups = new Map<string, Group>();
  private readonly membership = new Map<string, { group: string; classKey: string }>();
  private readonly byClassIndex = new Map<string, Set<string>>();
  private stopped = false;

  constructor(options: RotationOptions) {
    this.options = options;
    this.random = options.random ?? Math.random;
  }

  get groupCount(): number {
    return this.groups.size;
  }

  /** Puts a SecretSync in its group (moving it if its class or service account changed). */
  track(ssKey: string, group: SyncGroupKey): void {
    const key = groupKeyOf(group);
    const classKey = classKeyOf(group.namespace, group.className);
    const current = this.membership.get(ssKey);
    if (current?.group === key) return;
    if (current) this.untrack(ssKey);
    this.membership.set(ssKey, { group: key, classKey });
    let set = this.byClassIndex.get(classKey);
    if (!set) this.byClassIndex.set(classKey, (set = new Set()));
    set.add(ssKey);
    let g = this.groups.get(key);
    if (!g) {
      g = { members: new Set() };
      this.groups.set(key, g);
      this.schedule(key, g, this.options.intervalMs * (0.5 + this.random() * (0.5 + this.options.jitter)));
    }
    g.members.add(ssKey);
  }

  untrack(ssKey: string): void {
    const current = this.membership.get(ssKey);
    if (!current) return;
    this.membership.delete(ssKey);
    const set = this.byClassIndex.get(current.classKey);
    set?.delete(ssKey);
    if (set?.size === 0) this.byClassIndex.delete(current.classKey);
    const g = this.groups.get(current.group);
    if (!g) return;
    g.members.delete(ssKey);
    if (g.members.size === 0) {
      if (g.timer) clearTimeout(g.timer);
      this.groups.delete(current.group);
    }
  }

  /** The SecretSyncs that name this class, whatever their service account. */
  byClass(namespace: string, className: string): string[] {
    return [...(this.byClassIndex.get(classKeyOf(namespace, className)) ?? [])];
  }

  stop(): void {
    this.stopped = true;
    for (const g of this.groups.values()) if (g.timer) clearTimeout(g.timer);
  }

  private schedule(key: string, group: Group, delayMs: number): void {
    if (this.stopped || this.options.intervalMs <= 0) return;
    group.timer = setTimeout(() => {
      if (this.groups.get(key) !== group || this.stopped) return;
      const at = Date.now();
      this.schedule(key, group, this.options.intervalMs * (1 + this.random() * this.options.jitter));
      this.options.onTick([...group.members], at);
    }, delayMs);
    group.timer.unref();
  }
}
