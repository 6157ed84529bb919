// The controller's flags: upstream's names where upstream's controller has
// them (--provider-volume, --token-request-audience, --metrics-bind-address,
// --health-probe-bind-address, --leader-elect, --rotation-poll-interval), with
// our defaults where the issue asks for them (rotation every 2m, not 12h),
// plus the bounds of its caches. The pod's own name, uid and namespace come
// from the environment, as upstream's chart sets them with the downward API.
import { parseFlags, type FlagSpec } from "../shared/cli/flags.ts";
import { parseListenAddress } from "../shared/grpc/endpoint.ts";

const checkListen = (v: string) => {
  if (v === "" || v === "0") return undefined;
  try {
    parseListenAddress(v);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
};
const positive = (v: number) => (v > 0 ? undefined : "must be greater than zero");

export const CONTROLLER_FLAGS = {
  "provider-volume": { kind: "string", default: "/provider", usage: "directory of provider sockets (<provider>.sock)" } as FlagSpec<"string">,
  "token-request-audience": {
    kind: "string",
    default: "",
    usage: "comma-separated audiences of the service-account tokens passed to providers (e.g. api://AzureADTokenExchange)",
  } as FlagSpec<"string">,
  "metrics-bind-address": { kind: "string", default: ":8085", usage: "listen address of /metrics (empty to disable)", validate: checkListen } as FlagSpec<"string">,
  "health-probe-bind-address": {
    kind: "string",
    default: ":8081",
    usage: "listen address of /healthz and /readyz (empty to disable)",
    validate: checkListen,
  } as FlagSpec<"string">,
  "leader-elect": { kind: "bool", default: false, usage: "elect a leader through a Lease, so that only one replica syncs" } as FlagSpec<"bool">,
  "leader-election-namespace": {
    kind: "string",
    default: "",
    usage: "namespace of the Lease (default: the pod's namespace, $SYNC_CONTROLLER_POD_NAMESPACE)",
  } as FlagSpec<"string">,
  "leader-election-id": { kind: "string", default: "secrets-store-sync-controller-leader", usage: "name of the Lease" } as FlagSpec<"string">,
  "leader-elect-lease-duration": {
    kind: "duration",
    default: 15_000,
    usage: "how long a stand-by waits after the last renewal it saw before it takes the Lease over",
    validate: (v: number) => (v >= 1000 ? undefined : "must be at least 1s"),
  } as FlagSpec<"duration">,
  "leader-elect-renew-deadline": {
    kind: "duration",
    default: 10_000,
    usage: "how long the leader keeps trying to renew before it stops leading",
    validate: (v: number) => (v >= 500 ? undefined : "must be at least 500ms"),
  } as FlagSpec<"duration">,
  "leader-elect-retry-period": {
    kind: "duration",
    default: 2_000,
    usage: "how often the Lease is renewed or tried",
    validate: (v: number) => (v >= 100 ? undefined : "must be at least 100ms"),
  } as FlagSpec<"duration">,
  "rotation-poll-interval": {
    kind: "duration",
    default: 120_000,
    usage: "how often every SecretSync is synced again from its provider (a tenth of it added as jitter); 0 turns rotation off",
    validate: (v: number) => (v === 0 || v >= 1000 ? undefined : "must be 0 (off) or at least 1s"),
  } as FlagSpec<"duration">,
  "max-concurrent-reconciles": { kind: "int", default: 8, usage: "SecretSyncs reconciled at the same time", validate: positive } as FlagSpec<"int">,
  "max-call-recv-msg-size": {
    kind: "int",
    default: 4 * 1024 * 1024,
    usage: "largest provider answer accepted, in bytes",
    validate: positive,
  } as FlagSpec<"int">,
  "max-provider-answers": {
    kind: "int",
    default: 4096,
    usage: "provider answers kept, one per (namespace, class, service account); the least recently used goes first",
    validate: positive,
  } as FlagSpec<"int">,
  "max-service-account-tokens": {
    kind: "int",
    default: 4096,
    usage: "service-account tokens kept, one per (namespace, service account, audience)",
    validate: positive,
  } as FlagSpec<"int">,
  "event-webhook-bind-address": {
    kind: "string",
    default: "",
    usage: "listen address of the HTTPS endpoint for Key Vault events pushed by Event Grid (empty: no webhook); served by the leader only",
    validate: checkListen,
  } as FlagSpec<"string">,
  "event-webhook-tls-cert-file": { kind: "string", default: "", usage: "the webhook's serving certificate (PEM), read again when it changes" } as FlagSpec<"string">,
  "event-webhook-tls-key-file": { kind: "string", default: "", usage: "the webhook's private key (PEM)" } as FlagSpec<"string">,
  "event-webhook-query-secrets-file": {
    kind: "string",
    default: "",
    usage: "file with the webhook's query secret, one per line, two while rotating it (authenticates deliveries by ?<parameter>=<secret>)",
  } as FlagSpec<"string">,
  "event-webhook-query-parameter": { kind: "string", default: "code", usage: "the query parameter that carries the webhook's secret" } as FlagSpec<"string">,
  "event-webhook-tenant-id": { kind: "string", default: "", usage: "Entra ID tenant of the webhook's application (authenticates deliveries by bearer token)" } as FlagSpec<"string">,
  "event-webhook-audience": {
    kind: "string",
    default: "",
    usage: "comma-separated audiences the bearer token may carry: the webhook application's id and/or application id URI",
  } as FlagSpec<"string">,
  "event-webhook-authority-host": {
    kind: "string",
    default: "https://login.microsoftonline.com",
    usage: "Entra ID authority whose OpenID configuration publishes the token signing keys",
  } as FlagSpec<"string">,
  "event-namespace-endpoint": {
    kind: "string",
    default: "",
    usage: "Event Grid namespace endpoint to pull Key Vault events from (https://<namespace>.<region>-1.eventgrid.azure.net; empty: no pull)",
  } as FlagSpec<"string">,
  "event-namespace-topic": { kind: "string", default: "", usage: "the namespace topic Key Vault's system topic delivers to" } as FlagSpec<"string">,
  "event-namespace-subscription": { kind: "string", default: "", usage: "the topic's queue subscription the controller reads" } as FlagSpec<"string">,
  "event-namespace-client-id": {
    kind: "string",
    default: "",
    usage: "client id of the controller's identity for the namespace (default: $AZURE_CLIENT_ID, as workload identity sets it)",
  } as FlagSpec<"string">,
  "event-namespace-tenant-id": { kind: "string", default: "", usage: "tenant of that identity (default: $AZURE_TENANT_ID)" } as FlagSpec<"string">,
  "max-tracked-events": {
    kind: "int",
    default: 10_000,
    usage: "event ids, object versions and objects remembered for deduplication, each; the least recently used go first",
    validate: positive,
  } as FlagSpec<"int">,
  "restart-on-rotation": {
    kind: "bool",
    default: false,
    usage: "roll Deployments, StatefulSets and DaemonSets annotated to follow a SecretProviderClass or a synced Secret when its content changes",
  } as FlagSpec<"bool">,
  "restart-min-interval": {
    kind: "duration",
    default: 30_000,
    usage: "shortest time between two rollouts of one workload; a change within it is applied when it is over",
    validate: (v: number) => (v >= 0 ? undefined : "must not be negative"),
  } as FlagSpec<"duration">,
  kubeconfig: { kind: "string", default: "", usage: "kubeconfig path (default: $KUBECONFIG, then in-cluster)" } as FlagSpec<"string">,
  version: { kind: "bool", default: false, usage: "print the version and exit" } as FlagSpec<"bool">,
  help: { kind: "bool", default: false, usage: "print the flags and exit" } as FlagSpec<"bool">,
};

/** klog and zap flags upstream manifests pass; accepted and ignored. */
export const IGNORED_FLAGS = ["v", "vmodule", "logtostderr", "alsologtostderr", "zap-devel", "zap-encoder", "zap-log-level", "zap-stacktrace-level", "zap-time-encoding"];

export interface EventOptions {
  webhook?: {
    listen: string;
    certFile: string;
    keyFile: string;
    querySecretsFile?: string;
    queryParameter: string;
    entra?: { tenantId: string; audiences: string[]; authorityHost: string };
  };
  pull?: { endpoint: string; topic: string; subscription: string; clientId?: string; tenantId?: string };
  maxTracked: number;
}

export interface ControllerOptions {
  providerDir: string;
  audiences: string[];
  metricsAddr: string;
  healthAddr: string;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionId: string;
  lease: { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
  rotationIntervalMs: number;
  concurrency: number;
  maxCallRecvMsgSize: number;
  maxProviderAnswers: number;
  maxServiceAccountTokens: number;
  events: EventOptions;
  restart: { enabled: boolean; minIntervalMs: number };
  kubeconfig: string | undefined;
  pod: { name: string; uid: string; namespace: string };
}

export function parseControllerOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ControllerOptions & { version: boolean; help: boolean } {
  const f = parseFlags(argv, CONTROLLER_FLAGS, IGNORED_FLAGS);
  const pod = {
    name: env.SYNC_CONTROLLER_POD_NAME ?? "",
    uid: env.SYNC_CONTROLLER_POD_UID ?? "",
    namespace: env.SYNC_CONTROLLER_POD_NAMESPACE ?? "",
  };
  return {
    providerDir: f["provider-volume"],
    audiences: f["token-request-audience"].split(",").map((a) => a.trim()).filter((a) => a !== ""),
    metricsAddr: f["metrics-bind-address"],
    healthAddr: f["health-probe-bind-address"],
    leaderElect: f["leader-elect"],
    leaderElectionNamespace: f["leader-election-namespace"] || pod.namespace,
    leaderElectionId: f["leader-election-id"],
    lease: { leaseDurationMs: f["leader-elect-lease-duration"], renewDeadlineMs: f["leader-elect-renew-deadline"], retryPeriodMs: f["leader-elect-retry-period"] },
    rotationIntervalMs: f["rotation-poll-interval"],
    concurrency: f["max-concurrent-reconciles"],
    maxCallRecvMsgSize: f["max-call-recv-msg-size"],
    maxProviderAnswers: f["max-provider-answers"],
    maxServiceAccountTokens: f["max-service-account-tokens"],
    events: {
      ...(f["event-webhook-bind-address"]
        ? {
            webhook: {
              listen: f["event-webhook-bind-address"],
              certFile: f["event-webhook-tls-cert-file"],
              keyFile: f["event-webhook-tls-key-file"],
              querySecretsFile: f["event-webhook-query-secrets-file"] || undefined,
              queryParameter: f["event-webhook-query-parameter"],
              ...(f["event-webhook-tenant-id"] || f["event-webhook-audience"]
                ? {
                    entra: {
                      tenantId: f["event-webhook-tenant-id"],
                      audiences: f["event-webhook-audience"].split(",").map((a) => a.trim()).filter((a) => a !== ""),
                      authorityHost: f["event-webhook-authority-host"],
                    },
                  }
                : {}),
            },
          }
        : {}),
      ...(f["event-namespace-endpoint"] || f["event-namespace-topic"] || f["event-namespace-subscription"]
        ? {
            pull: {
              endpoint: f["event-namespace-endpoint"],
              topic: f["event-namespace-topic"],
              subscription: f["event-namespace-subscription"],
              clientId: f["event-namespace-client-id"] || undefined,
              tenantId: f["event-namespace-tenant-id"] || undefined,
            },
          }
        : {}),
      maxTracked: f["max-tracked-events"],
    },
    restart: { enabled: f["restart-on-rotation"], minIntervalMs: f["restart-min-interval"] },
    kubeconfig: f.kubeconfig || undefined,
    pod,
    version: f.version,
    help: f.help,
  };
}

/** Start-up checks that need more than one flag. */
export function checkControllerOptions(options: ControllerOptions): void {
  if (!options.pod.name || !options.pod.uid) {
    throw new Error(
      "SYNC_CONTROLLER_POD_NAME and SYNC_CONTROLLER_POD_UID must be set (the downward API's metadata.name and metadata.uid): providers receive them as the pod of each Mount",
    );
  }
  const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = options.lease;
  if (!(leaseDurationMs > renewDeadlineMs && renewDeadlineMs > retryPeriodMs)) {
    throw new Error("the leader election timings must satisfy lease duration > renew deadline > retry period (defaults 15s, 10s, 2s)");
  }
  const { webhook, pull } = options.events;
  if (webhook) {
    if (!webhook.certFile || !webhook.keyFile) throw new Error("--event-webhook-bind-address needs --event-webhook-tls-cert-file and --event-webhook-tls-key-file: Event Grid delivers over HTTPS only");
    if (!webhook.querySecretsFile && !webhook.entra) {
      throw new Error("--event-webhook-bind-address needs an authentication: --event-webhook-query-secrets-file, or --event-webhook-tenant-id with --event-webhook-audience, or both");
    }
    if (webhook.entra && (!webhook.entra.tenantId || webhook.entra.audiences.length === 0)) {
      throw new Error("Entra ID authentication of the webhook needs both --event-webhook-tenant-id and --event-webhook-audience");
    }
    if (!/^[A-Za-z0-9_.~-]{1,64}$/.test(webhook.queryParameter)) throw new Error(`--event-webhook-query-parameter "${webhook.queryParameter}" is not a plain query parameter name`);
  }
  if (pull) {
    if (!pull.endpoint || !pull.topic || !pull.subscription) {
      throw new Error("pulling events needs --event-namespace-endpoint, --event-namespace-topic and --event-namespace-subscription");
    }
    if (!/^https:\/\/[^/\s]+\/?$/.test(pull.endpoint)) throw new Error(`--event-namespace-endpoint "${pull.endpoint}" is not an https:// namespace endpoint`);
  }
  if (options.leaderElect && !options.leaderElectionNamespace) {
    throw new Error("--leader-elect needs the Lease's namespace: set SYNC_CONTROLLER_POD_NAMESPACE or --leader-election-namespace");
  }
}
