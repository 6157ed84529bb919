// The Key Vault emulator as a library: startEmulator() generates a CA, serves
// Key Vault (secrets, keys, certificates), Entra ID and the admin endpoints on
// one HTTPS port (routing by Host header) and IMDS on a plain-HTTP port.
// Vault host names (kv1.vault.azure.net) reach it through dns-hook.ts. The
// same HTTPS port plays the cluster address of AKS identity binding
// (kubernetes.default.svc.cluster.local): the API server's certificate and the
// token proxy, chosen by TLS server name (server/cluster-front.ts). Every new
// version raises a Key Vault event on the vaults' Event Grid system topic
// (events/), pushed to webhook subscriptions and pulled from namespace
// topics served at <namespace>.<region>-1.eventgrid.azure.net.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { SecureContext } from "node:tls";
import { isIP } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPrivateKey, type KeyObject } from "node:crypto";
import { createLogger, type Logger } from "../shared/logger.ts";
import { TokenIssuer } from "./auth/access-tokens.ts";
import { TOKEN_EXCHANGE_AUDIENCE } from "./auth/client-assertion.ts";
import { certificateHostNames, cloudsFor, parseVaultHost, type CloudEndpoints } from "./cloud.ts";
import { createCertificateAuthority, issueServerCertificate } from "./crypto/certificate-authority.ts";
import { generatePrivateKey } from "./crypto/json-web-key.ts";
import { signJwt } from "./crypto/json-web-token.ts";
import { EmulatorMetrics } from "./emulator-metrics.ts";
import { InternalServerError } from "./errors/key-vault-errors.ts";
import { ServiceError } from "./errors/service-error.ts";
import { FaultInjector, type FaultRule } from "./fault-injector.ts";
import { ADMIN_PREFIX, AdminHandler, type AccessTokenRequest } from "./handlers/admin-handler.ts";
import { EventGridHandler } from "./handlers/event-grid-handler.ts";
import { EventBroker, type RaiseRequest } from "./events/event-broker.ts";
import type { NamespaceConfig, NamespaceTopicConfig, WebhookSubscriptionConfig } from "./events/event-config.ts";
import type { NamespaceStatus } from "./events/event-grid-namespace.ts";
import { EventTiming } from "./events/event-timing.ts";
import type { KeyVaultEvent } from "./events/key-vault-events.ts";
import type { ReleaseOrder, WebhookSubscriptionStatus } from "./events/webhook-subscription.ts";
import { applicationToken } from "./events/webhook-token.ts";
import { EventGridServerNames } from "./server/event-grid-names.ts";
import { certificateRoutes } from "./handlers/certificates-handler.ts";
import { EntraIdHandler } from "./handlers/entra-id-handler.ts";
import { ImdsHandler } from "./handlers/imds-handler.ts";
import { TokenProxyHandler } from "./handlers/token-proxy-handler.ts";
import { ClusterFront, type ClusterIdentity } from "./server/cluster-front.ts";
import { keyRoutes } from "./handlers/keys-handler.ts";
import { secretRoutes } from "./handlers/secrets-handler.ts";
import type { VaultScope } from "./handlers/wire.ts";
import { RequestCounters } from "./request-counters.ts";
import { validateSeedDocument, type SeedDocument } from "./seed-document.ts";
import { DEFAULT_TENANT_ID, Seeder } from "./seeder.ts";
import { Exchange, hostnameOf } from "./server/exchange.ts";
import { Router } from "./server/router.ts";
import { VaultPipeline } from "./server/vault-pipeline.ts";
import { CertificateService } from "./services/certificate-service.ts";
import { KeyService } from "./services/key-service.ts";
import { SecretService } from "./services/secret-service.ts";
import { VaultObjects } from "./services/vault-objects.ts";
import { MemoryDirectoryStore } from "./store/memory-directory-store.ts";
import { MemoryKeyVaultStore } from "./store/memory-key-vault-store.ts";

