// Identities: which credential a mount uses (workload identity, AKS identity
// binding, managed identity, service principal) and a cache of credentials
// per identity.
//
// A cached credential is shared only by mounts of the same identity: the key
// is mode + tenant + client id + authority, plus the service account for
// workload identity and identity binding, and a hash of the client secret for
// a service principal (so a wrong secret never rides on a token obtained with
// the right one). Workload identity and identity binding additionally prove
// every service-account token they have not seen before with one token
// exchange before the cached token is shared with its mount, and refresh with
// the newest token of the latest mount. Identity binding exchanges its token
// through the cluster's token proxy (token-proxy.ts).
import { createHash } from "node:crypto";
import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/core-auth";
import { status } from "@grpc/grpc-js";
import { scopedSignal } from "../../shared/abort.ts";
import { azureSdk, type AzureSdk } from "../keyvault/azure-sdk.ts";
import type { CloudEnvironment } from "../cloud/cloud.ts";
import { keyVaultScope } from "../cloud/cloud.ts";
import { invalidArgument, ProviderError, tlsTrustError } from "../errors.ts";
import { LruCache } from "../../shared/lru.ts";
import type { ProviderMetrics } from "../metrics.ts";
import { raceSignal, SingleFlight } from "../keyvault/singleflight.ts";
import { IDENTITY_BINDING_AUDIENCE } from "../../shared/identity-binding.ts";
import { defaultTokenProxyOptions, TokenProxy } from "./token-proxy.ts";
import { TokenProxyError } from "./token-proxy-error.ts";
import { traceStep } from "../../shared/trace.ts";
import type { HttpClient } from "@azure/core-rest-pipeline";
import type { TokenRequestGate } from "./token-gate.ts";

export const WORKLOAD_IDENTITY_AUDIENCE = "api://AzureADTokenExchange";

export type AuthMode = "WorkloadIdentity" | "IdentityBinding" | "ServicePrincipal" | "ManagedIdentity";

/** The modes whose assertion is the pod's service-account token. */
function usesServiceAccountToken(mode: AuthMode): boolean {
  return mode === "WorkloadIdentity" || mode === "IdentityBinding";
}

export interface AuthConfig {
  mode: AuthMode;
  tenantId: string;
  /** App / managed identity client id; "" for a system-assigned managed identity. */
  clientId: string;
  cloud: CloudEnvironment;
  /** Service principal secret. */
  clientSecret?: string;
  /** Workload identity and identity binding: the service-account token and its subject. */
  serviceAccountToken?: string;
  serviceAccountSubject?: string;
}

/** Upstream's mode names in messages ("None" is workload identity / service principal). */
export function upstreamModeName(mode: AuthMode): string {
  if (mode === "ManagedIdentity") return "VMManagedIdentity";
  if (mode === "IdentityBinding") return "AzureTokenProxy";
  return "None";
}

