// Reads from Key Vault with the official SDK clients, at bounded cost:
// - clients are cached per identity and vault (no new challenge/token per mount)
//   in a bounded cache (vault-clients.ts); a vault's challenge is kept for the
//   next identity's clients (vault-challenges.ts), and until the vault has
//   sent one the first request of a new client goes alone, so that only one
//   authentication challenge is answered;
// - identical reads in flight (same identity, vault, type, name, version) are
//   sent once (single-flight);
// - 429/5xx/network failures are retried with backoff that honours
//   Retry-After, but never past the caller's deadline (the SDK's own retries
//   are off);
// - every HTTP request takes a token from the vault's request budget first
//   (buckets kept for at most --max-cached-vaults vaults: a bucket unused for
//   a budget window is full again, so dropping it loses nothing).
import { AsyncLocalStorage } from "node:async_hooks";
import type { PipelinePolicy, PipelineRequest, PipelineResponse, SendRequest } from "@azure/core-rest-pipeline";
import { status } from "@grpc/grpc-js";
import type { Logger } from "../../shared/logger.ts";
import { BUILD_VERSION } from "../../shared/cli/version.ts";
import { azureSdk, loadedAzureSdk, type AzureSdk } from "./azure-sdk.ts";
import { TokenBucket } from "./budget.ts";
import type { FetchedCertificate } from "../formats/cert.ts";
import { deadlineExceeded, ProviderError, tlsTrustError, type ErrorClass } from "../errors.ts";
import type { AuthConfig, Identity } from "../auth/identity.ts";
import { authError, isIdentityError, TenantMismatch } from "../auth/identity.ts";
import type { FetchedKey } from "../formats/key.ts";
import { LruCache } from "../../shared/lru.ts";
import type { ProviderMetrics } from "../metrics.ts";
import type { ObjectType } from "../objects/objects.ts";
import type { FetchedSecret } from "../formats/secret.ts";
import { raceSignal, sleep } from "./singleflight.ts";
import { VaultClientCache, VaultClients, type Gate } from "./vault-clients.ts";
import { isMsalNetworkError, probeTlsTrust } from "../auth/tls-probe.ts";
import { traceStep, traceStepSync } from "../../shared/trace.ts";
import { whenSentWithToken } from "./sent-with-token.ts";
import type { VaultChallenges } from "./vault-challenges.ts";

export interface VaultRef {
  name: string;
  url: string;
}

export interface CallContext {
  /** Epoch ms by which the answer must be ready. */
  deadline: number;
  signal: AbortSignal;
  /** Whose call it is (the pod's namespace): token requests take turns by it (auth/token-gate.ts). */
  tenant?: string;
  /** The first request of a fresh client: opens its gate once sent with the token (sent-with-token.ts). */
  opensGate?: () => void;
}

export interface VersionInfo {
  version: string;
  createdOn: number;
  enabled: boolean;
}

/** An object as Key Vault's list operations describe it, without its value. */
export interface ListedObject {
  name: string;
  enabled: boolean;
  /** Managed by a certificate (the certificate's secret or key). */
  managed: boolean;
  tags: Record<string, string>;
  contentType?: string;
}

/** A list that scans more objects than this is refused: a pattern is for vaults of usual size. */
export const MAX_LISTED_OBJECTS = 10_000;

export interface RetryOptions {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface KeyVaultReaderOptions {
  metrics?: ProviderMetrics;
  logger?: Logger;
  /** Per-vault request budget: `requests` per `windowMs`. */
  budget: { requests: number; windowMs: number };
  retry?: Partial<RetryOptions>;
  /** Identity/vault pairs whose SDK clients are kept, and vaults whose budget is (--max-cached-vaults). */
  maxCachedVaults?: number;
  /** Clients unused for this long are dropped (--identity-idle-timeout). */
  clientIdleMs?: number;
}

/** --max-cached-vaults: far above the vaults one node's pods read, small enough that made-up names cost little. */
export const DEFAULT_MAX_CACHED_VAULTS = 256;

interface Flight {
  promise: Promise<unknown>;
  controller: AbortController;
  waiters: number;
}

type Operation = "get" | "list_versions" | "list";

const DEFAULT_RETRY: RetryOptions = { maxAttempts: 6, baseDelayMs: 500, maxDelayMs: 16_000 };
const RETRY_DEADLINE_MARGIN_MS = 100;

/** What Key Vault operation an HTTP request is, for the request counter. */
export function operationOf(method: string, url: string): string {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    return "other";
  }
  const [collection, name, rest] = path.split("/").filter((p, i) => i > 0 && p !== "");
  const kind = collection === "secrets" ? "secret" : collection === "keys" ? "key" : collection === "certificates" ? "certificate" : undefined;
  if (!kind || method !== "GET") return "other";
  if (name === undefined) return `list_${kind}s`;
  if (rest === "versions") return `list_${kind}_versions`;
  return `get_${kind}`;
}

