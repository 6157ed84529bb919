// The controller's metrics. Every label value comes from a fixed set written
// here (outcomes, condition reasons): no namespace, name, class or provider
// chosen by a tenant ever becomes a label, so the number of series is fixed.
import { Counter, Gauge, Histogram, Registry, collectProcessMetrics } from "../shared/http/prometheus.ts";

export type ReconcileOutcome = "created" | "updated" | "unchanged" | "failed";

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({
    name: "secretsync_reconcile_total",
    help: "Reconciles of SecretSyncs by outcome: created, updated (the Secret was written), unchanged (nothing to write), failed",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: "secretsync_reconcile_errors_total",
    help: "Failed reconciles by condition reason (upstream's reasons)",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: "secretsync_reconcile_duration_seconds",
    help: "Time to reconcile one SecretSync, by outcome",
    labelNames: ["outcome"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly providerCalls = new Counter({
    name: "secretsync_provider_calls_total",
    help: "Mount calls to providers by outcome (one call serves every SecretSync of a class and service account)",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly providerAnswersShared = new Counter({
    name: "secretsync_provider_answers_shared_total",
    help: "Reconciles served by a provider answer another SecretSync of the same class and service account fetched",
    registers: [this.registry],
  });
  readonly tokenRequests = new Counter({
    name: "secretsync_token_requests_total",
    help: "TokenRequests sent for service accounts of SecretSyncs",
    registers: [this.registry],
  });
  readonly secretWrites = new Counter({
    name: "secretsync_secret_writes_total",
    help: "Server-side applies of synced Secrets by result: created or updated",
    labelNames: ["result"],
    registers: [this.registry],
  });
  readonly secretSyncs = new Gauge({
    name: "secretsync_objects",
    help: "SecretSyncs the controller knows",
    registers: [this.registry],
  });
  readonly rotationGroups = new Gauge({
    name: "secretsync_rotation_groups",
    help: "Distinct (namespace, class, service account) groups rotating together",
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: "secretsync_queue_depth",
    help: "SecretSyncs waiting to be reconciled",
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: "secretsync_leader",
    help: "1 while this replica leads (syncs), 0 while it stands by",
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectProcessMetrics(this.registry);
    this.leader.set(0);
  }
}