/** What a log line may say about an identity (no secret, no token). */
export function describeIdentity(auth: AuthConfig): string {
  switch (auth.mode) {
    case "WorkloadIdentity":
      return `workload identity (clientID ${auth.clientId}, ${auth.serviceAccountSubject ?? "unknown subject"})`;
    case "IdentityBinding":
      return `identity binding (clientID ${auth.clientId}, ${auth.serviceAccountSubject ?? "unknown subject"})`;
    case "ServicePrincipal":
      return `service principal (clientid ${auth.clientId})`;
    case "ManagedIdentity":
      return auth.clientId ? `user-assigned managed identity (client id ${auth.clientId})` : "system-assigned managed identity";
  }
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** The cache key of an identity. Hashed, so it can be used freely as a map key. */
export function identityKey(auth: AuthConfig): string {
  const parts = [auth.mode, auth.tenantId.toLowerCase(), auth.clientId.toLowerCase(), auth.cloud.activeDirectoryEndpoint.toLowerCase()];
  if (usesServiceAccountToken(auth.mode)) parts.push(auth.serviceAccountSubject ?? "");
  if (auth.mode === "ServicePrincipal") parts.push(sha256(auth.clientSecret ?? ""));
  return sha256(parts.join("\n"));
}

/** Reads the claims of a JWT without verifying it (Entra ID verifies it). */
export function jwtClaims(token: string): Record<string, unknown> | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"));
    return claims !== null && typeof claims === "object" ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

// ---- token cache ----------------------------------------------------------------

/** Tokens are reused until this long before they expire (the Key Vault clients refresh 2 min before). */
const REFRESH_MARGIN_MS = 5 * 60_000;
const FETCH_TIMEOUT_MS = 60_000;

type Fetch = (scopes: string[], options: GetTokenOptions) => Promise<AccessToken>;

/**
 * A TokenCredential that caches access tokens per scope/tenant/claims and
 * makes concurrent requests for the same token once.
 */
/**
 * Key Vault's challenge named another tenant than the mount's tenantID: the
 * vault belongs to that tenant. Final, and the fix is the tenantID parameter.
 */
export class TenantMismatch extends Error {
  readonly vaultTenant: string;
  readonly configuredTenant: string;
  constructor(vaultTenant: string, configuredTenant: string) {
    super(`the vault belongs to tenant ${vaultTenant}, not to tenantID "${configuredTenant}"`);
    this.name = "TenantMismatch";
    this.vaultTenant = vaultTenant;
    this.configuredTenant = configuredTenant;
  }
}

export class CachingCredential implements TokenCredential {
  /** Keyed by what the vault's challenge asks (scope, tenant, claims): a few per identity, bounded all the same. */
  private readonly tokens = new LruCache<string, AccessToken>({ maxEntries: 16, idleMs: 24 * 3600_000 });
  private readonly flights = new SingleFlight<AccessToken>();
  private readonly fetch: Fetch;
  private readonly defaultTenant: string;
  private readonly onFetch: (result: "ok" | "error") => void;
  /** Managed identities get their tenant from IMDS; the others must match the vault's. */
  private readonly checkTenant: boolean;

  constructor(fetch: Fetch, defaultTenant: string, onFetch: (result: "ok" | "error") => void, checkTenant = false) {
    this.fetch = fetch;
    this.defaultTenant = defaultTenant;
    this.onFetch = onFetch;
    this.checkTenant = checkTenant;
  }

  private key(scopes: string | string[], options: GetTokenOptions | undefined): string {
    const list = Array.isArray(scopes) ? scopes : [scopes];
    // Tenant ids and domains are case-insensitive: Key Vault's challenge may spell the tenant otherwise than the class.
    return [list.join(" "), (options?.tenantId ?? this.defaultTenant).toLowerCase(), options?.claims ?? "", options?.enableCae ? "cae" : ""].join("\n");
  }

  private fresh(token: AccessToken | undefined): token is AccessToken {
    if (!token) return false;
    const now = Date.now();
    if (token.refreshAfterTimestamp !== undefined && token.refreshAfterTimestamp <= now) return false;
    return token.expiresOnTimestamp - now > REFRESH_MARGIN_MS;
  }

  /**
   * Starts fetching a token unless a fresh one is cached or on its way, and
   * does not wait for it: the Key Vault client asks for the same token once
   * the vault's authentication challenge is answered, and finds it fetched or
   * in flight. A failure is what that request then gets.
   */
  prefetch(scopes: string[], options: GetTokenOptions): void {
    const key = this.key(scopes, options);
    if (this.fresh(this.tokens.get(key)) || this.flights.has(key)) return;
    this.getToken(scopes, options).catch(() => undefined);
  }

  /** Stores a token obtained elsewhere (the workload identity proof). */
  put(scopes: string[], options: GetTokenOptions, token: AccessToken): void {
    this.tokens.set(this.key(scopes, options), token);
  }

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
    if (this.checkTenant && options?.tenantId && options.tenantId.toLowerCase() !== this.defaultTenant.toLowerCase()) {
      throw new TenantMismatch(options.tenantId, this.defaultTenant);
    }
    const list = Array.isArray(scopes) ? scopes : [scopes];
    const key = this.key(list, options);
    const cached = this.tokens.get(key);
    if (this.fresh(cached)) return cached;
    const { promise } = this.flights.run(key, async () => {
      const { abortSignal: _ignored, ...shared } = options ?? {};
      const scoped = scopedSignal([], FETCH_TIMEOUT_MS);
      try {
        const token = await traceStep("token request", () => this.fetch(list, { ...shared, abortSignal: scoped.signal }));
        this.onFetch("ok");
        this.tokens.set(key, token);
        return token;
      } catch (err) {
        this.onFetch("error");
        throw err;
      } finally {
        scoped.dispose();
      }
    });
    return raceSignal(promise, options?.abortSignal as AbortSignal | undefined);
  }
}

