// Prometheus metrics of the provider. `keyvault_request` and `grpc_request`
// keep upstream's names, buckets and labels, except that the `error` and
// `grpc_message` labels hold a short stable error class (Throttled,
// SecretNotFound, ...) instead of the raw error text, so no message (which can
// name objects, vaults or identities) reaches a label and cardinality stays
// bounded. The *_duration_seconds histograms and *_total counters are ours.
//
// Two labels carry names a SecretProviderClass chooses: upstream's
// `object_name` and our `vault`. Each metric with such a label keeps at most
// --max-metric-series series with real names (first come, first kept); every
// later series is counted with the name `_other` (no Key Vault object or vault
// name contains "_"), so /metrics stays small whatever names tenants make up.
import { Counter, Gauge, Histogram, Registry, collectProcessMetrics } from "../shared/http/prometheus.ts";
import type { ErrorClass } from "./errors.ts";

const SERVICE_NAME = "csi-secrets-store-provider-azure";
const UPSTREAM_BUCKETS = [0.1, 0.2, 0.3, 0.4, 0.5, 1, 1.5, 2, 2.5, 3, 5, 10, 15, 30];
const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** The name counted for every series beyond a metric's budget. */
export const OTHER_NAME = "_other";
/** --max-metric-series: upstream's keyvault_request histogram costs about 3 KiB of /metrics per series. */
export const DEFAULT_MAX_METRIC_SERIES = 100;

/**
 * The series of one metric whose labels include a tenant's name: the first
 * `max` distinct series keep the name, later ones get OTHER_NAME.
 */
class NamedSeries {
  private readonly kept = new Set<string>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  /** The name to put in the label of the series (name + the other label values). */
  name(name: string, ...rest: string[]): string {
    const key = [name, ...rest].join("\n");
    if (this.kept.has(key)) return name;
    if (this.kept.size >= this.max) return OTHER_NAME;
    this.kept.add(key);
    return name;
  }
}

/** An HTTP status as a label: the number, or "none" for no answer. */
function statusLabel(statusCode: number | undefined): string {
  return statusCode !== undefined && Number.isInteger(statusCode) && statusCode >= 100 && statusCode <= 599 ? String(statusCode) : "none";
}

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
  readonly cachedVaultClients: Gauge;
  readonly objectsListsWaiting: Gauge;
  private readonly objectSeries: NamedSeries;
  private readonly httpSeries: NamedSeries;
  private readonly budgetSeries: NamedSeries;

  constructor(options: { defaultMetrics?: boolean; maxSeries?: number } = {}) {
    this.registry = new Registry();
    const maxSeries = options.maxSeries ?? DEFAULT_MAX_METRIC_SERIES;
    this.objectSeries = new NamedSeries(maxSeries);
    this.httpSeries = new NamedSeries(maxSeries);
    this.budgetSeries = new NamedSeries(maxSeries);
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
      help: "Identities whose credential is cached",
      registers,
    });
    this.cachedVaultClients = new Gauge({
      name: "cached_vault_clients",
      help: "Identity and vault pairs whose Key Vault clients are cached (at most --max-cached-vaults)",
      registers,
    });
    this.objectsListsWaiting = new Gauge({
      name: "objects_lists_waiting",
      help: "Large objects lists waiting for the parser's worker thread (at most 8, 2 per namespace)",
      registers,
    });
  }

  observeKeyVault(objectType: string, objectName: string, operation: string, seconds: number, error: ErrorClass | ""): void {
    this.keyvaultRequest.observe(
      {
        service_name: SERVICE_NAME,
        provider: "azure",
        os_type: osType(),
        object_type: objectType,
        object_name: this.objectSeries.name(objectName, objectType, error),
        error,
      },
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
    const status_code = statusLabel(statusCode);
    this.keyvaultHttp.inc({ vault: this.httpSeries.name(vault, operation, status_code), operation, status_code });
  }

  countDeduplicated(objectType: string): void {
    this.deduplicated.inc({ object_type: objectType });
  }

  countRetry(reason: string): void {
    this.retries.inc({ reason });
  }

  countBudgetWait(vault: string, ms: number): void {
    const labels = { vault: this.budgetSeries.name(vault) };
    this.budgetWaits.inc(labels);
    this.budgetWaitSeconds.inc(labels, ms / 1000);
  }

  countTokenRequest(mode: string, result: "ok" | "error"): void {
    this.tokenRequests.inc({ mode, result });
  }
}
