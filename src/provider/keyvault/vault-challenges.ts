// A vault's authentication challenge, remembered per vault and given to the
// next new client without a request.
//
// The SDK's Key Vault clients send their first request without a token, and
// the vault answers 401 with a WWW-Authenticate that names the authority (its
// tenant) and the resource the token must be for. The provider keeps clients
// per identity and vault, so every new identity paid that round trip to the
// vault, ahead of its token request and its reads. The answer to a request
// without a token is the vault's, the same for every caller: it is kept here
// per vault origin and handed to the next client's unauthenticated request,
// which the SDK then answers with a token as it would the vault's own 401.
// Clients that start while the vault's answer is on its way wait for it
// rather than ask too: a node's pods of a hundred identities starting at once
// cost the vault one such request, not a hundred. Every identity is still
// checked by the vault on its first read. A pipeline policy ahead of the
// request budget and counter (keyvault.ts): a request not made costs no
// budget and is not counted.
//
// It may go stale only if the vault moves to another tenant. Then a request
// with a token gets a 401 (the SDK answers that challenge itself, and the
// entry is dropped here), or the credential refuses the old tenant before
// sending (TenantMismatch: keyvault.ts drops the entry and asks the vault once
// more). Either way an entry is used for at most MAX_AGE_MS after the vault
// sent it. Bounded like the other per-vault state (--max-cached-vaults).
import { createHttpHeaders, type PipelinePolicy, type PipelineRequest, type PipelineResponse, type SendRequest } from "@azure/core-rest-pipeline";
import { LruCache } from "../../shared/lru.ts";

/** How long a challenge is used after the vault sent it. */
export const MAX_AGE_MS = 10 * 60_000;

interface Challenge {
  wwwAuthenticate: string;
  contentType: string | undefined;
  body: string | undefined;
  receivedAt: number;
}

export interface VaultChallengesOptions {
  /** Vault origins remembered at most (--max-cached-vaults). */
  maxEntries: number;
  now?: () => number;
}

export class VaultChallenges {
  /** For every Key Vault client, after the SDK's authentication policy (perRetry) and before any other of ours. */
  readonly policy: PipelinePolicy = { name: "sscsiVaultChallenge", sendRequest: (request, next) => this.send(request, next) };
  private readonly challenges: LruCache<string, Challenge>;
  /** Requests without a token on their way to a vault that has no kept challenge: the others wait for them. */
  private readonly asking = new Map<string, Promise<unknown>>();
  private readonly now: () => number;

  constructor(options: VaultChallengesOptions) {
    this.now = options.now ?? Date.now;
    this.challenges = new LruCache({ maxEntries: options.maxEntries, idleMs: MAX_AGE_MS, now: this.now });
  }

  private send(request: PipelineRequest, next: SendRequest): Promise<PipelineResponse> {
    // Almost every request has its token: it pays for a header lookup, and for the URL only when refused.
    if (request.headers.has("authorization")) return this.sendOn(undefined, request, next, true);
    const origin = originOf(request.url);
    if (request.method !== "GET" || origin === undefined) return this.sendOn(origin, request, next, false);
    const kept = this.fromKept(origin, request);
    if (kept) return kept;
    const asked = this.asking.get(origin);
    // Waits once: when that answer brought no challenge, this request goes on its own.
    if (asked) return untilDone(asked, request).then(() => this.fromKept(origin, request) ?? this.sendOn(origin, request, next, false));
    const sent = this.sendOn(origin, request, next, false);
    const done = sent.finally(() => {
      if (this.asking.get(origin) === done) this.asking.delete(origin);
    });
    done.catch(() => undefined);
    this.asking.set(origin, done);
    return sent;
  }

  private fromKept(origin: string, request: PipelineRequest): Promise<PipelineResponse> | undefined {
    const known = this.fresh(origin);
    return known ? Promise.resolve(answer(request, known)) : undefined;
  }

  private sendOn(origin: string | undefined, request: PipelineRequest, next: SendRequest, withToken: boolean): Promise<PipelineResponse> {
    return next(request).then((response) => {
      if (response.status !== 401) return response;
      const from = origin ?? originOf(request.url);
      if (from !== undefined) this.learn(from, request, response, withToken);
      return response;
    });
  }

  /** Drops the vault's challenge; true if there was one. */
  forget(url: string): boolean {
    const origin = originOf(url);
    if (origin === undefined || this.challenges.peek(origin) === undefined) return false;
    this.challenges.delete(origin);
    return true;
  }

  private fresh(origin: string): Challenge | undefined {
    const known = this.challenges.get(origin);
    if (known && this.now() - known.receivedAt < MAX_AGE_MS) return known;
    if (known) this.challenges.delete(origin);
    return undefined;
  }

  private learn(origin: string, request: PipelineRequest, response: PipelineResponse, withToken: boolean): void {
    // A token the vault refused: its challenge may have changed (another
    // tenant), or be about this token (claims); the next client asks anew.
    if (withToken) return void this.challenges.delete(origin);
    const wwwAuthenticate = response.headers.get("www-authenticate");
    if (request.method !== "GET" || wwwAuthenticate === undefined || !/\b(resource|scope)=/i.test(wwwAuthenticate)) return;
    this.challenges.set(origin, {
      wwwAuthenticate,
      contentType: response.headers.get("content-type"),
      body: response.bodyAsText ?? undefined,
      receivedAt: this.now(),
    });
  }
}

/** Resolves when `asked` settles, or at once when the request is cancelled (the pipeline below then rejects it). */
function untilDone(asked: Promise<unknown>, request: PipelineRequest): Promise<void> {
  const signal = request.abortSignal;
  const settled = asked.then(
    () => undefined,
    () => undefined,
  );
  if (!signal) return settled;
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const onAbort = (): void => resolve();
    signal.addEventListener("abort", onAbort, { once: true });
    void settled.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}

/** The vault's 401 as it sent it, for this request. */
function answer(request: PipelineRequest, challenge: Challenge): PipelineResponse {
  const headers = createHttpHeaders({ "www-authenticate": challenge.wwwAuthenticate });
  if (challenge.contentType !== undefined) headers.set("content-type", challenge.contentType);
  return { request, status: 401, headers, bodyAsText: challenge.body };
}

/** scheme://host:port, lower case; undefined for what is not a URL. */
function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}