// ---- identities ------------------------------------------------------------------

export interface IdentityOptions {
  metrics?: ProviderMetrics;
  /** Service-account tokens remembered as proven, per identity. */
  maxProvenTokens?: number;
  /** Identity binding's token proxy (default: the in-cluster defaults). */
  tokenProxy?: TokenProxy;
  /** Where token requests wait for a connection, taking turns by tenant (none: they go at once). */
  tokenGate?: TokenRequestGate;
}

/** One cached identity: its credential and the latest workload identity token. */
export class Identity {
  readonly key: string;
  readonly description: string;
  readonly credential: CachingCredential;
  private auth: AuthConfig;
  private readonly proven: LruCache<string, true>;
  private readonly proofs = new SingleFlight<void>();
  private readonly metrics: ProviderMetrics | undefined;
  private readonly tokenProxy: TokenProxy | undefined;
  private readonly tokenGate: TokenRequestGate | undefined;
  /** The tenant of the latest mount that prepared this identity: its token requests wait in that tenant's turn. */
  private tenant = "";

  constructor(auth: AuthConfig, options: IdentityOptions) {
    this.auth = auth;
    this.key = identityKey(auth);
    this.description = describeIdentity(auth);
    this.metrics = options.metrics;
    this.tokenProxy = options.tokenProxy;
    this.tokenGate = options.tokenGate;
    this.proven = new LruCache({ maxEntries: options.maxProvenTokens ?? 64, idleMs: 24 * 3600_000 });
    this.credential = new CachingCredential(
      (scopes, opts) => this.fetchToken(scopes, opts),
      auth.tenantId,
      (result) => this.metrics?.countTokenRequest(auth.mode, result),
      auth.mode !== "ManagedIdentity",
    );
  }

  get mode(): AuthMode {
    return this.auth.mode;
  }

  /** What error messages may name: mode, tenant, client id and cloud (no secret). */
  get summary(): Pick<AuthConfig, "mode" | "tenantId" | "clientId" | "cloud"> {
    return { mode: this.auth.mode, tenantId: this.auth.tenantId, clientId: this.auth.clientId, cloud: this.auth.cloud };
  }

  private credentialOptions(sdk: AzureSdk): {
    authorityHost: string;
    disableInstanceDiscovery: boolean;
    retryOptions: { maxRetries: number };
    httpClient: HttpClient;
  } {
    return {
      // Entra ID's requests share the bounded connections of Key Vault's (vault-http-client.ts).
      httpClient: sdk.httpClient,
      authorityHost: this.auth.cloud.activeDirectoryEndpoint,
      // Entra ID instance discovery only knows the public clouds' authorities;
      // a custom cloud (Azure Stack) would fail it.
      disableInstanceDiscovery: !this.auth.cloud.wellKnown,
      // Retries are the Key Vault reader's, which know the call's deadline and
      // say what failed; the SDK's own would spend the deadline unseen.
      retryOptions: { maxRetries: 0 },
    };
  }

  private underlying(sdk: AzureSdk): TokenCredential {
    const auth = this.auth;
    switch (auth.mode) {
      case "ServicePrincipal":
        return new sdk.ClientSecretCredential(auth.tenantId, auth.clientId, auth.clientSecret ?? "", this.credentialOptions(sdk));
      case "ManagedIdentity":
        return auth.clientId ? new sdk.ManagedIdentityCredential({ clientId: auth.clientId }) : new sdk.ManagedIdentityCredential();
      default:
        throw new Error(`${auth.mode} exchanges a service-account token per request`);
    }
  }

