// The controller's metrics. Every label value comes from a fixed set written
// here (outcomes, condition reasons, event kinds, Key Vault object types):
// no namespace, name, class, provider, vault or object named by a tenant or
// by an event ever becomes a label, so the number of series is fixed.
import { Counter, Gauge, Histogram, Registry, collectProcessMetrics } from "../shared/http/prometheus.ts";

/** The expiry figures of the objects in use (events/expiry.ts). */
export interface ExpirySource {
  fewestDaysLeft(): Iterable<[objectType: string, days: number]>;
  counts(): Iterable<{ objectType: string; state: "near_expiry" | "expired"; count: number }>;
}

export type ReconcileOutcome = "created" | "updated" | "unchanged" | "failed";

/** Where an event came from. */
export type EventSource = "webhook" | "pull";
/** The kinds of Key Vault events, and "other" for anything else delivered. */
export type EventKindLabel = "NewVersionCreated" | "NearExpiry" | "Expired" | "VaultAccessPolicyChanged" | "other";
/** What became of one event. */
export type EventOutcome =
  | "refreshed"
  | "current"
  | "warned"
  | "duplicate"
  | "stale"
  | "unused"
  | "not_yet_valid"
  | "rate_limited"
  | "ignored"
  | "malformed"
  | "failed";
/** What became of one webhook request. */
export type DeliveryResult = "accepted" | "handshake" | "unauthorized" | "bad_request" | "too_large" | "busy" | "failed";

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
  readonly events = new Counter({
    name: "keyvault_events_total",
    help: "Key Vault events received, by source (webhook, pull), kind and outcome (refreshed, current, warned, duplicate, stale, unused, not_yet_valid, rate_limited, ignored, malformed, failed)",
    labelNames: ["source", "kind", "outcome"],
    registers: [this.registry],
  });
  readonly deliveries = new Counter({
    name: "keyvault_event_deliveries_total",
    help: "Webhook requests by result: accepted, handshake, unauthorized, bad_request, too_large, busy, failed",
    labelNames: ["result"],
    registers: [this.registry],
  });
  readonly pullReceives = new Counter({
    name: "keyvault_event_receives_total",
    help: "Receive calls to the Event Grid namespace topic by outcome (events, empty, failed)",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly eventRefreshes = new Counter({
    name: "keyvault_event_refreshes_total",
    help: "Refreshes events caused: SecretSyncs synced again, and nodes asked to refresh volumes",
    labelNames: ["target"],
    registers: [this.registry],
  });
  readonly eventHandling = new Histogram({
    name: "keyvault_event_handling_seconds",
    help: "Time from an event's arrival to its SecretSyncs synced and its nodes signalled",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly expiryDays: Gauge<"object_type">;
  readonly objectsNearExpiry: Gauge<"object_type" | "state">;
  readonly eventMemory: Gauge<"kind">;
  readonly restarts = new Counter({
    name: "secretsync_workload_restarts_total",
    help: "Workloads rolled because content they follow changed, by kind (Deployment, StatefulSet, DaemonSet) and what changed (secretproviderclass, secret)",
    labelNames: ["kind", "trigger"],
    registers: [this.registry],
  });
  readonly restartsDelayed = new Counter({
    name: "secretsync_workload_restarts_delayed_total",
    help: "Rollouts held back by the minimum interval between two rollouts of one workload",
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: "secretsync_leader",
    help: "1 while this replica leads (syncs), 0 while it stands by",
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean; expiry?: ExpirySource } = {}) {
    if (options.defaultMetrics ?? true) collectProcessMetrics(this.registry);
    this.leader.set(0);
    const expiry = () => options.expiry ?? this.expirySource;
    this.expiryDays = new Gauge({
      name: "keyvault_object_expiry_days",
      help: "Fewest days left before expiry among the objects in use that Key Vault reported near expiry or expired (negative: expired), by object type; absent when none",
      labelNames: ["object_type"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [objectType, days] of expiry()?.fewestDaysLeft() ?? []) this.set({ object_type: objectType }, days);
      },
    });
    const memory = () => this.eventMemorySource?.() ?? {};
    this.eventMemory = new Gauge({
      name: "keyvault_event_memory_entries",
      help: "What the event receiver remembers, each bounded by --max-tracked-events: event ids, object versions, objects, vaults; and events in flight",
      labelNames: ["kind"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [kind, count] of Object.entries(memory())) this.set({ kind }, count);
      },
    });
    this.objectsNearExpiry = new Gauge({
      name: "keyvault_objects_expiring",
      help: "Objects in use that Key Vault reported near expiry or expired and that have no newer version yet, by object type and state",
      labelNames: ["object_type", "state"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const { objectType, state, count } of expiry()?.counts() ?? []) this.set({ object_type: objectType, state }, count);
      },
    });
  }

  /** Set once the event receiver runs: where the expiry gauges read from. */
  expirySource: ExpirySource | undefined;
  /** Where the event memory gauge reads from. */
  eventMemorySource: (() => Record<string, number>) | undefined;
}
