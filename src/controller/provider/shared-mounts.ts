// Provider calls shared by every SecretSync that asks the same thing: the same
// namespace, SecretProviderClass (uid and generation) and service account mean
// the same Mount request, the same identity and the same answer. One call
// serves them all, and its answer is reused until a rotation tick of their
// group asks for a newer one, so Key Vault reads grow with distinct classes,
// not with SecretSyncs. Answers are never shared across service accounts or
// namespaces. The cache is bounded (least recently used answers go first) and
// holds files only in memory.
import { status as grpcStatus } from "@grpc/grpc-js";
import { Reason } from "../api/conditions.ts";
import type { SecretSync } from "../api/secret-sync.ts";
import { abortableSleep } from "../../shared/abort.ts";
import type { ObjectVersion, SecretProviderClass } from "../../shared/kube/kube-types.ts";
import { LruCache } from "../../shared/lru.ts";
import { OperationError } from "../../shared/provider-api/errors.ts";
import { oneLine } from "../../shared/provider-api/provider-errors.ts";
import { providerOf, type ProviderClients } from "../../shared/provider-api/provider-client.ts";
import { SyncFailure } from "../reconcile/sync-failure.ts";
import type { ProviderFiles } from "../reconcile/secret-data.ts";
import { buildMountRequest, type ControllerPod } from "./mount-request.ts";
import type { ServiceAccountTokens } from "./service-account-tokens.ts";

/** Upstream retries a call the provider could not take (UNAVAILABLE) three times, 1 s apart and more. */
const ATTEMPTS = 3;
const RETRY_BASE_MS = 1000;
const CALL_TIMEOUT_MS = 60_000;

export interface SharedMountsOptions {
  pod: ControllerPod;
  /** Distinct (namespace, class, service account) answers kept at most. */
  maxEntries: number;
  /** An answer unused for this long is dropped. */
  idleMs: number;
  /** Counts each call by outcome ("success" | "error") and each answer served from the cache. */
  onCall?: (outcome: "success" | "error") => void;
  onShared?: () => void;
}

/** What the provider returned for a (namespace, class, service account). */
export interface ProviderAnswer {
  files: ProviderFiles;
  /** The object versions the provider reported (Key Vault version ids for the Azure provider; "(missing) <file>" for an optional object it did not find). */
  objects: readonly ObjectVersion[];
}

interface Answer extends ProviderAnswer {
  versions: ReadonlySet<string>;
  fetchedAt: number;
}

interface Pending {
  startedAt: number;
  answer: Promise<Answer>;
}

export const mountKey = (namespace: string, spc: SecretProviderClass, serviceAccount: string) =>
  `${namespace}\0${spc.metadata.uid ?? ""}\0${spc.metadata.generation ?? 0}\0${serviceAccount}`;

export class SharedMounts {
  private readonly providers: ProviderClients;
  private readonly tokens: ServiceAccountTokens;
  private readonly options: SharedMountsOptions;
  private readonly answers: LruCache<string, Answer>;
  private readonly pending = new Map<string, Pending>();
  private readonly signal: AbortSignal;

  constructor(providers: ProviderClients, tokens: ServiceAccountTokens, options: SharedMountsOptions, signal: AbortSignal) {
    this.providers = providers;
    this.tokens = tokens;
    this.options = options;
    this.answers = new LruCache({ maxEntries: options.maxEntries, idleMs: options.idleMs });
    this.signal = signal;
  }

  get size(): number {
    return this.answers.size;
  }