  /**
   * One token exchange with a service-account token (the newest one when none
   * is given), on a new credential so that token is the assertion. Identity
   * binding sends it through the token proxy, without instance discovery (the
   * proxy serves only the token endpoints), as upstream does.
   */
  private async exchange(scopes: string[], options: GetTokenOptions, token?: string): Promise<AccessToken> {
    const sdk = await azureSdk();
    const auth = this.auth;
    const assertion = token ?? auth.serviceAccountToken ?? "";
    const getAssertion = () => Promise.resolve(assertion);
    if (auth.mode !== "IdentityBinding") {
      return nonNull(new sdk.ClientAssertionCredential(auth.tenantId, auth.clientId, getAssertion, this.credentialOptions(sdk)).getToken(scopes, options));
    }
    const proxy = await (this.tokenProxy ?? defaultTokenProxy()).client(options.abortSignal as AbortSignal | undefined);
    const credential = new sdk.ClientAssertionCredential(auth.tenantId, auth.clientId, getAssertion, {
      ...this.credentialOptions(sdk),
      // the token proxy's client connects on its own terms
      disableInstanceDiscovery: true,
      httpClient: proxy,
    });
    try {
      return await nonNull(credential.getToken(scopes, options));
    } catch (err) {
      throw proxy.explain() ?? err;
    }
  }

  private sharedUnderlying: TokenCredential | undefined;

  private async fetchToken(scopes: string[], options: GetTokenOptions): Promise<AccessToken> {
    if (usesServiceAccountToken(this.auth.mode)) return this.gated(options, () => this.exchange(scopes, options));
    const credential = (this.sharedUnderlying ??= this.underlying(await azureSdk()));
    return this.gated(options, () => nonNull(credential.getToken(scopes, options)));
  }

  /** A token request, sent when this identity's tenant's turn comes. */
  private gated(options: GetTokenOptions, request: () => Promise<AccessToken>): Promise<AccessToken> {
    return this.tokenGate ? this.tokenGate.run(this.tenant, options.abortSignal as AbortSignal | undefined, request) : request();
  }

  /**
   * Called by every mount before it reads from Key Vault. For workload
   * identity and identity binding, makes sure the mount's service-account
   * token was accepted by Entra ID (or the token proxy) before the cached
   * token is used on its behalf, and makes it the token future refreshes use.
   */
  async prepare(auth: AuthConfig, signal?: AbortSignal, tenant?: string): Promise<void> {
    if (tenant !== undefined) this.tenant = tenant;
    if (!usesServiceAccountToken(auth.mode)) {
      // The token is fetched while the Key Vault client is made and the vault's challenge answered, not after.
      this.credential.prefetch([keyVaultScope(auth.cloud)], { enableCae: true, tenantId: auth.tenantId || undefined });
      return;
    }
    if (!auth.serviceAccountToken) return;
    const token = auth.serviceAccountToken;
    const hash = sha256(token);
    if (this.proven.get(hash) && !expired(token)) {
      this.adopt(auth);
      return;
    }
    const { promise } = this.proofs.run(hash, async () => {
      const scopes = [keyVaultScope(auth.cloud)];
      const options: GetTokenOptions = { enableCae: true };
      let accessToken: AccessToken;
      const scoped = scopedSignal([], FETCH_TIMEOUT_MS);
      try {
        const exchange = { ...options, abortSignal: scoped.signal };
        accessToken = await this.gated(exchange, () => this.exchange(scopes, exchange, token));
        this.metrics?.countTokenRequest(auth.mode, "ok");
      } catch (err) {
        this.metrics?.countTokenRequest(auth.mode, "error");
        throw err;
      } finally {
        scoped.dispose();
      }
      this.proven.set(hash, true);
      this.adopt(auth);
      this.credential.put(scopes, options, accessToken);
    });
    await raceSignal(promise, signal);
  }

  private adopt(auth: AuthConfig): void {
    const previous = this.auth.serviceAccountToken ? jwtClaims(this.auth.serviceAccountToken) : undefined;
    const next = auth.serviceAccountToken ? jwtClaims(auth.serviceAccountToken) : undefined;
    const prevIat = typeof previous?.iat === "number" ? previous.iat : 0;
    const nextIat = typeof next?.iat === "number" ? next.iat : 0;
    if (!this.auth.serviceAccountToken || nextIat >= prevIat) this.auth = { ...this.auth, serviceAccountToken: auth.serviceAccountToken };
  }
}