export type { FaultRule, FaultKind } from "./fault-injector.ts";
export type * from "./seed-document.ts";
export { DEFAULT_TENANT_ID } from "./seeder.ts";
export { loadSeedFile } from "./seeder.ts";
export { TOKEN_EXCHANGE_AUDIENCE } from "./auth/client-assertion.ts";
export { BUILT_IN_ROLES } from "./auth/role-definitions.ts";
export type { ClusterIdentity } from "./server/cluster-front.ts";
export { IDENTITY_BINDING_AUDIENCE } from "../shared/identity-binding.ts";
export type { AccessTokenRequest } from "./handlers/admin-handler.ts";
export type { RaiseRequest } from "./events/event-broker.ts";
export type * from "./events/event-config.ts";
export type { NamespaceStatus } from "./events/event-grid-namespace.ts";
export type { KeyVaultEvent } from "./events/key-vault-events.ts";
export type { QueueSubscriptionStatus } from "./events/queue-subscription.ts";
export type { DeadLetter, ProvisioningState, ReleaseOrder, WebhookSubscriptionStatus } from "./events/webhook-subscription.ts";
export { EVENT_GRID_APP_ID, SECURE_WEBHOOK_ROLE } from "./events/webhook-token.ts";
export { EVENT_GRID_RESOURCE } from "./events/event-grid-namespace.ts";
export { KEY_VAULT_EVENT_TYPES } from "./events/key-vault-events.ts";

/** Issuer of the service-account tokens minted by issueServiceAccountToken (its key is trusted). */
export const EMULATOR_SERVICE_ACCOUNT_ISSUER = "https://oidc.keyvault-emulator.invalid";

export interface EmulatorOptions {
  /** Listen address of both servers (default 127.0.0.1). */
  host?: string;
  /** HTTPS port; 0 = random (default 0). 443 makes SDK URLs without a port work. */
  port?: number;
  /** Plain-HTTP IMDS port; 0 = random (default 0). */
  imdsPort?: number;
  /** IMDS listen address (default: host). */
  imdsHost?: string;
  /** Where ca.pem is written (default: a new temp dir, removed by close()). */
  dataDir?: string;
  /** Same shape as the seed file. */
  seed?: SeedDocument;
  /** Further Key Vault DNS suffixes (e.g. "vault.emu"); the certificate covers *.<suffix>. */
  extraDnsSuffixes?: string[];
  logger?: Logger;
  /** Tenant of vaults and principals that name none (default DEFAULT_TENANT_ID). */
  defaultTenantId?: string;
  /** Lifetime of Entra ID access tokens in seconds (default 3600). */
  tokenLifetimeSeconds?: number;
  /** The AKS cluster id in the emulated API server's certificate (default: random, 24 hex digits). */
  clusterId?: string;
  /**
   * Event Grid's clock: retry schedule, response timeout (never under 5 s),
   * lock durations, release delays and time to live are multiplied by it
   * (default 1 = real time; tests use e.g. 0.001).
   */
  eventTimeScale?: number;
}

/** Event Grid as the emulator plays it (see the README's events section). */
export interface EmulatorEvents {
  readonly timeScale: number;
  /** Adds or replaces a push subscription; resolves after the first handshake attempt. */
  addWebhookSubscription(config: WebhookSubscriptionConfig): Promise<WebhookSubscriptionStatus>;
  removeWebhookSubscription(name: string): boolean;
  webhookSubscription(name: string): WebhookSubscriptionStatus | undefined;
  webhookSubscriptions(): WebhookSubscriptionStatus[];
  /** Runs a subscription's handshake again (e.g. once its receiver is up). */
  revalidate(name: string): Promise<WebhookSubscriptionStatus>;
  /** Adds or replaces a namespace with its topics and queue subscriptions. */
  addNamespace(config: NamespaceConfig): NamespaceStatus;
  /** Adds or replaces one topic of an existing namespace. */
  addNamespaceTopic(namespace: string, topic: NamespaceTopicConfig): NamespaceStatus;
  removeNamespace(name: string): boolean;
  namespace(name: string): NamespaceStatus | undefined;
  namespaces(): NamespaceStatus[];
  /** Raises NearExpiry / Expired / VaultAccessPolicyChanged (or any Key Vault event) now. */
  raise(request: RaiseRequest): KeyVaultEvent;
  /** Recent events (up to 1000), oldest first. */
  published(): KeyVaultEvent[];
  /** Keeps events back from one destination ("<webhook>" or "<namespace>/<topic>/<subscription>") or all. */
  hold(destination?: string): void;
  /** Lets held events go, in the order they were raised or reversed; returns how many. */
  release(destination?: string, order?: ReleaseOrder): number;
  /** Delivers a logged event again with the same id; returns to how many destinations. */
  redeliver(eventId: string, destination?: string): number;
}