function lastSegment(id: string | undefined): string {
  if (!id) return "";
  const parts = id.replace(/\/+$/, "").split("/");
  return parts[parts.length - 1] ?? "";
}

function retryAfterMs(err: unknown): number | undefined {
  const headers = (err as { response?: { headers?: { get(name: string): string | undefined } } }).response?.headers;
  if (!headers) return undefined;
  for (const name of ["retry-after-ms", "x-ms-retry-after-ms"]) {
    const value = Number(headers.get(name));
    if (headers.get(name) !== undefined && Number.isFinite(value) && value >= 0) return value;
  }
  const retryAfter = headers.get("retry-after");
  if (retryAfter === undefined) return undefined;
  const seconds = Number(retryAfter);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(retryAfter);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

function firstLine(text: string): string {
  const line = text.split("\n")[0]!.trim();
  return line.length > 400 ? `${line.slice(0, 400)}…` : line;
}

const KNOWN_NOT_FOUND = new Set(["SecretNotFound", "KeyNotFound", "CertificateNotFound"]);

/** The inner error code of a Key Vault error body ("SecretDisabled", "ForbiddenByRbac", ...), when the SDK kept it. */
function innerErrorCode(details: unknown): string | undefined {
  const error = (details as { error?: { innerError?: { code?: unknown }; innererror?: { code?: unknown } } } | undefined)?.error;
  const code = error?.innerError?.code ?? error?.innererror?.code;
  return typeof code === "string" ? code : undefined;
}

/** Turns whatever the SDK threw into a ProviderError (code + stable class + message naming the vault and what to fix). */
export function classify(err: unknown, vault: VaultRef, ctx: CallContext, auth?: Pick<AuthConfig, "mode" | "tenantId" | "clientId" | "cloud">): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = err as { name?: string; statusCode?: number; code?: string; message?: string };
  const where = `key vault "${vault.name}" (${vault.url})`;
  if (e.name === "AbortError" || e.name === "TimeoutError") {
    const timedOut = !ctx.signal.aborted || (ctx.signal.reason as { name?: unknown } | undefined)?.name === "TimeoutError";
    if (timedOut || Date.now() >= ctx.deadline - 50) return deadlineExceeded(`${where}: no answer before the call's deadline`);
    return new ProviderError(status.CANCELLED, "Cancelled", `${where}: cancelled`);
  }
  if (err instanceof TenantMismatch) {
    return new ProviderError(
      status.INVALID_ARGUMENT,
      "WrongTenant",
      `${where}: ${err.message}: set tenantID in the SecretProviderClass to the vault's tenant ${err.vaultTenant}`,
    );
  }
  const tls = tlsTrustError(err, vaultHost(vault));
  if (tls) return tls.wrap(`${where}: `);
  if (isIdentityError(err)) {
    return authError(err, `${where}: failed to get an access token`, auth);
  }
  const message = firstLine(e.message ?? String(err));
  if (e.name === "RestError" || typeof e.statusCode === "number") {
    const statusCode = e.statusCode;
    const code = typeof e.code === "string" ? e.code : "";
    const detail = `${where}: ${code ? `${code} ` : ""}(HTTP ${statusCode ?? "-"}): ${message}`;
    if (statusCode === undefined) return networkError(err, vault, where, message);
    if (statusCode === 404) {
      if (code === "VaultNotFound") return new ProviderError(status.NOT_FOUND, "VaultNotFound", `${detail} (check keyvaultName)`);
      const cls: ErrorClass = KNOWN_NOT_FOUND.has(code) ? (code as ErrorClass) : "NotFound";
      return new ProviderError(status.NOT_FOUND, cls, detail);
    }
    if (statusCode === 401) return new ProviderError(status.PERMISSION_DENIED, "Unauthorized", detail);
    if (statusCode === 403) {
      // a disabled object is refused as forbidden too; the inner code tells it apart from missing access
      const disabled = /Disabled$/.test(innerErrorCode((err as { details?: unknown }).details) ?? "");
      return new ProviderError(status.PERMISSION_DENIED, disabled ? "ObjectDisabled" : "Forbidden", detail);
    }
    if (statusCode === 400) return new ProviderError(status.INVALID_ARGUMENT, "BadParameter", detail);
    if (statusCode === 429) return new ProviderError(status.RESOURCE_EXHAUSTED, "Throttled", detail);
    if (statusCode === 408 || statusCode >= 500) return new ProviderError(status.UNAVAILABLE, "ServiceUnavailable", detail);
    return new ProviderError(status.UNKNOWN, "KeyVaultError", detail);
  }
  return networkError(err, vault, where, message);
}