async function nonNull(pending: Promise<AccessToken | null>): Promise<AccessToken> {
  const token = await pending;
  if (!token) {
    const err = new Error("the credential returned no access token");
    err.name = "CredentialUnavailableError";
    throw err;
  }
  return token;
}

let sharedTokenProxy: TokenProxy | undefined;

/** The token proxy with the in-cluster defaults, for identities made without one. */
function defaultTokenProxy(): TokenProxy {
  sharedTokenProxy ??= new TokenProxy(defaultTokenProxyOptions());
  return sharedTokenProxy;
}

function expired(token: string): boolean {
  const exp = jwtClaims(token)?.exp;
  return typeof exp === "number" && exp * 1000 <= Date.now();
}

/** The bounded cache of identities (LRU with idle eviction). */
export class IdentityCache {
  private readonly cache: LruCache<string, Identity>;
  private readonly options: IdentityOptions;

  constructor(options: IdentityOptions & { maxEntries?: number; idleMs?: number } = {}) {
    this.options = options;
    this.cache = new LruCache({
      maxEntries: options.maxEntries ?? 256,
      idleMs: options.idleMs ?? 3600_000,
      onEvict: () => options.metrics?.cachedIdentities.set(this.cache.size),
    });
  }

  get size(): number {
    return this.cache.size;
  }

  get(auth: AuthConfig): Identity {
    const identity = this.cache.getOrCreate(identityKey(auth), () => new Identity(auth, this.options));
    this.options.metrics?.cachedIdentities.set(this.cache.size);
    return identity;
  }
}

// ---- auth config from the mount parameters ---------------------------------------

export interface AuthInputs {
  useVMManagedIdentity: boolean;
  /** AKS identity binding (checked exclusive with useVMManagedIdentity before). */
  useAzureTokenProxy?: boolean;
  userAssignedIdentityID: string;
  clientID: string;
  tenantId: string;
  cloud: CloudEnvironment;
  /** The raw `csi.storage.k8s.io/serviceAccount.tokens` attribute, if any. */
  serviceAccountTokens: string | undefined;
  podNamespace: string;
  serviceAccountName: string;
  /** Parsed nodePublishSecretRef data (null when there is none). */
  secrets: Record<string, unknown> | null;
  /** Told about parameters that are set but not used, as upstream ignores them. */
  onWarning?: (message: string) => void;
}

/** Chooses the identity mode as upstream does (pod identity is refused earlier, two modes at once too). */
export function buildAuthConfig(input: AuthInputs): AuthConfig {
  const base = { tenantId: input.tenantId, cloud: input.cloud };
  if (input.useVMManagedIdentity) {
    if (input.clientID) {
      input.onWarning?.(
        `clientID is not used because useVMManagedIdentity is "true": the objects are read with the VM's ${input.userAssignedIdentityID ? "user-assigned" : "system-assigned"} managed identity, as upstream does (remove clientID, or remove useVMManagedIdentity for workload identity)`,
      );
    }
    return { ...base, mode: "ManagedIdentity", clientId: input.userAssignedIdentityID };
  }
  if (input.userAssignedIdentityID) {
    input.onWarning?.('userAssignedIdentityID is not used without useVMManagedIdentity: "true", as upstream ignores it (set useVMManagedIdentity, or remove userAssignedIdentityID)');
  }
  if (input.useAzureTokenProxy) {
    const fail = (detail: string): never => {
      throw invalidArgument(`failed to build auth config for mode AzureTokenProxy: ${detail}`);
    };
    if (!input.clientID) fail("clientID is required for identity binding (set clientID to the client id of the managed identity the identity binding is for)");
    if (!input.serviceAccountTokens) fail(`service account tokens are required for identity binding (the CSIDriver object needs tokenRequests with audience ${IDENTITY_BINDING_AUDIENCE})`);
    const token = serviceAccountToken(
      input,
      IDENTITY_BINDING_AUDIENCE,
      (detail) => fail(`failed to parse service account token for identity binding, error: ${detail}`),
      ` (the CSIDriver object needs tokenRequests with audience ${IDENTITY_BINDING_AUDIENCE})`,
    );
    return { ...base, mode: "IdentityBinding", clientId: input.clientID, ...token };
  }
  if (input.clientID) {
    const fail = (detail: string): never => {
      throw invalidArgument(`failed to build auth config for mode None: failed to parse workload identity tokens, error: ${detail}`);
    };
    if (!input.serviceAccountTokens) fail(`service account tokens not found (the CSIDriver object needs tokenRequests with audience ${WORKLOAD_IDENTITY_AUDIENCE})`);
    const token = serviceAccountToken(input, WORKLOAD_IDENTITY_AUDIENCE, fail);
    return { ...base, mode: "WorkloadIdentity", clientId: input.clientID, ...token };
  }
  if (input.secrets === null || input.secrets === undefined) {
    throw invalidArgument(
      "failed to get credentials, nodePublishSecretRef secret is not set (set clientID for workload identity, useVMManagedIdentity for a managed identity, or nodePublishSecretRef for a service principal)",
    );
  }
  const lookup = (name: string): string | undefined => {
    for (const [k, v] of Object.entries(input.secrets!)) if (k.toLowerCase() === name && typeof v === "string") return v.trim();
    return undefined;
  };
  const clientId = lookup("clientid");
  if (!clientId) throw invalidArgument("could not find clientid in secrets");
  const clientSecret = lookup("clientsecret");
  if (!clientSecret) throw invalidArgument("could not find clientsecret in secrets");
  return { ...base, mode: "ServicePrincipal", clientId, clientSecret };
}

