// Identity binding's way to Entra ID: every request of an identity-binding
// credential goes to the cluster's token proxy (--token-proxy-url) instead of
// the authority host, keeping its path and query, over TLS that trusts the
// cluster CA (--token-proxy-ca-file) and asks for the proxy's server name
// (--sni-name, or derived from the API server's certificate). The settings
// reach each credential as its own HTTP client. @azure/identity's
// WorkloadIdentityCredential has the same proxy support, but reads it from
// process-wide environment variables and its assertion from a file: neither
// fits a provider that serves many mounts at once, each with the token that
// came in its Mount request.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { status } from "@grpc/grpc-js";
import type { HttpClient, PipelineRequest, PipelineResponse, TlsSettings } from "@azure/core-rest-pipeline";
import { API_SERVER_HOST } from "../../shared/identity-binding.ts";
import { raceSignal } from "../keyvault/singleflight.ts";
import { tlsTrustError } from "../errors.ts";
import { TokenProxyError } from "./token-proxy-error.ts";
import { apiServerAddress, deriveServerName, isNetworkCode, type ApiServerAddress } from "./token-proxy-server-name.ts";

export const DEFAULT_TOKEN_PROXY_URL = `https://${API_SERVER_HOST}`;
/** The cluster CA as Kubernetes mounts it into pods (the chart mounts only this file of it). */
export const DEFAULT_CLUSTER_CA_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/** Why a --token-proxy-url cannot be used, or undefined. */
export function tokenProxyUrlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "must be an https:// URL";
  }
  if (url.protocol !== "https:") return "must be an https:// URL";
  if (url.username || url.password) return "must not contain user info";
  if (url.search) return "must not contain a query";
  if (url.hash) return "must not contain a fragment";
  return undefined;
}

export interface TokenProxyOptions {
  /** --token-proxy-url */
  url: string;
  /** --sni-name; "" derives it from the API server's certificate. */
  serverName: string;
  /** --token-proxy-ca-file */
  caFile: string;
  /** Where the API server's certificate is read when the server name is derived. */
  apiServer: ApiServerAddress;
  /** Told once the server name has been derived. */
  onServerNameDerived?: (serverName: string) => void;
}

export function defaultTokenProxyOptions(): TokenProxyOptions {
  return { url: DEFAULT_TOKEN_PROXY_URL, serverName: "", caFile: DEFAULT_CLUSTER_CA_FILE, apiServer: apiServerAddress() };
}

export class TokenProxy {
  readonly url: URL;
  readonly caFile: string;
  private readonly options: TokenProxyOptions;
  private derived: string | undefined;
  private deriving: Promise<string> | undefined;
  /** Kept while the CA and server name stay the same: the HTTP client keeps one connection pool per settings object. */
  private tls: { key: string; settings: TlsSettings } | undefined;
  private http: Promise<HttpClient> | undefined;

  constructor(options: TokenProxyOptions) {
    const problem = tokenProxyUrlProblem(options.url);
    if (problem) throw new Error(`--token-proxy-url ${options.url} ${problem}`);
    this.options = options;
    this.url = new URL(options.url);
    this.caFile = options.caFile;
  }

  /** Where the server name comes from, for messages. */
  get serverNameSource(): string {
    return this.options.serverName ? "--sni-name" : "derived from the API server's certificate";
  }

  /** The proxy's server name: --sni-name, or derived once (a failed derivation is tried again by the next mount). */
  async serverName(signal?: AbortSignal): Promise<string> {
    if (this.options.serverName) return this.options.serverName;
    if (this.derived) return this.derived;
    this.deriving ??= deriveServerName(this.caFile, this.options.apiServer)
      .then((name) => {
        this.derived = name;
        this.options.onServerNameDerived?.(name);
        return name;
      })
      .finally(() => {
        this.deriving = undefined;
      });
    return raceSignal(this.deriving, signal);
  }

  /** An HTTP client for one credential's requests. */
  async client(signal?: AbortSignal): Promise<TokenProxyClient> {
    return new TokenProxyClient(this, await this.serverName(signal));
  }

