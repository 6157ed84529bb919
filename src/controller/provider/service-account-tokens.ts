// Service-account tokens for provider calls, as upstream's controller gets
// them: a TokenRequest for the SecretSync's service account, one per
// configured audience, valid 600 s, not bound to any object, asked again once
// 80 % of its lifetime has passed. The admission policies allow the
// controller exactly this (600 s, one configured audience per request).
// Tokens are kept per (namespace, service account, audience) in a bounded
// cache and never logged.
import { Reason } from "../api/conditions.ts";
import { describeApiError, httpStatusOf } from "../../shared/kube/api-errors.ts";
import type { KubeRest } from "../../shared/kube/kube-rest.ts";
import { LruCache } from "../../shared/lru.ts";
import { SyncFailure } from "../reconcile/sync-failure.ts";

export const TOKEN_EXPIRATION_SECONDS = 600;
const REFRESH_AT = 0.8;

export interface IssuedToken {
  token: string;
  expirationTimestamp: string;
}

interface CachedToken extends IssuedToken {
  refreshAt: number;
}

interface TokenRequestAnswer {
  status?: { token?: string; expirationTimestamp?: string };
}

export interface ServiceAccountTokensOptions {
  audiences: readonly string[];
  /** (namespace, service account, audience) kept at most. */
  maxEntries: number;
  onRequest?: () => void;
  now?: () => number;
}

export class ServiceAccountTokens {
  private readonly rest: KubeRest;
  private readonly options: ServiceAccountTokensOptions;
  private readonly cache: LruCache<string, CachedToken>;
  private readonly pending = new Map<string, Promise<CachedToken>>();
  private readonly now: () => number;
  /** TokenRequests sent since start. */
  requested = 0;

  constructor(rest: KubeRest, options: ServiceAccountTokensOptions) {
    this.rest = rest;
    this.options = options;
    this.now = options.now ?? Date.now;
    // A token outlives no idle period longer than itself.
    this.cache = new LruCache({ maxEntries: options.maxEntries, idleMs: TOKEN_EXPIRATION_SECONDS * 1000, now: this.now });
  }

  get size(): number {
    return this.cache.size;
  }

  /** The value of csi.storage.k8s.io/serviceAccount.tokens, or undefined with no audience configured. */
  async tokensAttribute(namespace: string, serviceAccount: string): Promise<string | undefined> {
    if (this.options.audiences.length === 0) return undefined;
    const tokens: Record<string, IssuedToken> = {};
    for (const audience of this.options.audiences) {
      const { token, expirationTimestamp } = await this.token(namespace, serviceAccount, audience);
      tokens[audience] = { token, expirationTimestamp };
    }
    return JSON.stringify(tokens);
  }

  private token(namespace: string, serviceAccount: string, audience: string): Promise<CachedToken> {
    const key = `${namespace}\0${serviceAccount}\0${audience}`;
    const cached = this.cache.get(key);
    if (cached && this.now() < cached.refreshAt) return Promise.resolve(cached);
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.request(namespace, serviceAccount, audience).then(
        (issued) => {
          this.pending.delete(key);
          this.cache.set(key, issued);
          return issued;
        },
        (err: unknown) => {
          this.pending.delete(key);
          throw err;
        },
      );
      this.pending.set(key, pending);
    }
    return pending;
  }

  private async request(namespace: string, serviceAccount: string, audience: string): Promise<CachedToken> {
    const ref = `${namespace}/${serviceAccount}`;
    const asked = this.now();
    let answer: TokenRequestAnswer;
    try {
      this.requested++;
      this.options.onRequest?.();
      answer = await this.rest.request<TokenRequestAnswer>({
        method: "POST",
        path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(serviceAccount)}/token`,
        body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences: [audience], expirationSeconds: TOKEN_EXPIRATION_SECONDS } },
        contentType: "application/json",
        what: `request a token for serviceaccount ${ref}`,
      });
    } catch (err) {
      const code = httpStatusOf(err);
      const fix =
        code === 404
          ? `serviceaccount ${ref} does not exist: create it or fix spec.serviceAccountName`
          : code === 403
            ? `the controller may not request tokens for serviceaccount ${ref} with audience "${audience}" (${describeApiError(err)}); check its role and the token admission policy's audiences`
            : `cannot request a token for serviceaccount ${ref} with audience "${audience}": ${describeApiError(err)}`;
      throw new SyncFailure(Reason.ControllerSyncError, fix, { retryable: code !== 404, cause: err });
    }
    const token = answer.status?.token;
    const expirationTimestamp = answer.status?.expirationTimestamp;
    const expires = expirationTimestamp ? Date.parse(expirationTimestamp) : NaN;
    if (!token || !expirationTimestamp || !Number.isFinite(expires)) {
      throw new SyncFailure(Reason.ControllerSyncError, `the API server answered the token request for serviceaccount ${ref} without a token`);
    }
    return { token, expirationTimestamp, refreshAt: asked + (expires - asked) * REFRESH_AT };
  }
}