/**
 * The pod's service-account token for `audience` from kubelet's tokens
 * attribute, and its subject, which must be the pod's service account.
 */
function serviceAccountToken(
  input: AuthInputs,
  audience: string,
  fail: (detail: string) => never,
  missingHint = "",
): { serviceAccountToken: string; serviceAccountSubject: string } {
  let tokens: unknown;
  try {
    tokens = JSON.parse(input.serviceAccountTokens ?? "");
  } catch {
    fail("the service account tokens attribute is not valid JSON");
  }
  const entry = tokens !== null && typeof tokens === "object" ? (tokens as Record<string, unknown>)[audience] : undefined;
  const token = entry !== null && typeof entry === "object" ? (entry as Record<string, unknown>).token : undefined;
  if (typeof token !== "string" || token === "") return fail(`token for audience ${audience} not found${missingHint}`);
  const claims = jwtClaims(token);
  const subject = typeof claims?.sub === "string" ? claims.sub : undefined;
  if (!subject) return fail(`the token for audience ${audience} is not a service account JWT`);
  if (input.podNamespace && input.serviceAccountName) {
    const expected = `system:serviceaccount:${input.podNamespace}:${input.serviceAccountName}`;
    if (subject !== expected) fail(`the token for audience ${audience} was issued to ${subject}, not to the pod's service account ${expected}`);
  }
  return { serviceAccountToken: token, serviceAccountSubject: subject };
}

const IDENTITY_ERROR_NAMES = new Set([
  "TokenProxyError",
  "AuthenticationError",
  "AggregateAuthenticationError",
  "CredentialUnavailableError",
  "AuthenticationRequiredError",
  "ServerError",
  "AuthError",
  "ClientAuthError",
  "ClientConfigurationError",
  "InteractionRequiredAuthError",
]);

/** Entra ID error codes that mean the credential itself was refused (final). */
const REFUSED = new Set(["invalid_client", "unauthorized_client", "invalid_grant", "invalid_request", "invalid_scope", "invalid_resource", "access_denied", "untrusted_authority"]);
/** Entra ID (OAuth) error codes of a transient failure. */
const TRANSIENT = new Set(["temporarily_unavailable", "server_error", "service_unavailable"]);
/** AADSTS codes: tenant unknown or malformed. */
const UNKNOWN_TENANT = new Set([90002, 900023, 90072]);
/** AADSTS codes: no application with that client id in the tenant. */
const UNKNOWN_APP = new Set([700016]);
/** AADSTS codes: transient on Entra ID's side. */
const TRANSIENT_AADSTS = new Set([90033, 50196]);

/** True for errors thrown by @azure/identity or MSAL while getting a token. */
export function isIdentityError(err: unknown): boolean {
  const e = err as { name?: string; errorCode?: unknown };
  return IDENTITY_ERROR_NAMES.has(e?.name ?? "") || typeof e?.errorCode === "string";
}