  /** The request's URL at the proxy: the proxy's origin and path, then the request's path and query. */
  target(requestUrl: string): string {
    const original = new URL(requestUrl);
    const target = new URL(this.url.href);
    target.pathname = `${target.pathname.replace(/\/+$/, "")}${original.pathname}`;
    target.search = original.search;
    return target.href;
  }

  /** TLS settings for the proxy, read from the CA file on every request (the cluster CA rotates). */
  async tlsSettings(serverName: string): Promise<TlsSettings> {
    let ca: Buffer | undefined;
    try {
      ca = await readFile(this.caFile);
    } catch (err) {
      // as upstream: without the file, the system's CAs are trusted
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        throw new TokenProxyError(status.FAILED_PRECONDITION, "CertificateUntrusted", `cannot read the cluster CA ${this.caFile} (--token-proxy-ca-file): ${(err as Error).message}`);
      }
    }
    if (ca?.length === 0) {
      // the file is being rewritten: keep what was read before
      if (this.tls) return this.tls.settings;
      throw new TokenProxyError(status.UNAVAILABLE, "CertificateUntrusted", `the cluster CA ${this.caFile} (--token-proxy-ca-file) is empty`);
    }
    const key = `${serverName}\n${ca ? createHash("sha256").update(ca).digest("hex") : "system"}`;
    if (this.tls?.key !== key) {
      const settings = { servername: serverName, ...(ca ? { ca } : {}) } as TlsSettings;
      this.tls = { key, settings };
    }
    return this.tls.settings;
  }

  /** The SDK's own Node HTTP client, loaded with the SDK on the first identity-binding mount. */
  httpClient(): Promise<HttpClient> {
    this.http ??= import("@azure/core-rest-pipeline").then((pipeline) => pipeline.createDefaultHttpClient());
    return this.http;
  }
}

/**
 * The HTTP client of one identity-binding credential: sends to the proxy and
 * remembers the transport failure, which explain() turns into an error that
 * says what to fix.
 */
export class TokenProxyClient implements HttpClient {
  private readonly proxy: TokenProxy;
  readonly serverName: string;
  private failure: unknown;
  /** Each request's own URL: a request sent again is sent to the same place, not rewritten twice. */
  private readonly originals = new WeakMap<PipelineRequest, string>();

  constructor(proxy: TokenProxy, serverName: string) {
    this.proxy = proxy;
    this.serverName = serverName;
  }

  async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
    try {
      const original = this.originals.get(request) ?? request.url;
      this.originals.set(request, original);
      request.url = this.proxy.target(original);
      request.tlsSettings = await this.proxy.tlsSettings(this.serverName);
      return await (await this.proxy.httpClient()).sendRequest(request);
    } catch (err) {
      this.failure = err;
      throw err;
    }
  }

  /** The transport failure of the last request, as a TokenProxyError; undefined when the proxy answered. */
  explain(): TokenProxyError | undefined {
    const err = this.failure;
    if (err === undefined) return undefined;
    if (err instanceof TokenProxyError) return err;
    const e = err as { name?: string; code?: unknown; message?: string };
    if (e.name === "AbortError") return undefined;
    const code = typeof e.code === "string" ? e.code : undefined;
    const message = (e.message ?? String(err)).split("\n")[0]!;
    const where = `the token proxy ${this.proxy.url.origin}`;
    if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
      return new TokenProxyError(
        status.INVALID_ARGUMENT,
        "InvalidArgument",
        `${where} does not serve server name "${this.serverName}" (${this.proxy.serverNameSource}): its certificate is for other names; check --sni-name`,
      );
    }
    if (tlsTrustError(err, this.proxy.url.host)) {
      return new TokenProxyError(
        status.FAILED_PRECONDITION,
        "CertificateUntrusted",
        `the certificate of ${where} is not signed by the cluster CA ${this.proxy.caFile} (--token-proxy-ca-file): ${message}`,
      );
    }
    if (isNetworkCode(code)) return new TokenProxyError(status.UNAVAILABLE, "NetworkError", `${where} is unreachable: ${message} (check --token-proxy-url)`);
    return new TokenProxyError(status.UNAVAILABLE, "NetworkError", `${where}: ${message}`);
  }
}
