// The provider's gRPC server: v1alpha1.CSIDriverProvider (Version, Mount)
// and grpc.health.v1.Health on one unix socket, every call timed into the
// grpc_request metrics, plus the metrics and health HTTP servers.
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../shared/logger.ts";
import { GrpcError, startGrpcServer, toServiceError, type RunningGrpcServer } from "../shared/grpc/grpc-server.ts";
import { startHttpServer, type RunningHttpServer } from "../shared/http/http-server.ts";
import { providerService } from "../shared/grpc/proto.ts";
import { BUILD_VERSION } from "../shared/cli/version.ts";
import { errorClassOf, type ErrorClass } from "./errors.ts";
import { grpcHealthProbe, healthHandlers, healthServiceDefinition } from "./health.ts";
import { IdentityCache } from "./auth/identity.ts";
import { TokenRequestGate } from "./auth/token-gate.ts";
import { MAX_SOCKETS_PER_HOST } from "./keyvault/connection-bounds.ts";
import { defaultTokenProxyOptions, TokenProxy, type TokenProxyOptions } from "./auth/token-proxy.ts";
import { KeyVaultReader } from "./keyvault/keyvault.ts";
import { ProviderMetrics } from "./metrics.ts";
import { DEFAULT_CLOUD_ENV_FILE_DIRS } from "./cloud/cloud-file.ts";
import { MountService, type MountOptions } from "./mount.ts";
import { DEFAULT_LIMITS } from "./objects/parameters.ts";
import { traceStep } from "../shared/trace.ts";

export const RUNTIME_NAME = "secrets-store-csi-driver-provider-azure";
/** Used when a Mount call carries no deadline (kubelet's is 2 minutes). */
export const DEFAULT_MOUNT_DEADLINE_MS = 120_000;
/** Time kept to send the answer before the caller's deadline. */
const DEADLINE_MARGIN_MS = 250;

/** Go's names of gRPC codes, as upstream's grpc_code label shows them. */
const CODE_NAMES: Record<number, string> = {
  0: "OK",
  1: "Canceled",
  2: "Unknown",
  3: "InvalidArgument",
  4: "DeadlineExceeded",
  5: "NotFound",
  6: "AlreadyExists",
  7: "PermissionDenied",
  8: "ResourceExhausted",
  9: "FailedPrecondition",
  10: "Aborted",
  11: "OutOfRange",
  12: "Unimplemented",
  13: "Internal",
  14: "Unavailable",
  15: "DataLoss",
  16: "Unauthenticated",
};

export interface ProviderConfig extends Omit<MountOptions, "cloudEnvFileDirs" | "limits">, Partial<Pick<MountOptions, "cloudEnvFileDirs" | "limits">> {
  endpoint: string;
  /** Per-vault budget: requests per window. */
  budgetRequests: number;
  budgetWindowMs: number;
  maxIdentities?: number;
  identityIdleMs?: number;
  /** Identity binding's token proxy (--token-proxy-url, --sni-name, --token-proxy-ca-file); in-cluster defaults. */
  tokenProxy?: Partial<Omit<TokenProxyOptions, "onServerNameDerived">>;
  /** Identity/vault pairs whose Key Vault clients are kept (--max-cached-vaults). */
  maxCachedVaults?: number;
  /** Series with tenant-chosen names per metric (--max-metric-series). */
  maxMetricSeries?: number;
}

interface MountRequestMessage {
  attributes: string;
  secrets: string;
  target_path: string;
  permission: string;
}

interface MountResponseMessage {
  object_version: Array<{ id: string; version: string }>;
  files: Array<{ path: string; mode: number; contents: Buffer }>;
}

function deadlineOf(call: grpc.ServerUnaryCall<unknown, unknown>): number {
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  if (!Number.isFinite(ms)) return Date.now() + DEFAULT_MOUNT_DEADLINE_MS;
  return ms - DEADLINE_MARGIN_MS;
}

export class ProviderServer {
  readonly metrics: ProviderMetrics;
  readonly identities: IdentityCache;
  readonly reader: KeyVaultReader;
  readonly mounts: MountService;
  private readonly logger: Logger;
  private readonly config: ProviderConfig & MountOptions;
  private grpcServer: RunningGrpcServer | undefined;

  constructor(config: ProviderConfig, logger: Logger, metrics = new ProviderMetrics({ defaultMetrics: true, maxSeries: config.maxMetricSeries })) {
    this.config = { cloudEnvFileDirs: DEFAULT_CLOUD_ENV_FILE_DIRS, limits: DEFAULT_LIMITS, ...config };
    this.logger = logger;
    this.metrics = metrics;
    const tokenProxy = new TokenProxy({
      ...defaultTokenProxyOptions(),
      ...config.tokenProxy,
      onServerNameDerived: (serverName) => logger.info({ serverName }, "identity binding: the token proxy's server name, derived from the API server's certificate"),
    });
    this.identities = new IdentityCache({ metrics, maxEntries: config.maxIdentities, idleMs: config.identityIdleMs, tokenProxy, tokenGate: new TokenRequestGate(MAX_SOCKETS_PER_HOST) });
    this.reader = new KeyVaultReader({
      metrics,
      logger,
      budget: { requests: config.budgetRequests, windowMs: config.budgetWindowMs },
      maxCachedVaults: config.maxCachedVaults,
      clientIdleMs: config.identityIdleMs,
    });
    this.mounts = new MountService(this.config, this.identities, this.reader, logger, metrics);
  }

