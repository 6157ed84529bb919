// Driver metrics with upstream's names and labels (reference driver-spec §7.1),
// so existing dashboards and alerts keep working. Labels never carry secret
// values or free-form error text, and take values from fixed sets only:
// error_type is a short stable class, and provider is a provider installed on
// this node (its socket was seen), "" before a publish knows the provider, or
// "other" for any name a SecretProviderClass or pod makes up.
import { Counter, Histogram, Registry, collectProcessMetrics } from "../shared/http/prometheus.ts";

export const OS_TYPE = process.platform === "win32" ? "windows" : process.platform;

/** The provider label of a provider that is not installed on this node. */
export const OTHER_PROVIDER = "other";

// Upstream's ExponentialBucketsRange(0.1, 2, 11).
const ROTATION_BUCKETS = Array.from({ length: 11 }, (_, i) => Number((0.1 * Math.pow(20, i / 10)).toFixed(4)));

export class DriverMetrics {
  readonly registry = new Registry();
  readonly nodePublish = new Counter({
    name: "node_publish_total",
    help: "Successful NodePublishVolume calls, including republishes that had nothing to do",
    labelNames: ["provider", "os_type"],
    registers: [this.registry],
  });
  readonly nodePublishError = new Counter({
    name: "node_publish_error_total",
    help: "Failed NodePublishVolume calls, including republish failures reported to kubelet as success",
    labelNames: ["provider", "error_type", "os_type"],
    registers: [this.registry],
  });
  readonly nodePublishAborted = new Counter({
    name: "node_publish_aborted_total",
    help: "NodePublishVolume calls answered ABORTED because another call on the same target or volume was in progress (kubelet retries them); not counted as errors",
    labelNames: ["os_type"],
    registers: [this.registry],
  });
  readonly nodeUnpublishAborted = new Counter({
    name: "node_unpublish_aborted_total",
    help: "NodeUnpublishVolume calls answered ABORTED because another call on the same target or volume was in progress (kubelet retries them); not counted as errors",
    labelNames: ["os_type"],
    registers: [this.registry],
  });
  readonly nodeUnpublish = new Counter({
    name: "node_unpublish_total",
    help: "Successful NodeUnpublishVolume calls",
    labelNames: ["os_type"],
    registers: [this.registry],
  });
  readonly nodeUnpublishError = new Counter({
    name: "node_unpublish_error_total",
    help: "Failed NodeUnpublishVolume calls",
    labelNames: ["os_type"],
    registers: [this.registry],
  });
  readonly nodePublishDuration = new Histogram({
    name: "node_publish_duration_seconds",
    help: "Time to serve NodePublishVolume, by outcome",
    labelNames: ["provider", "outcome"],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  readonly rotationReconcile = new Counter({
    name: "rotation_reconcile_total",
    help: "Completed refreshes of mounted volumes; rotated says whether content changed",
    labelNames: ["provider", "os_type", "rotated"],
    registers: [this.registry],
  });
  readonly rotationReconcileError = new Counter({
    name: "rotation_reconcile_error_total",
    help: "Failed refreshes of mounted volumes (old content kept)",
    labelNames: ["provider", "error_type", "os_type", "rotated"],
    registers: [this.registry],
  });
  readonly rotationReconcileDuration = new Histogram({
    name: "rotation_reconcile_duration_sec",
    help: "Duration of a volume refresh in seconds",
    labelNames: ["os_type"],
    buckets: ROTATION_BUCKETS,
    registers: [this.registry],
  });
  readonly syncK8sSecret = new Counter({
    name: "sync_k8s_secret_total",
    help: "Kubernetes Secrets created or updated from mounted content",
    labelNames: ["provider", "os_type"],
    registers: [this.registry],
  });
  readonly syncK8sSecretDuration = new Histogram({
    name: "k8s_secret_duration_sec",
    help: "Duration of a Kubernetes Secret sync in seconds",
    labelNames: ["os_type"],
    buckets: ROTATION_BUCKETS,
    registers: [this.registry],
  });
  readonly syncK8sSecretError = new Counter({
    name: "sync_k8s_secret_error_total",
    help: "Failed Kubernetes Secret syncs",
    labelNames: ["provider", "error_type", "os_type"],
    registers: [this.registry],
  });

  /** Whether a provider is installed on this node; until told, none is. */
  private installed: (provider: string) => boolean = () => false;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectProcessMetrics(this.registry);
  }

  /** Says how to tell the providers installed on this node (ProviderClients.isInstalled). */
  knowProviders(installed: (provider: string) => boolean): void {
    this.installed = installed;
  }

  /** The provider label value: the provider when installed on this node, "" when not known yet, else "other". */
  providerLabel(provider: string): string {
    if (provider === "") return "";
    return this.installed(provider) ? provider : OTHER_PROVIDER;
  }
}
