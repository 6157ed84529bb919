// Prometheus metrics of the provider. `keyvault_request` and `grpc_request`
// keep upstream's names, buckets and labels, except that the `error` and
// `grpc_message` labels hold a short stable error class (Throttled,
// SecretNotFound, ...) instead of the raw error text, so no message (which can
// name objects, vaults or identities) reaches a label and cardinality stays
// bounded. The *_duration_seconds histograms and *_total counters are ours.
import { Counter, Gauge, Histogram, Registry, collectProcessMetrics } from "../shared/http/prometheus.ts";
import type { ErrorClass } from "./errors.ts";

const SERVICE_NAME = "csi-secrets-store-provider-azure";
const UPSTREAM_BUCKETS = [0.1, 0.2, 0.3, 0.4, 0.5, 1, 1.5, 2, 2.5, 3, 5, 10, 15, 30];
const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export function osType(): string {
  return process.platform === "win32" ? "windows" : process.platform;
}

export class ProviderMetrics {
  readonly registry: Registry;
  private readonly keyvaultRequest: Histogram<"service_name" | "provider" | "os_type" | "object_type" | "object_name" | "error">;
  private readonly grpcRequest: Histogram<"service_name" | "provider" | "os_type" | "grpc_method" | "grpc_code" | "grpc_message">;
  private readonly keyvaultDuration: Histogram<"operation" | "object_type" | "result">;
  private readonly grpcDuration: Histogram<"grpc_method" | "grpc_code">;
  private readonly keyvaultHttp: Counter<"vault" | "operation" | "status_code">;
  private readonly deduplicated: Counter<"object_type">;
  private readonly retries: Counter<"reason">;
  private readonly budgetWaits: Counter<"vault">;
  private readonly budgetWaitSeconds: Counter<"vault">;
  private readonly tokenRequests: Counter<"mode" | "result">;
  readonly cachedIdentities: Gauge;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    const registers = [this.registry];
    if (options.defaultMetrics) collectProcessMetrics(this.registry);
    this.keyvaultRequest = new Histogram({
      name: "keyvault_request",
      help: "Distribution of how long it took to get from keyvault",
      labelNames: ["service_name", "provider", "os_type", "object_type", "object_name", "error"],
      buckets: UPSTREAM_BUCKETS,
      registers,
    });
    this.grpcRequest = new Histogram({
      name: "grpc_request",
      help: "Distribution of how long it took for the gRPC requests",
      labelNames: ["service_name", "provider", "os_type", "grpc_method", "grpc_code", "grpc_message"],
      buckets: UPSTREAM_BUCKETS,
      registers,
    });
    this.keyvaultDuration = new Histogram({
      name: "keyvault_request_duration_seconds",
      help: "Duration of Key Vault operations (a get or a versions listing, retries included), in seconds",
      labelNames: ["operation", "object_type", "result"],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.grpcDuration = new Histogram({
      name: "grpc_request_duration_seconds",
      help: "Duration of provider gRPC calls, in seconds",
      labelNames: ["grpc_method", "grpc_code"],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.keyvaultHttp = new Counter({
      name: "keyvault_http_requests_total",
      help: "HTTP requests sent to Key Vault (billed transactions, authentication challenges and throttled answers included), by vault, operation and status code",
      labelNames: ["vault", "operation", "status_code"],
      registers,
    });
    this.deduplicated = new Counter({
      name: "keyvault_deduplicated_reads_total",
      help: "Key Vault reads that joined an identical read already in flight instead of sending their own",
      labelNames: ["object_type"],
      registers,
    });
    this.retries = new Counter({
      name: "keyvault_retries_total",
      help: "Key Vault operations retried, by reason (throttled, unavailable, network)",
      labelNames: ["reason"],
      registers,
    });
    this.budgetWaits = new Counter({
      name: "keyvault_budget_waits_total",
      help: "Key Vault requests that waited for the per-vault request budget",
      labelNames: ["vault"],
      registers,
    });
    this.budgetWaitSeconds = new Counter({
      name: "keyvault_budget_wait_seconds_total",
      help: "Time Key Vault requests spent waiting for the per-vault request budget, in seconds",
      labelNames: ["vault"],
      registers,
    });
    this.tokenRequests = new Counter({
      name: "token_requests_total",
      help: "Access tokens requested from Entra ID or IMDS (cache misses of the per-identity credential cache), by identity mode and result",
      labelNames: ["mode", "result"],
      registers,
    });
    this.cachedIdentities = new Gauge({
      name: "cached_identities",
      help: "Identities whose credential and Key Vault clients are cached",
      registers,
    });
  }

  observeKeyVault(objectType: string, objectName: string, operation: string, seconds: number, error: ErrorClass | ""): void {
    this.keyvaultRequest.observe(
      { service_name: SERVICE_NAME, provider: "azure", os_type: osType(), object_type: objectType, object_name: objectName, error },
      seconds,
    );
    this.keyvaultDuration.observe({ operation, object_type: objectType, result: error === "" ? "ok" : error }, seconds);
  }

  observeGrpc(method: string, code: string, errorClass: ErrorClass | "", seconds: number): void {
    this.grpcRequest.observe(
      { service_name: SERVICE_NAME, provider: "azure", os_type: osType(), grpc_method: method, grpc_code: code, grpc_message: errorClass },
      seconds,
    );
    this.grpcDuration.observe({ grpc_method: method, grpc_code: code }, seconds);
  }

  countHttp(vault: string, operation: string, statusCode: number | undefined): void {
    this.keyvaultHttp.inc({ vault, operation, status_code: statusCode === undefined ? "none" : String(statusCode) });
  }

  countDeduplicated(objectType: string): void {
    this.deduplicated.inc({ object_type: objectType });
  }

  countRetry(reason: string): void {
    this.retries.inc({ reason });
  }

  countBudgetWait(vault: string, ms: number): void {
    this.budgetWaits.inc({ vault });
    this.budgetWaitSeconds.inc({ vault }, ms / 1000);
  }

  countTokenRequest(mode: string, result: "ok" | "error"): void {
    this.tokenRequests.inc({ mode, result });
  }
}
