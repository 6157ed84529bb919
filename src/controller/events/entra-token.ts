// Webhook authentication by an Entra ID bearer token, as Event Grid sends it
// to a webhook protected by an Entra application: an app-only token for that
// application (the audience), issued by the tenant, carrying the
// AzureEventGridSecureWebhookSubscriber role, requested by Event Grid's own
// application. The token is checked here as a resource server checks one:
//
//   - RS256 only, with a key (kid) the tenant publishes: the OpenID
//     configuration at <authority>/<tenant>/.well-known/openid-configuration
//     names the JWKS; keys are kept for a day and fetched again at most every
//     five minutes when an unknown kid shows up (so forged kids cannot make
//     the controller hammer Entra ID);
//   - issuer: the tenant's v1 (https://sts.windows.net/<tenant>/) or v2
//     (<authority>/<tenant>/v2.0) issuer; tid, when present, the tenant;
//   - audience: one of the configured application ids or URIs;
//   - exp and nbf, with one minute of clock skew;
//   - roles contains AzureEventGridSecureWebhookSubscriber, and the calling
//     application (appid, or azp in v2 tokens) is Event Grid's.
//
// Every refusal has a short reason for the log; none echoes the token.
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import { request } from "node:https";

export const SECURE_WEBHOOK_ROLE = "AzureEventGridSecureWebhookSubscriber";
/** The application Event Grid calls webhooks as (Microsoft.EventGrid's first-party app). */
export const EVENT_GRID_APP_ID = "4962773b-9cdb-44cf-a8bf-237846a00ab7";
export const DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com";

const SKEW_S = 60;
const KEYS_TTL_MS = 24 * 3600_000;
const UNKNOWN_KID_REFETCH_MS = 5 * 60_000;
const STALE_REFETCH_MS = 10_000;
const MAX_TOKEN_LENGTH = 16 * 1024;
const MAX_DOCUMENT_BYTES = 512 * 1024;
const FETCH_TIMEOUT_MS = 10_000;
const MAX_KEYS = 64;

export type JsonFetcher = (url: string) => Promise<unknown>;

export interface EntraTokenOptions {
  tenantId: string;
  /** Accepted audiences: the webhook application's id and/or its application id URI. */
  audiences: readonly string[];
  authorityHost?: string;
  fetchJson?: JsonFetcher;
  now?: () => number;
}

export class TokenRefused extends Error {}

interface Jwk {
  kid?: string;
  kty?: string;
  n?: string;
  e?: string;
  use?: string;
}

