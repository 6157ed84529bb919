// A small LRU map with idle eviction, for the per-identity credential and
// client caches: at most `maxEntries`, and entries unused for `idleMs` go.

export interface LruOptions<V> {
  maxEntries: number;
  idleMs: number;
  onEvict?: (value: V) => void;
  now?: () => number;
}

export class LruCache<K, V> {
  private readonly entries = new Map<K, { value: V; used: number }>();
  private readonly options: LruOptions<V>;
  private readonly now: () => number;

  constructor(options: LruOptions<V>) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: K): V | undefined {
    this.sweep();
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    // re-insert to mark as most recently used
    this.entries.delete(key);
    entry.used = this.now();
    this.entries.set(key, entry);
    return entry.value;
  }

  /** The value without marking it used (for reporting, not for use). */
  peek(key: K): V | undefined {
    return this.entries.get(key)?.value;
  }

  set(key: K, value: V): void {
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      if (old.value !== value) this.options.onEvict?.(old.value);
    }
    this.entries.set(key, { value, used: this.now() });
    while (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next().value as K;
      const evicted = this.entries.get(oldest)!;
      this.entries.delete(oldest);
      this.options.onEvict?.(evicted.value);
    }
  }

  /** The keys, least recently used first. */
  keys(): IterableIterator<K> {
    return this.entries.keys();
  }

  /** Forgets one entry (its value goes to onEvict). */
  delete(key: K): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.options.onEvict?.(entry.value);
  }

  getOrCreate(key: K, create: () => V): V {
    const found = this.get(key);
    if (found !== undefined) return found;
    const value = create();
    this.set(key, value);
    return value;
  }

  /** Drops entries idle for longer than idleMs (oldest first, so it stops early). */
  sweep(): void {
    const limit = this.now() - this.options.idleMs;
    for (const [key, entry] of this.entries) {
      if (entry.used > limit) break;
      this.entries.delete(key);
      this.options.onEvict?.(entry.value);
    }
  }

  clear(): void {
    for (const entry of this.entries.values()) this.options.onEvict?.(entry.value);
    this.entries.clear();
  }
}