  /**
   * The provider's files for this SecretSync, from an answer fetched at or
   * after `notBefore` (ms since epoch): the cached one, one in flight, or a new call.
   */
  async files(ss: SecretSync, spc: SecretProviderClass, notBefore: number): Promise<ProviderAnswer> {
    const namespace = ss.metadata.namespace ?? "";
    const serviceAccount = ss.spec.serviceAccountName;
    const key = mountKey(namespace, spc, serviceAccount);
    for (;;) {
      const cached = this.answers.get(key);
      if (cached && cached.fetchedAt >= notBefore) {
        this.options.onShared?.();
        return cached;
      }
      const inFlight = this.pending.get(key);
      if (inFlight && inFlight.startedAt >= notBefore) {
        this.options.onShared?.();
        return await inFlight.answer;
      }
      if (!inFlight) break;
      // An older call is still out: let it land, then look again.
      await inFlight.answer.catch(() => undefined);
    }
    const startedAt = Date.now();
    const answer = this.call(namespace, spc, serviceAccount).then(({ files, objects }) => ({ files, objects, versions: new Set(objects.map((o) => o.version)), fetchedAt: startedAt }));
    const pending: Pending = { startedAt, answer };
    this.pending.set(key, pending);
    try {
      const done = await answer;
      this.answers.set(key, done);
      return done;
    } finally {
      if (this.pending.get(key) === pending) this.pending.delete(key);
    }
  }

  /**
   * True when the answer kept for this SecretSync's (namespace, class,
   * service account) reported this object version: a sync would find it
   * already there.
   */
  holdsVersion(ss: SecretSync, spc: SecretProviderClass, version: string): boolean {
    const cached = this.answers.peek(mountKey(ss.metadata.namespace ?? "", spc, ss.spec.serviceAccountName));
    return cached?.versions.has(version) ?? false;
  }

  /** The object versions of the answer kept for this SecretSync's group ([] when none is kept). */
  objectsOf(ss: SecretSync, spc: SecretProviderClass): readonly ObjectVersion[] {
    return this.answers.peek(mountKey(ss.metadata.namespace ?? "", spc, ss.spec.serviceAccountName))?.objects ?? [];
  }

  /** Drops every answer of a class (it changed or went away). */
  forgetClass(namespace: string, uid: string | undefined): void {
    const prefix = `${namespace}\0${uid ?? ""}\0`;
    const stale: string[] = [];
    this.answers.sweep();
    for (const key of this.answers.keys()) if (key.startsWith(prefix)) stale.push(key);
    for (const key of stale) this.answers.delete(key);
  }

  private async call(namespace: string, spc: SecretProviderClass, serviceAccount: string): Promise<{ files: ProviderFiles; objects: readonly ObjectVersion[] }> {
    const classRef = `${spc.metadata.namespace ?? namespace}/${spc.metadata.name}`;
    let provider: string;
    let client;
    try {
      provider = providerOf(spc);
      client = await this.providers.get(provider);
    } catch (err) {
      throw new SyncFailure(Reason.SecretProviderClassMisconfigured, `secretproviderclass ${classRef}: ${(err as Error).message}`, { cause: err });
    }
    const tokens = await this.tokens.tokensAttribute(namespace, serviceAccount);
    const request = buildMountRequest(spc.spec.parameters ?? {}, this.options.pod, namespace, serviceAccount, tokens);
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await client.mount(request, new Date(Date.now() + CALL_TIMEOUT_MS));
        this.options.onCall?.("success");
        return { files: new Map(result.files.map((f) => [f.path, f.contents])), objects: result.objectVersions };
      } catch (err) {
        const unavailable = err instanceof OperationError && err.code === grpcStatus.UNAVAILABLE;
        if (unavailable && attempt < ATTEMPTS && !this.signal.aborted) {
          await abortableSleep(RETRY_BASE_MS * 1.1 ** (attempt - 1), this.signal);
          continue;
        }
        this.options.onCall?.("error");
        const message = oneLine(err instanceof Error ? err.message : String(err));
        throw new SyncFailure(
          Reason.ProviderError,
          `provider "${provider}" failed for secretproviderclass ${classRef} and serviceaccount ${namespace}/${serviceAccount}: ${message}`,
          { cause: err },
        );
      }
    }
  }
}