/** The parameter a user fixes for a refused credential, by identity mode. */
function credentialHint(mode: AuthMode | undefined): string {
  switch (mode) {
    case "ServicePrincipal":
      return "check clientid and clientsecret in the nodePublishSecretRef Secret";
    case "WorkloadIdentity":
      return "check clientID and that the identity has a federated credential for the pod's service account";
    case "IdentityBinding":
      return "check clientID, that the managed identity has an identity binding to this cluster, and that the pod's service account may use it";
    case "ManagedIdentity":
      return "check userAssignedIdentityID and that the identity is assigned to the node";
    default:
      return "check the identity parameters";
  }
}

/**
 * Maps @azure/identity / MSAL errors to gRPC codes kubelet reads: what a
 * retry cannot fix is final and names the parameter to fix (unknown tenant:
 * InvalidArgument; unknown app or managed identity: NotFound; refused secret
 * or assertion: PermissionDenied; untrusted TLS certificate:
 * FailedPrecondition); throttling, 5xx and unreachable endpoints are
 * Unavailable.
 */
export function authError(err: unknown, what: string, auth?: Pick<AuthConfig, "mode" | "tenantId" | "clientId" | "cloud">): ProviderError {
  // the way to the token proxy failed: the error already says what to fix
  if (err instanceof TokenProxyError) return new ProviderError(err.code, err.errorClass, `${what}: ${err.message}`);
  const e = err as { name?: string; statusCode?: number; message?: string; errorCode?: string; errorResponse?: { error?: string } };
  const message = firstLine(e.message ?? String(err));
  const code = e.statusCode ?? 0;
  const aadCode = e.errorCode ?? e.errorResponse?.error ?? "";
  const aadsts = Number(/AADSTS(\d+)/.exec(message)?.[1] ?? NaN);
  const loginHost = auth && auth.mode !== "ManagedIdentity" ? hostOf(auth.cloud.activeDirectoryEndpoint) : "the token endpoint";
  const tls = tlsTrustError(err, loginHost);
  if (tls) return tls.wrap(`${what}: `);
  if (code === 429 || aadsts === 50196) return new ProviderError(status.UNAVAILABLE, "Throttled", `${what}: ${message}`);
  if (code >= 500 || TRANSIENT.has(aadCode) || TRANSIENT_AADSTS.has(aadsts)) return new ProviderError(status.UNAVAILABLE, "ServiceUnavailable", `${what}: ${message}`);
  if (UNKNOWN_TENANT.has(aadsts)) {
    return new ProviderError(status.INVALID_ARGUMENT, "WrongTenant", `${what}: tenantID "${auth?.tenantId ?? ""}" is not a tenant Entra ID knows (check tenantID): ${message}`);
  }
  if (UNKNOWN_APP.has(aadsts)) {
    const param = auth?.mode === "ServicePrincipal" ? "clientid in the nodePublishSecretRef Secret" : "clientID";
    return new ProviderError(status.NOT_FOUND, "IdentityNotFound", `${what}: no application ${auth?.clientId ?? ""} in tenant ${auth?.tenantId ?? ""} (check ${param} and tenantID): ${message}`);
  }
  if (auth?.mode === "ManagedIdentity" && /identity not found/i.test(message)) {
    const which = auth.clientId ? `userAssignedIdentityID ${auth.clientId}` : "the system-assigned identity";
    return new ProviderError(status.NOT_FOUND, "IdentityNotFound", `${what}: the node has no managed identity ${which} (check userAssignedIdentityID, or assign the identity to the node): ${message}`);
  }
  if (REFUSED.has(aadCode) || Number.isFinite(aadsts) || (code >= 400 && code < 500)) {
    return new ProviderError(status.PERMISSION_DENIED, "AuthenticationFailed", `${what}: ${message}; ${credentialHint(auth?.mode)}`);
  }
  return new ProviderError(status.UNAVAILABLE, "AuthenticationFailed", `${what}: ${message}`);
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function firstLine(text: string): string {
  const line = text.split("\n")[0]!.trim();
  return line.length > 400 ? `${line.slice(0, 400)}…` : line;
}