export interface ServerCertificate {
  keyPem: string;
  /** Leaf, then the emulator's CA. */
  certificatePem: string;
  caCertificatePem: string;
}

export interface ServiceAccountTokenOptions {
  namespace: string;
  serviceAccount: string;
  /** Default api://AzureADTokenExchange. */
  audience?: string;
  /** Default 3600; negative values produce expired tokens. */
  expiresInSeconds?: number;
  /** Default EMULATOR_SERVICE_ACCOUNT_ISSUER (whose key the emulator trusts). */
  issuer?: string;
}

export interface Emulator {
  /** The address both servers listen on (point SSCSI_EMULATOR_ADDRESS here). */
  host: string;
  port: number;
  imdsPort: number;
  caCertPath: string;
  caCertPem: string;
  /** https://<vault>.vault.azure.net:<port>/ — hostname must be resolved to the emulator's host (see dns hook) */
  vaultUrl(vault: string, dnsSuffix?: string): string;
  /** https://login.microsoftonline.com:<port> (no port when serving on 443) */
  authorityHost: string;
  /** http://127.0.0.1:<imdsPort> (for AZURE_POD_IDENTITY_AUTHORITY_HOST) */
  imdsEndpoint: string;
  /** The tenant of vaults and principals that name none. */
  tenantId: string;
  /** Issuer of issueServiceAccountToken's tokens. */
  serviceAccountIssuer: string;
  /** The emulated cluster of identity binding: its id, the token proxy's server name, its URL. */
  identityBinding: ClusterIdentity;
  seed(doc: SeedDocument): Promise<void>;
  /** Adds a secret version; creates the vault (default tenant) if it does not exist. */
  setSecret(vault: string, name: string, value: string, options?: { contentType?: string; enabled?: boolean }): Promise<{ version: string }>;
  /** A Kubernetes-style service-account JWT (sub system:serviceaccount:<ns>:<sa>) for workload identity tests. */
  issueServiceAccountToken(options: ServiceAccountTokenOptions): string;
  /** e.g. {"getSecret": 3, "token": 1, "getSecret:kv1": 3} */
  counters(): Record<string, number>;
  resetCounters(): void;
  faults: { add(rule: FaultRule): void; clear(): void; list(): FaultRule[] };
  events: EmulatorEvents;
  /** An app-only Entra ID token signed with the emulated Entra ID's key (default app: Event Grid). */
  issueAccessToken(options: AccessTokenRequest): string;
  /** A TLS server certificate from the emulator's CA (for a test's webhook receiver, which webhooks trust by default). */
  issueServerCertificate(names: string[]): Promise<ServerCertificate>;
  close(): Promise<void>;
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const logger = options.logger ?? createLogger({ name: "keyvault-emulator", level: process.env.LOG_LEVEL ?? "warn" });
  const host = options.host ?? "127.0.0.1";
  const clouds = cloudsFor(options.extraDnsSuffixes);
  const defaultTenantId = options.defaultTenantId ?? DEFAULT_TENANT_ID;