function vaultHost(vault: VaultRef): string {
  try {
    return new URL(vault.url).host;
  } catch {
    return vault.url;
  }
}

/**
 * A request that got no HTTP answer. A vault host that does not resolve
 * (NXDOMAIN) is a wrong keyvaultName or cloud, final; anything else
 * (resets, refused connections, DNS timeouts) is transient.
 */
function networkError(err: unknown, vault: VaultRef, where: string, message: string): ProviderError {
  const e = err as { code?: unknown; request?: { url?: string } };
  let host = vaultHost(vault);
  try {
    if (e.request?.url) host = new URL(e.request.url).host;
  } catch {
    // keep the vault's host
  }
  if (e.code === "ENOTFOUND" && host === vaultHost(vault)) {
    return new ProviderError(
      status.NOT_FOUND,
      "VaultNotFound",
      `${where}: the host ${host} does not exist (DNS: ENOTFOUND): check keyvaultName, and cloudName for a vault of another cloud`,
    );
  }
  return new ProviderError(status.UNAVAILABLE, "NetworkError", `${where}: ${message}`);
}

function retryReason(err: ProviderError): string | undefined {
  if (err.errorClass === "Throttled") return "throttled";
  if (err.errorClass === "ServiceUnavailable") return "unavailable";
  if (err.errorClass === "NetworkError") return "network";
  return undefined;
}

export class KeyVaultReader {
  private readonly metrics: ProviderMetrics | undefined;
  private readonly logger: Logger | undefined;
  private readonly retry: RetryOptions;
  private readonly budgetOptions: { requests: number; windowMs: number };
  private readonly budgets: LruCache<string, TokenBucket>;
  private readonly vaultClients: VaultClientCache;
  private readonly maxCachedVaults: number;
  /** Made with the SDK's first load: the vaults' challenges, for new clients. */
  private challenges: VaultChallenges | undefined;
  /** Reads in flight; an entry lives only as long as its read, so calls in flight bound it. */
  private readonly flights = new Map<string, Flight>();
  /** The calling context, visible to the pipeline policies (budget deadline). */
  private readonly context = new AsyncLocalStorage<CallContext>();

  constructor(options: KeyVaultReaderOptions) {
    this.metrics = options.metrics;
    this.logger = options.logger;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.budgetOptions = options.budget;
    const maxCachedVaults = options.maxCachedVaults ?? DEFAULT_MAX_CACHED_VAULTS;
    this.maxCachedVaults = maxCachedVaults;
    this.budgets = new LruCache({ maxEntries: maxCachedVaults, idleMs: options.budget.windowMs });
    this.vaultClients = new VaultClientCache({
      maxEntries: maxCachedVaults,
      idleMs: options.clientIdleMs ?? 3600_000,
      onSize: (size) => this.metrics?.cachedVaultClients.set(size),
    });
  }

  /** Reads currently in flight (for tests and debugging). */
  get inFlight(): number {
    return this.flights.size;
  }

  private budget(vault: VaultRef): TokenBucket {
    return this.budgets.getOrCreate(vault.url, () => new TokenBucket(this.budgetOptions));
  }