  get address(): string {
    if (!this.grpcServer) throw new Error("provider server not started");
    return this.grpcServer.address;
  }

  private unary<Req, Res>(method: string, handler: (call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const started = performance.now();
      traceStep(`grpc ${method}`, () => handler(call)).then(
        (res) => {
          this.metrics.observeGrpc(method, "OK", "", (performance.now() - started) / 1000);
          callback(null, res);
        },
        (err: unknown) => {
          const code = err instanceof GrpcError ? err.code : grpc.status.INTERNAL;
          const cls: ErrorClass = errorClassOf(err);
          this.metrics.observeGrpc(method, CODE_NAMES[code] ?? String(code), cls, (performance.now() - started) / 1000);
          this.logger.error({ method, code: CODE_NAMES[code], errorClass: cls, error: err instanceof Error ? err.message : String(err) }, "request failed");
          callback(toServiceError(err) as grpc.ServiceError);
        },
      );
    };
  }

  async start(): Promise<void> {
    const Service = providerService();
    // gRPC's own limit stays above --max-request-bytes, so an oversized request
    // gets the provider's message naming the flag, not a transport error.
    const maxReceive = Math.max(4 * 1024 * 1024, this.config.limits.maxRequestBytes + 64 * 1024);
    this.grpcServer = await startGrpcServer({ endpoint: this.config.endpoint, socketMode: 0o600, maxReceiveMessageLength: maxReceive }, (server) => {
      server.addService(Service.service, {
        Version: this.unary("/v1alpha1.CSIDriverProvider/Version", () =>
          Promise.resolve({ version: "v1alpha1", runtime_name: RUNTIME_NAME, runtime_version: BUILD_VERSION }),
        ),
        Mount: this.unary<MountRequestMessage, MountResponseMessage>("/v1alpha1.CSIDriverProvider/Mount", async (call) => {
          const controller = new AbortController();
          const onCancel = () => controller.abort();
          call.on("cancelled", onCancel);
          try {
            const result = await this.mounts.mount(call.request, { deadline: deadlineOf(call as grpc.ServerUnaryCall<unknown, unknown>), signal: controller.signal });
            return {
              object_version: result.objectVersions,
              files: result.files.map((f) => ({ path: f.path, mode: f.mode, contents: f.contents })),
            };
          } finally {
            call.removeListener("cancelled", onCancel);
          }
        }),
      });
      server.addService(healthServiceDefinition, {
        Check: (call: grpc.ServerUnaryCall<{ service: string }, { status: number }>, callback: grpc.sendUnaryData<{ status: number }>) => {
          const started = performance.now();
          healthHandlers.Check(call, (err, res) => {
            this.metrics.observeGrpc("/grpc.health.v1.Health/Check", err ? "Unknown" : "OK", "", (performance.now() - started) / 1000);
            callback(err, res);
          });
        },
      });
    });
    this.logger.info({ endpoint: this.config.endpoint }, "provider listening");
  }

  async stop(): Promise<void> {
    this.mounts.close();
    await this.grpcServer?.stop();
  }
}

export interface HttpServers {
  metrics: RunningHttpServer;
  health: RunningHttpServer;
  close(): Promise<void>;
}

/** A listen failure of one of the HTTP servers, naming which and where. */
export class ListenError extends Error {
  readonly which: "metrics" | "health";
  readonly address: string;
  readonly code: string | undefined;
  constructor(which: "metrics" | "health", address: string, cause: unknown) {
    super((cause as Error).message);
    this.which = which;
    this.address = address;
    this.code = (cause as NodeJS.ErrnoException).code;
  }
}

/** Starts /metrics on metricsAddr and the health path on healthAddr ("[host]:port"). */
export async function startProviderHttp(
  provider: ProviderServer,
  options: { metricsAddr: string; healthAddr: string; healthPath: string; healthTimeoutMs: number },
): Promise<HttpServers> {
  const probe = grpcHealthProbe(provider.address, options.healthTimeoutMs);
  let metrics: RunningHttpServer | undefined;
  try {
    metrics = await startHttpServer(options.metricsAddr, { registry: provider.metrics.registry }).catch((err: unknown) => {
      throw new ListenError("metrics", options.metricsAddr, err);
    });
    const health = await startHttpServer(options.healthAddr, { health: probe.check, healthPath: options.healthPath }).catch((err: unknown) => {
      throw new ListenError("health", options.healthAddr, err);
    });
    const running = metrics;
    return {
      metrics: running,
      health,
      async close() {
        probe.close();
        await Promise.all([running.close(), health.close()]);
      },
    };
  } catch (err) {
    probe.close();
    await metrics?.close();
    throw err;
  }
}