  if (options.seed) validateSeedDocument(options.seed);
  const ca = await createCertificateAuthority();
  const names = [...certificateHostNames(clouds), "*.eventgrid.azure.net", "127.0.0.1", "::1"];
  if (isIP(host) && host !== "0.0.0.0" && host !== "::") names.push(host);
  const tls = await issueServerCertificate(ca, names);
  const ownDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "keyvault-emulator-")));
  await mkdir(dataDir, { recursive: true });
  const caCertPath = join(dataDir, "ca.pem");
  await writeFile(caCertPath, ca.pem, { mode: 0o644 });

  const store = new MemoryKeyVaultStore();
  const directory = new MemoryDirectoryStore();
  const objects = new VaultObjects(store);
  const secrets = new SecretService(objects);
  const keys = new KeyService(objects);
  const certificates = new CertificateService(objects, keys);
  directory.addTenant(defaultTenantId);
  const tokens = await TokenIssuer.create(options.tokenLifetimeSeconds);
  let httpsPort = 0;
  const portSuffix = (): string => (httpsPort === 443 ? "" : `:${httpsPort}`);
  const broker = new EventBroker({
    timing: new EventTiming(options.eventTimeScale),
    tokens,
    emulatorCaPem: ca.pem,
    tenantId: defaultTenantId,
    keyVaultDnsSuffix: clouds[0]!.keyVaultDnsSuffix,
    portSuffix,
    vault: (name) => store.getVault(name),
    version: (vault, kind, name, version) => {
      const { object, record } = objects.resolve(vault.name, kind, name, version);
      return { name: object.name, version: record.version, attributes: record.attributes };
    },
    logger,
  });
  objects.onNewVersion((created) => {
    // an event that cannot be raised must never fail the write that caused it
    try {
      broker.newVersion(created);
    } catch (err) {
      logger.error({ err, vault: created.vault.name, kind: created.kind, name: created.name }, "raising a Key Vault event failed");
    }
  });
  const seeder = new Seeder({ store, directory, secrets, keys, certificates, defaultTenantId, applyEvents: (doc) => broker.configure(doc) });
  const serviceAccountKey: KeyObject = await generatePrivateKey({ kty: "RSA", keySize: 2048 });
  const serviceAccountKeyId = "keyvault-emulator-sa";
  directory.putServiceAccountIssuer({ issuer: EMULATOR_SERVICE_ACCOUNT_ISSUER, keys: [{ kid: serviceAccountKeyId, key: serviceAccountKey }] });

  const counters = new RequestCounters();
  const faults = new FaultInjector();
  const metrics = new EmulatorMetrics();
  const router = new Router<VaultScope>([
    ...secretRoutes({ secrets, certificates, objects }),
    ...keyRoutes({ keys, objects }),
    ...certificateRoutes({ certificates }),
  ]);
  const vaultPipeline = new VaultPipeline({ store, directory, tokens, counters, faults, router });
  const tenants = (): Set<string> => {
    const all = directory.knownTenants();
    for (const vault of store.listVaults()) all.add(vault.tenantId.toLowerCase());
    return all;
  };
  const entraId = new EntraIdHandler({ directory, tokens, counters, faults, tenants });
  const imds = new ImdsHandler({ directory, tokens, counters, faults });
  const tokenProxy = new TokenProxyHandler({ entraId, counters });
  const eventGrid = new EventGridHandler({ broker, tokens, directory, counters });
  const eventGridNames = new EventGridServerNames(ca, createPrivateKey(tls.keyPem));

  const clusterFront = await ClusterFront.create(ca, tls, counters, { clusterId: options.clusterId, portSuffix });
  const vaultUrl = (vault: string, dnsSuffix = clouds[0]!.keyVaultDnsSuffix): string => `https://${vault.toLowerCase()}.${dnsSuffix}${portSuffix()}/`;

  const issueServiceAccountToken = (sa: ServiceAccountTokenOptions): string => {
    const now = Math.floor(Date.now() / 1000);
    const lifetime = sa.expiresInSeconds ?? 3600;
    return signJwt(
      {
        aud: [sa.audience ?? TOKEN_EXCHANGE_AUDIENCE],
        exp: now + lifetime,
        iat: Math.min(now, now + lifetime - 60),
        nbf: Math.min(now, now + lifetime - 60),
        iss: sa.issuer ?? EMULATOR_SERVICE_ACCOUNT_ISSUER,
        sub: `system:serviceaccount:${sa.namespace}:${sa.serviceAccount}`,
        "kubernetes.io": { namespace: sa.namespace, serviceaccount: { name: sa.serviceAccount, uid: "00000000-0000-4000-8000-000000000000" } },
      },
      serviceAccountKey,
      { kid: serviceAccountKeyId },
    );
  };

  const issueAccessToken = (request: AccessTokenRequest): string =>
    applicationToken(tokens, {
      tenantId: request.tenantId ?? defaultTenantId,
      audience: request.audience,
      roles: request.roles,
      appId: request.appId,
      lifetimeSeconds: request.expiresInSeconds,
    });
  const issueReceiverCertificate = async (hostNames: string[]): Promise<ServerCertificate> => {
    const issued = await issueServerCertificate(ca, hostNames, { commonName: hostNames[0] });
    return { keyPem: issued.keyPem, certificatePem: issued.certificatePem, caCertificatePem: ca.pem };
  };

  const admin = new AdminHandler({
    counters,
    faults,
    registry: metrics.registry,
    caCertificatePem: () => ca.pem,
    seed: (doc) => seeder.apply(doc),
    vaults: () => store.listVaults().map((v) => ({ name: v.name, tenantId: v.tenantId, url: vaultUrl(v.name) })),
    issueServiceAccountToken,
    issueAccessToken,
    issueServerCertificate: issueReceiverCertificate,
    events: broker,
  });

  const observe = (exchange: Exchange): void => {
    exchange.res.on("close", () => {
      const seconds = Number(process.hrtime.bigint() - exchange.startedAt) / 1e9;
      const status = exchange.res.headersSent ? exchange.res.statusCode : 0;
      metrics.observe(exchange.operation, exchange.vault, status, seconds);
      logger.debug(
        { method: exchange.method, host: exchange.host, path: exchange.path, operation: exchange.operation, vault: exchange.vault, status, ms: Math.round(seconds * 1000) },
        "request",
      );
    });
  };

  const fail = (exchange: Exchange, err: unknown): void => {
    if (err instanceof ServiceError) {
      exchange.sendError(err);
      return;
    }
    logger.error({ err, operation: exchange.operation }, "request failed");
    exchange.sendError(new InternalServerError(`The emulator failed to handle the request: ${err instanceof Error ? err.message : String(err)}`));
  };

  const onHttpsRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const route = clusterFront.route(req, hostnameOf(req.headers.host ?? ""));
    // the proxy forwards to the cloud's Entra ID, which answers as itself
    const exchange = route === "tokenProxy" ? new Exchange(req, res, "https", `${clouds[0]!.loginHost}${portSuffix()}`) : new Exchange(req, res, "https");
    observe(exchange);
    void (async () => {
      if (route === "tokenProxy") return tokenProxy.handle(exchange);
      if (exchange.path.startsWith(ADMIN_PREFIX)) return admin.handle(exchange);
      if (route === "apiServer") return tokenProxy.answerAsApiServer(exchange);
      if (EventGridHandler.handles(exchange.hostname)) return eventGrid.handle(exchange);
      const vaultHost = parseVaultHost(exchange.hostname, clouds);
      if (vaultHost) return vaultPipeline.handle(exchange, vaultHost.vault, vaultHost.cloud);
      if (await entraId.handle(exchange)) return;
      exchange.operation = "unknown";
      exchange.send({
        status: 404,
        body: { error: { code: "NotFound", message: `No emulated endpoint for ${exchange.method} https://${exchange.host}${exchange.path}` } },
      });
    })().catch((err: unknown) => fail(exchange, err));
  };

  const onImdsRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const exchange = new Exchange(req, res, "http");
    observe(exchange);
    void (async () => {
      if (exchange.path.startsWith(ADMIN_PREFIX)) return admin.handle(exchange);
      return imds.handle(exchange);
    })().catch((err: unknown) => fail(exchange, err));
  };

  if (options.seed) {
    try {
      // Event destinations come after listening: handshakes and validation URLs need the port.
      await seeder.apply({ ...options.seed, webhookSubscriptions: undefined, eventGridNamespaces: undefined });
    } catch (err) {
      if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
      throw err;
    }
  }

  const selectContext = (servername: string, done: (err: Error | null, context?: SecureContext) => void): void => {
    if (eventGridNames.handles(servername)) eventGridNames.select(servername, done);
    else clusterFront.selectContext(servername, done);
  };
  const httpsServer = createHttpsServer({ key: tls.keyPem, cert: tls.certificatePem, SNICallback: selectContext }, onHttpsRequest);
  const imdsServer = createHttpServer(onImdsRequest);
  httpsPort = await listen(httpsServer, options.port ?? 0, host);
  let imdsPort: number;
  try {
    imdsPort = await listen(imdsServer, options.imdsPort ?? 0, options.imdsHost ?? host);
  } catch (err) {
    await closeServer(httpsServer);
    throw err;
  }

  if (options.seed && (options.seed.webhookSubscriptions || options.seed.eventGridNamespaces)) {
    try {
      await broker.configure(options.seed);
    } catch (err) {
      broker.close();
      await Promise.all([closeServer(httpsServer), closeServer(imdsServer)]);
      if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
      throw err;
    }
  }

  const imdsHost = urlHost(options.imdsHost ?? host);
  const emulator: Emulator = {
    host,
    port: httpsPort,
    imdsPort,
    caCertPath,
    caCertPem: ca.pem,
    vaultUrl,
    authorityHost: `https://${clouds[0]!.loginHost}${portSuffix()}`,
    imdsEndpoint: `http://${imdsHost}:${imdsPort}`,
    tenantId: defaultTenantId,
    serviceAccountIssuer: EMULATOR_SERVICE_ACCOUNT_ISSUER,
    identityBinding: clusterFront.identity,
    seed: (doc) => seeder.apply(doc),
    setSecret: (vault, name, value, opts = {}) => {
      const record = seeder.ensureVault(vault);
      const { record: version } = secrets.set(record, name, { value, contentType: opts.contentType, attributes: { enabled: opts.enabled } });
      return Promise.resolve({ version: version.version });
    },
    issueServiceAccountToken,
    counters: () => counters.snapshot(),
    resetCounters: () => counters.reset(),
    faults: { add: (rule) => faults.add(rule), clear: () => faults.clear(), list: () => faults.list() },
    events: {
      timeScale: broker.timing.timeScale,
      addWebhookSubscription: (config) => broker.addWebhookSubscription(config),
      removeWebhookSubscription: (name) => broker.removeWebhookSubscription(name),
      webhookSubscription: (name) => broker.webhookSubscription(name),
      webhookSubscriptions: () => broker.webhookSubscriptions(),
      revalidate: (name) => broker.revalidate(name),
      addNamespace: (config) => broker.addNamespace(config),
      addNamespaceTopic: (namespace, topic) => broker.addNamespaceTopic(namespace, topic),
      removeNamespace: (name) => broker.removeNamespace(name),
      namespace: (name) => broker.namespaceStatus(name),
      namespaces: () => broker.namespaceStatuses(),
      raise: (request) => broker.raise(request),
      published: () => broker.published(),
      hold: (destination) => broker.hold(destination),
      release: (destination, order) => broker.releaseHeld(destination, order),
      redeliver: (eventId, destination) => broker.redeliver(eventId, destination),
    },
    issueAccessToken,
    issueServerCertificate: issueReceiverCertificate,
    close: async () => {
      broker.close();
      await Promise.all([closeServer(httpsServer), closeServer(imdsServer)]);
      if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
  logger.info({ port: httpsPort, imdsPort, caCertPath, vaults: store.listVaults().map((v) => vaultUrl(v.name)) }, "keyvault emulator listening");
  return emulator;
}

/** Resolves the clouds served (for callers that build their own host lists). */
export function emulatedClouds(extraDnsSuffixes?: string[]): CloudEndpoints[] {
  return cloudsFor(extraDnsSuffixes);
}

function listen(server: HttpServer | HttpsServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: HttpServer | HttpsServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function urlHost(host: string): string {
  if (host === "0.0.0.0" || host === "" ) return "127.0.0.1";
  if (host === "::") return "[::1]";
  return isIP(host) === 6 ? `[${host}]` : host;
}