  /**
   * Our one pipeline policy, per HTTP request (each retry and the
   * challenge's second request included): a token from the vault's request
   * budget, and the request counter. One
   * policy rather than three: each policy is a closure and a promise per
   * request in the SDK's pipeline. A budget with a token to spare answers
   * without a promise.
   */
  private policies(vault: VaultRef): Array<{ policy: PipelinePolicy; position: "perCall" | "perRetry" }> {
    const counted = (request: PipelineRequest, next: SendRequest): Promise<PipelineResponse> => {
      const operation = operationOf(request.method, request.url);
      let sent: Promise<PipelineResponse>;
      try {
        sent = next(request);
      } catch (err) {
        // counted like a rejection, as an async policy would
        sent = Promise.reject(err as Error);
      }
      return sent.then(
        (response) => {
          this.metrics?.countHttp(vault.name, operation, response.status);
          return response;
        },
        (err: unknown) => {
          this.metrics?.countHttp(vault.name, operation, (err as { statusCode?: number }).statusCode);
          throw err;
        },
      );
    };
    const waitForBudget = async (bucket: TokenBucket, request: PipelineRequest, next: SendRequest): Promise<PipelineResponse> => {
      const ctx = this.context.getStore();
      const waited = await bucket.take(ctx?.deadline ?? Date.now() + 60_000, request.abortSignal as AbortSignal | undefined, `key vault "${vault.name}"`);
      if (waited > 0) this.metrics?.countBudgetWait(vault.name, waited);
      return counted(request, next);
    };
    const policy: PipelinePolicy = {
      name: "sscsiVaultRequest",
      sendRequest: (request: PipelineRequest, next: SendRequest): Promise<PipelineResponse> => {
        const opensGate = this.context.getStore()?.opensGate;
        if (opensGate) whenSentWithToken(request, opensGate);
        const bucket = this.budget(vault);
        return bucket.tryTake() ? counted(request, next) : waitForBudget(bucket, request, next);
      },
    };
    return [{ policy, position: "perRetry" }];
  }

  private clients(sdk: AzureSdk, identity: Identity, vault: VaultRef): VaultClients {
    const challenges = (this.challenges ??= new sdk.VaultChallenges({ maxEntries: this.maxCachedVaults }));
    return this.vaultClients.get(identity.key, vault.url, identity.credential, () =>
      new VaultClients(sdk, vault.url, identity.credential, {
        retryOptions: { maxRetries: 0 },
        additionalPolicies: [{ policy: challenges.policy, position: "perRetry" }, ...this.policies(vault)],
        userAgentOptions: { userAgentPrefix: `secrets-store-csi-provider-azure/${BUILD_VERSION}` },
        httpClient: sdk.httpClient,
      }),
    );
  }

  /**
   * Lets the first request of a fresh client through alone: it answers the
   * authentication challenge; the others then go straight with the token,
   * as soon as the first is sent again with it (sent-with-token.ts). (With
   * the vault's challenge kept, vault-challenges.ts, the first is answered
   * without a request, but the others still wait: each would otherwise take
   * the pipeline twice, once without the token and once with it.)
   * An open gate (every read after a client's first) costs no promise of its own.
   */
  private throughGate<T>(gate: Gate, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    return gate.open ? fn() : this.throughClosedGate(gate, signal, fn);
  }

  private async throughClosedGate<T>(gate: Gate, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    while (!gate.open) {
      if (gate.pending) {
        await raceSignal(gate.pending, signal);
        continue;
      }
      const store = this.context.getStore();
      let opened = (): void => undefined;
      const sentWithToken = new Promise<void>((resolve) => (opened = resolve));
      const result = store ? this.context.run({ ...store, opensGate: opened }, fn) : fn();
      gate.pending = Promise.race([result, sentWithToken]).then(
        () => {
          gate.open = true;
          gate.pending = undefined;
        },
        () => {
          gate.pending = undefined;
        },
      );
      return result;
    }
    return fn();
  }

