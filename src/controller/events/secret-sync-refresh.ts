// Syncs the SecretSyncs of a class again at once, through the normal
// reconcile (the provider, with each SecretSync's own service account).
// SecretSyncs of one service account share one provider answer, so a
// refresh costs one Key Vault read per (identity, object); a group whose
// kept answer already holds the announced version is not synced at all.
import type { SecretProviderClass } from "../../shared/kube/kube-types.ts";
import type { SecretSync } from "../api/secret-sync.ts";
import type { ClassRef } from "./class-objects.ts";

export interface SecretSyncRefreshDeps {
  /** The keys of the SecretSyncs that name this class. */
  keysOfClass(ref: ClassRef): string[];
  secretSync(key: string): SecretSync | undefined;
  secretProviderClass(ref: ClassRef): SecretProviderClass | undefined;
  /** The answer kept for this SecretSync's group reported this version. */
  holdsVersion(ss: SecretSync, spc: SecretProviderClass, version: string): boolean;
  /** Reconciles the key with an answer fetched at or after `notBefore`; false when it failed. */
  syncNow(key: string, notBefore: number): Promise<boolean>;
}

export interface SecretSyncRefreshOutcome {
  synced: number;
  current: number;
  failed: number;
}

export class SecretSyncRefresh {
  private readonly deps: SecretSyncRefreshDeps;

  constructor(deps: SecretSyncRefreshDeps) {
    this.deps = deps;
  }

  secretSyncsOfClass(ref: ClassRef): SecretSync[] {
    return this.deps.keysOfClass(ref).flatMap((key) => this.deps.secretSync(key) ?? []);
  }

  async refresh(ref: ClassRef, version: string | undefined): Promise<SecretSyncRefreshOutcome> {
    const spc = this.deps.secretProviderClass(ref);
    const outcome: SecretSyncRefreshOutcome = { synced: 0, current: 0, failed: 0 };
    if (!spc) return outcome;
    const due: string[] = [];
    for (const key of this.deps.keysOfClass(ref)) {
      const ss = this.deps.secretSync(key);
      if (!ss) continue;
      if (version !== undefined && this.deps.holdsVersion(ss, spc, version)) outcome.current++;
      else due.push(key);
    }
    // One moment for all: the first of each group asks the provider, the others share its answer.
    const notBefore = Date.now();
    const results = await Promise.all(due.map((key) => this.deps.syncNow(key, notBefore)));
    for (const ok of results) {
      if (ok) outcome.synced++;
      else outcome.failed++;
    }
    return outcome;
  }
}
