// Request counters per operation and per operation+vault ("getSecret",
// "getSecret:kv1"), read by tests through the programmatic API or
// GET /_emulator/counters.

export class RequestCounters {
  readonly #counts = new Map<string, number>();

  /** Counts `name` and, when a qualifier (vault, client id) is given, `name:qualifier`. */
  increment(name: string, qualifier?: string): void {
    this.#bump(name);
    if (qualifier) this.#bump(`${name}:${qualifier}`);
  }

  #bump(key: string): void {
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.#counts.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  reset(): void {
    this.#counts.clear();
  }
}