  /**
   * The attempts of one operation. `ctx.signal` is the flight's own: it
   * aborts with a TimeoutError at `until` (see run()), so the attempts need no
   * signal or timer of their own.
   */
  private async withRetries<T>(vault: VaultRef, ctx: CallContext, until: number, auth: Identity["summary"], fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    let last: ProviderError | undefined;
    let askedVaultAgain = false;
    for (let attempt = 1; ; attempt++) {
      if (until - Date.now() <= 0) throw deadlineExceeded(`key vault "${vault.name}" (${vault.url}): no answer before the call's deadline`);
      try {
        return await this.context.run(ctx, () => traceStep("Key Vault request", () => fn(ctx.signal)));
      } catch (err) {
        // A kept challenge names a tenant the identity is not in: the vault
        // may have moved since; its own answer decides, once.
        if (err instanceof TenantMismatch && !askedVaultAgain && this.challenges?.forget(vault.url)) {
          askedVaultAgain = true;
          continue;
        }
        let error = classify(err, vault, ctx, auth);
        if (auth.mode !== "ManagedIdentity" && isMsalNetworkError(err)) {
          // MSAL hides the cause; a certificate problem is final, not an outage
          error = (await probeTlsTrust(auth.cloud.activeDirectoryEndpoint))?.wrap(`key vault "${vault.name}" (${vault.url}): failed to get an access token: `) ?? error;
        }
        // The deadline cut a retry short: what failed before is the story, and it is transient.
        if (error.errorClass === "DeadlineExceeded" && last) {
          throw new ProviderError(status.UNAVAILABLE, last.errorClass, `gave up at the call's deadline after ${attempt} attempts: ${last.message}`);
        }
        const reason = retryReason(error);
        if (!reason) throw error;
        last = error;
        // What retries could not fix in time is still transient for kubelet: UNAVAILABLE.
        if (attempt >= this.retry.maxAttempts) throw new ProviderError(status.UNAVAILABLE, error.errorClass, `gave up after ${attempt} attempts: ${error.message}`);
        const backoff = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4);
        const delay = retryAfterMs(err) ?? backoff;
        if (Date.now() + delay >= until) {
          throw new ProviderError(
            status.UNAVAILABLE,
            error.errorClass,
            `gave up after ${attempt} attempt(s), the next retry (in ${Math.ceil(delay / 1000)}s) would pass the call's deadline: ${error.message}`,
          );
        }
        this.metrics?.countRetry(reason);
        this.logger?.debug({ vault: vault.name, attempt, delayMs: Math.round(delay), reason }, "retrying key vault request");
        await sleep(delay, ctx.signal);
      }
    }
  }

  /**
   * One Key Vault operation: single-flight, gate, retries, metrics. A shared
   * read runs until its last interested caller has gone: one mount failing
   * (and cancelling its own reads) does not cancel a read another mount waits for.
   */
  private run<T>(
    identity: Identity,
    vault: VaultRef,
    objectType: ObjectType,
    objectName: string,
    operation: Operation,
    version: string,
    ctx: CallContext,
    fn: (clients: VaultClients, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    if (ctx.signal.aborted) return Promise.reject(classify(ctx.signal.reason, vault, ctx, identity.summary));
    const key = [identity.key, vault.url, objectType, objectName.toLowerCase(), operation, version].join("\n");
    let flight = this.flights.get(key);
    if (flight) {
      this.metrics?.countDeduplicated(objectType);
    } else {
      const controller = new AbortController();
      const shared: CallContext = { deadline: ctx.deadline, signal: controller.signal };
      const created: Flight = { promise: Promise.resolve(), controller, waiters: 0 };
      // A little before the caller's deadline, so the caller hears why the attempts failed.
      const until = ctx.deadline - RETRY_DEADLINE_MARGIN_MS;
      // One timer for the whole flight (its attempts and its waits between them) rather than one per attempt.
      const timer = setTimeout(() => controller.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")), Math.max(0, until - Date.now()));
      timer.unref();
      created.promise = (async () => {
        const started = performance.now();
        let errorClass: ErrorClass | "" = "";
        try {
          const sdk = loadedAzureSdk() ?? (await traceStep("load the Azure SDK", () => azureSdk()));
          const clients = traceStepSync("Key Vault clients", () => this.clients(sdk, identity, vault));
          const gate = clients.gates[objectType];
          return await this.withRetries(vault, shared, until, identity.summary, (signal) => this.throughGate(gate, signal, () => fn(clients, signal)));
        } catch (err) {
          errorClass = err instanceof ProviderError ? err.errorClass : "Internal";
          throw err;
        } finally {
          clearTimeout(timer);
          this.flights.delete(key);
          this.metrics?.observeKeyVault(objectType, objectName, operation, (performance.now() - started) / 1000, errorClass);
        }
      })();
      // a flight nobody waits for any more must not raise an unhandled rejection
      created.promise.catch(() => {});
      this.flights.set(key, created);
      flight = created;
    }
    const joined = flight;
    joined.waiters++;
    const leave = () => {
      if (--joined.waiters === 0) joined.controller.abort();
    };
    return raceSignal(joined.promise as Promise<T>, ctx.signal).then(
      (value) => {
        joined.waiters--;
        return value;
      },
      (err: unknown) => {
        if (ctx.signal.aborted) leave();
        else joined.waiters--;
        throw classify(err, vault, ctx, identity.summary);
      },
    );
  }

  getSecret(identity: Identity, vault: VaultRef, name: string, version: string, ctx: CallContext): Promise<FetchedSecret> {
    return this.run(identity, vault, "secret", name, "get", version, ctx, async (clients, abortSignal) => {
      const secret = await clients.secrets.getSecret(name, { version: version || undefined, abortSignal });
      return {
        value: secret.value ?? "",
        contentType: secret.properties.contentType,
        kid: secret.properties.certificateKeyId,
        version: secret.properties.version ?? lastSegment(secret.properties.id),
        tags: secret.properties.tags,
      };
    });
  }

  getKey(identity: Identity, vault: VaultRef, name: string, version: string, ctx: CallContext): Promise<FetchedKey> {
    return this.run(identity, vault, "key", name, "get", version, ctx, async (clients, abortSignal) => {
      const key = await clients.keys.getKey(name, { version: version || undefined, abortSignal });
      const jwk = key.key;
      return {
        kty: jwk?.kty,
        crv: jwk?.crv,
        n: jwk?.n,
        e: jwk?.e,
        x: jwk?.x,
        y: jwk?.y,
        kid: jwk?.kid ?? key.id,
        version: lastSegment(jwk?.kid ?? key.id) || (key.properties.version ?? ""),
        tags: key.properties.tags,
      };
    });
  }

  getCertificate(identity: Identity, vault: VaultRef, name: string, version: string, ctx: CallContext): Promise<FetchedCertificate> {
    return this.run(identity, vault, "cert", name, "get", version, ctx, async (clients, abortSignal) => {
      const cert = version
        ? await clients.certificates.getCertificateVersion(name, version, { abortSignal })
        : await clients.certificates.getCertificate(name, { abortSignal });
      return { cer: cert.cer, id: cert.properties.id, version: cert.properties.version ?? lastSegment(cert.properties.id), tags: cert.properties.tags, enabled: cert.properties.enabled };
    });
  }

  /** All versions of an object (every page), as upstream's history mode lists them. */
  listVersions(identity: Identity, vault: VaultRef, type: ObjectType, name: string, ctx: CallContext): Promise<VersionInfo[]> {
    return this.run(identity, vault, type, name, "list_versions", "", ctx, async (clients, abortSignal) => {
      const out: VersionInfo[] = [];
      const add = (p: { version?: string; id?: string; enabled?: boolean; createdOn?: Date }) =>
        out.push({ version: p.version ?? lastSegment(p.id), enabled: p.enabled === true, createdOn: p.createdOn?.getTime() ?? 0 });
      if (type === "secret") for await (const p of clients.secrets.listPropertiesOfSecretVersions(name, { abortSignal })) add(p);
      else if (type === "key") for await (const p of clients.keys.listPropertiesOfKeyVersions(name, { abortSignal })) add(p);
      else for await (const p of clients.certificates.listPropertiesOfCertificateVersions(name, { abortSignal })) add(p);
      return out;
    });
  }

  /**
   * The objects of one type in the vault (every page), as the list operation
   * describes them: names, enabled, managed, tags, content type; no values.
   * Shared like reads: one list per identity, vault and type in flight.
   */
  listObjects(identity: Identity, vault: VaultRef, type: ObjectType, ctx: CallContext): Promise<ListedObject[]> {
    return this.run(identity, vault, type, "", "list", "", ctx, async (clients, abortSignal) => {
      const out: ListedObject[] = [];
      const add = (p: { name?: string; id?: string; enabled?: boolean; managed?: boolean; tags?: Record<string, string>; contentType?: string }) => {
        if (out.length >= MAX_LISTED_OBJECTS) {
          throw new ProviderError(
            status.FAILED_PRECONDITION,
            "InvalidArgument",
            `key vault "${vault.name}" holds more than ${MAX_LISTED_OBJECTS} objects of type ${type}, more than an objectName pattern lists: name the objects instead`,
          );
        }
        out.push({ name: p.name ?? lastSegment(p.id), enabled: p.enabled === true, managed: p.managed === true, tags: p.tags ?? {}, contentType: p.contentType });
      };
      if (type === "secret") for await (const p of clients.secrets.listPropertiesOfSecrets({ abortSignal })) add(p);
      else if (type === "key") for await (const p of clients.keys.listPropertiesOfKeys({ abortSignal })) add(p);
      else for await (const p of clients.certificates.listPropertiesOfCertificates({ abortSignal })) add(p);
      return out;
    });
  }
}