/** GET a JSON document over HTTPS (the system's and NODE_EXTRA_CA_CERTS trust), bounded in size and time. */
export function fetchJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "GET", headers: { accept: "application/json" }, timeout: FETCH_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_DOCUMENT_BYTES) {
          req.destroy(new Error(`${url}: the document is larger than ${MAX_DOCUMENT_BYTES} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on("end", () => {
        if (res.statusCode !== 200) return reject(new Error(`${url}: HTTP ${res.statusCode}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
        } catch {
          reject(new Error(`${url}: not JSON`));
        }
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${url}: no answer within ${FETCH_TIMEOUT_MS / 1000}s`)));
    req.on("error", reject);
    req.end();
  });
}

const b64urlJson = (part: string): Record<string, unknown> => {
  const value = JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as unknown;
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new TokenRefused("a token part is not a JSON object");
  return value as Record<string, unknown>;
};

export class EntraTokenValidator {
  private readonly options: Required<Omit<EntraTokenOptions, "fetchJson" | "now">>;
  private readonly fetch: JsonFetcher;
  private readonly now: () => number;
  private keys = new Map<string, KeyObject>();
  private keysAt = 0;
  private lastFetchAt = 0;
  private fetching: Promise<void> | undefined;
  private readonly issuers: Set<string>;

  constructor(options: EntraTokenOptions) {
    if (!/^[0-9a-zA-Z.-]{1,128}$/.test(options.tenantId)) throw new Error(`the webhook's tenant id "${options.tenantId}" is not a tenant id or domain`);
    if (options.audiences.length === 0) throw new Error("the webhook's Entra ID authentication needs at least one audience (the application id or its application id URI)");
    const authorityHost = (options.authorityHost ?? DEFAULT_AUTHORITY_HOST).replace(/\/+$/, "");
    if (!authorityHost.startsWith("https://")) throw new Error(`the authority host ${authorityHost} must use https`);
    this.options = { tenantId: options.tenantId, audiences: options.audiences, authorityHost };
    this.fetch = options.fetchJson ?? fetchJson;
    this.now = options.now ?? Date.now;
    this.issuers = new Set([`https://sts.windows.net/${options.tenantId}/`, `${authorityHost}/${options.tenantId}/v2.0`]);
  }

  /** Fetches the signing keys now (at start-up, so a wrong tenant shows at once); failures are thrown. */
  async prime(): Promise<void> {
    await this.refreshKeys();
  }

  /** Validates an Authorization header value; throws TokenRefused with the reason. */
  async validate(authorization: string | undefined): Promise<Record<string, unknown>> {
    if (!authorization) throw new TokenRefused("no bearer token");
    const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(authorization.trim());
    if (!match || match[1]!.length > MAX_TOKEN_LENGTH) throw new TokenRefused("the Authorization header is not a bearer JWT");
    const [headerPart, payloadPart, signaturePart] = match[1]!.split(".") as [string, string, string];
    let header: Record<string, unknown>;
    let claims: Record<string, unknown>;
    try {
      header = b64urlJson(headerPart);
      claims = b64urlJson(payloadPart);
    } catch {
      throw new TokenRefused("the token is not readable JSON");
    }
    if (header.alg !== "RS256") throw new TokenRefused(`the token's algorithm ${JSON.stringify(String(header.alg).slice(0, 16))} is not RS256`);
    const kid = typeof header.kid === "string" ? header.kid : "";
    if (!kid || kid.length > 256) throw new TokenRefused("the token names no signing key (kid)");
    const key = await this.keyFor(kid);
    if (!key) throw new TokenRefused("the token is signed with a key the tenant does not publish");
    const signed = Buffer.from(`${headerPart}.${payloadPart}`, "ascii");
    if (!verify("sha256", signed, key, Buffer.from(signaturePart, "base64url"))) throw new TokenRefused("the token's signature is not valid");

    const nowS = this.now() / 1000;
    if (typeof claims.exp !== "number" || claims.exp < nowS - SKEW_S) throw new TokenRefused("the token has expired");
    if (typeof claims.nbf === "number" && claims.nbf > nowS + SKEW_S) throw new TokenRefused("the token is not valid yet");
    if (typeof claims.iss !== "string" || !this.issuers.has(claims.iss)) throw new TokenRefused("the token's issuer is not the tenant");
    if (claims.tid !== undefined && claims.tid !== this.options.tenantId) throw new TokenRefused("the token is for another tenant");
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.some((a) => typeof a === "string" && this.options.audiences.includes(a))) throw new TokenRefused("the token's audience is not this webhook's application");
    const roles = Array.isArray(claims.roles) ? claims.roles : [];
    if (!roles.includes(SECURE_WEBHOOK_ROLE)) throw new TokenRefused(`the token lacks the ${SECURE_WEBHOOK_ROLE} role`);
    const caller = claims.appid ?? claims.azp;
    if (caller !== EVENT_GRID_APP_ID) throw new TokenRefused("the token was not issued to Event Grid");
    return claims;
  }

  private async keyFor(kid: string): Promise<KeyObject | undefined> {
    const now = this.now();
    const stale = this.keys.size === 0 || now - this.keysAt > KEYS_TTL_MS;
    // Stale keys are fetched again soon; an unknown kid (a key rollover) is
    // looked for once, then not again for a while.
    const gap = stale ? STALE_REFETCH_MS : UNKNOWN_KID_REFETCH_MS;
    if ((stale || !this.keys.has(kid)) && now - this.lastFetchAt >= gap) await this.refreshKeys().catch(() => undefined);
    return this.keys.get(kid);
  }

  private refreshKeys(): Promise<void> {
    this.fetching ??= this.loadKeys().finally(() => {
      this.fetching = undefined;
    });
    return this.fetching;
  }

  private async loadKeys(): Promise<void> {
    this.lastFetchAt = this.now();
    const { authorityHost, tenantId } = this.options;
    const configuration = (await this.fetch(`${authorityHost}/${encodeURIComponent(tenantId)}/.well-known/openid-configuration`)) as { jwks_uri?: unknown };
    const jwksUri = configuration?.jwks_uri;
    if (typeof jwksUri !== "string" || !jwksUri.startsWith("https://")) throw new Error(`the OpenID configuration of tenant ${tenantId} names no https jwks_uri`);
    const jwks = (await this.fetch(jwksUri)) as { keys?: unknown };
    const keys = new Map<string, KeyObject>();
    for (const jwk of (Array.isArray(jwks?.keys) ? jwks.keys : []).slice(0, MAX_KEYS) as Jwk[]) {
      if (jwk?.kty !== "RSA" || typeof jwk.kid !== "string" || typeof jwk.n !== "string" || typeof jwk.e !== "string") continue;
      if (jwk.use !== undefined && jwk.use !== "sig") continue;
      try {
        keys.set(jwk.kid, createPublicKey({ key: { kty: "RSA", n: jwk.n, e: jwk.e }, format: "jwk" }));
      } catch {
        // an unusable key is skipped
      }
    }
    if (keys.size === 0) throw new Error(`the JWKS of tenant ${tenantId} (${jwksUri}) has no RSA signing key`);
    this.keys = keys;
    this.keysAt = this.now();
  }
}
