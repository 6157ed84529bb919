// Fault injection, switched on and off by tests at run time: throttling (429
// with Retry-After), server errors (5xx), added latency and dropped
// connections, for the next N matching requests and/or a time window,
// optionally only for some operations or one vault.

export type FaultKind = "throttle" | "error" | "latency" | "drop";

export interface FaultRule {
  kind: FaultKind;
  /** Only these operations (e.g. "getSecret", "listSecretVersions", "token", "imdsToken"); default: every operation. */
  operation?: string | string[];
  /** Only requests to this vault (token and IMDS requests have no vault). */
  vault?: string;
  /** Apply to the next N matching requests, then retire. */
  count?: number;
  /** Apply for this many milliseconds after the rule is added, then retire. */
  durationMs?: number;
  /** "error": status to return (default 500). "throttle": default 429 (503 also allowed). */
  status?: number;
  /** "throttle": Retry-After seconds (default 1). "error": optional Retry-After. */
  retryAfterSeconds?: number;
  /** "latency": delay before the request is handled (default 1000). */
  latencyMs?: number;
}

/** What to do with one request. */
export interface FaultDecision {
  delayMs: number;
  /** Rejection to apply after the delay, if any. */
  failure?: { kind: "throttle" | "error"; status: number; retryAfterSeconds?: number } | { kind: "drop" };
}

interface ActiveRule {
  rule: FaultRule;
  remaining: number;
  expiresAt: number;
}

const KINDS: readonly FaultKind[] = ["throttle", "error", "latency", "drop"];

export function validateFaultRule(rule: unknown): FaultRule {
  if (!rule || typeof rule !== "object") throw new Error("a fault rule must be an object");
  const r = rule as Record<string, unknown>;
  if (!KINDS.includes(r.kind as FaultKind)) throw new Error(`fault kind must be one of ${KINDS.join(", ")}`);
  for (const field of ["count", "durationMs", "status", "retryAfterSeconds", "latencyMs"]) {
    if (r[field] !== undefined && (typeof r[field] !== "number" || !Number.isFinite(r[field]) || (r[field] as number) < 0)) {
      throw new Error(`fault field ${field} must be a non-negative number`);
    }
  }
  if (r.operation !== undefined && typeof r.operation !== "string" && !(Array.isArray(r.operation) && r.operation.every((o) => typeof o === "string"))) {
    throw new Error("fault field operation must be a string or a list of strings");
  }
  if (r.vault !== undefined && typeof r.vault !== "string") throw new Error("fault field vault must be a string");
  if (r.status !== undefined && ((r.status as number) < 400 || (r.status as number) > 599)) throw new Error("fault status must be 4xx or 5xx");
  return r as unknown as FaultRule;
}

export class FaultInjector {
  #rules: ActiveRule[] = [];

  add(rule: FaultRule): void {
    const valid = validateFaultRule(rule);
    this.#rules.push({
      rule: { ...valid },
      remaining: valid.count ?? Number.POSITIVE_INFINITY,
      expiresAt: valid.durationMs !== undefined ? Date.now() + valid.durationMs : Number.POSITIVE_INFINITY,
    });
  }

  clear(): void {
    this.#rules = [];
  }

  /** Active rules with what is left of them. */
  list(): Array<FaultRule & { remaining?: number; expiresInMs?: number }> {
    this.#expire();
    return this.#rules.map((r) => ({
      ...r.rule,
      ...(Number.isFinite(r.remaining) ? { remaining: r.remaining } : {}),
      ...(Number.isFinite(r.expiresAt) ? { expiresInMs: Math.max(0, r.expiresAt - Date.now()) } : {}),
    }));
  }

  /** Decides the faults for a request and consumes one use of each rule applied. */
  decide(operation: string, vault?: string): FaultDecision {
    this.#expire();
    const decision: FaultDecision = { delayMs: 0 };
    for (const active of this.#rules) {
      const { rule } = active;
      if (!matches(rule, operation, vault)) continue;
      if (rule.kind === "latency") {
        decision.delayMs += rule.latencyMs ?? 1000;
        active.remaining--;
        continue;
      }
      if (decision.failure) continue;
      active.remaining--;
      if (rule.kind === "drop") decision.failure = { kind: "drop" };
      else if (rule.kind === "throttle") decision.failure = { kind: "throttle", status: rule.status ?? 429, retryAfterSeconds: rule.retryAfterSeconds ?? 1 };
      else decision.failure = { kind: "error", status: rule.status ?? 500, retryAfterSeconds: rule.retryAfterSeconds };
    }
    this.#expire();
    return decision;
  }

  #expire(): void {
    const now = Date.now();
    this.#rules = this.#rules.filter((r) => r.remaining > 0 && r.expiresAt > now);
  }
}

function matches(rule: FaultRule, operation: string, vault: string | undefined): boolean {
  if (rule.operation !== undefined) {
    const operations = Array.isArray(rule.operation) ? rule.operation : [rule.operation];
    if (!operations.some((o) => o.toLowerCase() === operation.toLowerCase())) return false;
  }
  if (rule.vault !== undefined && rule.vault.toLowerCase() !== (vault ?? "").toLowerCase()) return false;
  return true;
}
