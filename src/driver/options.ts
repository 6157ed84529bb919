// The driver's flags: upstream's names and defaults (reference driver-spec §1),
// plus --health-addr, --tmpfs-size and --enable-secret-sync.
import { parseFlags, type FlagSpec } from "../shared/cli/flags.ts";
import { parseEndpoint, parseListenAddress } from "../shared/grpc/endpoint.ts";

const QUANTITY = /^(\d+)(Ki|Mi|Gi|k|M|G)?$/;
const QUANTITY_FACTOR: Record<string, number> = { "": 1, k: 1e3, M: 1e6, G: 1e9, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };

/** Parses a Kubernetes-style quantity such as "16Mi" into bytes. */
export function parseQuantity(text: string): number {
  const m = QUANTITY.exec(text.trim());
  if (!m) throw new Error(`invalid size "${text}" (examples: 16Mi, 1Gi)`);
  return Number(m[1]) * QUANTITY_FACTOR[m[2] ?? ""]!;
}

/** The shortest exact quantity for a byte count ("64Mi", "1536Ki", "1000"). */
export function formatQuantity(bytes: number): string {
  for (const [unit, factor] of [["Gi", 1024 ** 3], ["Mi", 1024 ** 2], ["Ki", 1024]] as const) {
    if (bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return String(bytes);
}

const checkEndpoint = (v: string) => {
  try {
    parseEndpoint(v);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
};
const checkListen = (v: string) => {
  if (v === "" || v === "0") return undefined;
  try {
    parseListenAddress(v);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
};

export const DRIVER_FLAGS = {
  endpoint: { kind: "string", default: "unix://tmp/csi.sock", usage: "CSI endpoint (unix:///path or tcp://host:port)", validate: checkEndpoint } as FlagSpec<"string">,
  drivername: {
    kind: "string",
    default: "secrets-store.csi.k8s.io",
    usage: "name of the CSI driver",
    validate: (v: string) =>
      /^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,61}[a-zA-Z0-9])?$/.test(v) ? undefined : "must be a domain-style name of at most 63 characters",
  } as FlagSpec<"string">,
  nodeid: { kind: "string", default: "", usage: "name of this node (usually $(KUBE_NODE_NAME))" } as FlagSpec<"string">,
  "log-format-json": { kind: "bool", default: true, usage: "accepted for compatibility; logs are always JSON" } as FlagSpec<"bool">,
  "provider-volume": { kind: "string", default: "/var/run/secrets-store-csi-providers", usage: "directory of provider sockets" } as FlagSpec<"string">,
  "additional-provider-volume-paths": {
    kind: "string",
    default: "/etc/kubernetes/secrets-store-csi-providers",
    usage: "comma-separated directories searched for provider sockets before --provider-volume",
  } as FlagSpec<"string">,
  "metrics-addr": { kind: "string", default: ":8095", usage: "Prometheus metrics listen address", validate: checkListen } as FlagSpec<"string">,
  "metrics-backend": {
    kind: "string",
    default: "Prometheus",
    usage: "metrics backend (only prometheus)",
    validate: (v: string) => (v.toLowerCase() === "prometheus" ? undefined : `unsupported metrics backend ${v}`),
  } as FlagSpec<"string">,
  "health-addr": { kind: "string", default: ":9808", usage: "listen address of /healthz (empty to disable)", validate: checkListen } as FlagSpec<"string">,
  "enable-secret-rotation": { kind: "bool", default: false, usage: "refresh mounted content every --rotation-poll-interval" } as FlagSpec<"bool">,
  "rotation-poll-interval": {
    kind: "duration",
    default: 120_000,
    usage: "how often mounted content is refreshed",
    validate: (v: number) => (v >= 1000 ? undefined : "must be at least 1s"),
  } as FlagSpec<"duration">,
  "enable-secret-sync": { kind: "bool", default: true, usage: "mirror secretObjects into Kubernetes Secrets" } as FlagSpec<"bool">,
  "max-call-recv-msg-size": {
    kind: "int",
    default: 4 * 1024 * 1024,
    usage: "largest provider response accepted, in bytes",
    validate: (v: number) => (v > 0 ? undefined : "must be positive"),
  } as FlagSpec<"int">,
  "tmpfs-size": {
    kind: "string",
    default: "64Mi",
    usage: "size limit of each volume's tmpfs",
    validate: (v: string) => {
      try {
        return parseQuantity(v) >= 4096 ? undefined : "must be at least 4Ki";
      } catch (err) {
        return (err as Error).message;
      }
    },
  } as FlagSpec<"string">,
  "provider-health-check": { kind: "bool", default: false, usage: "periodically call Version on providers in use" } as FlagSpec<"bool">,
  "provider-health-check-interval": {
    kind: "duration",
    default: 120_000,
    usage: "provider health check period",
    validate: (v: number) => (v >= 1000 ? undefined : "must be at least 1s"),
  } as FlagSpec<"duration">,
  "enable-pprof": { kind: "bool", default: false, usage: "accepted for compatibility; no effect" } as FlagSpec<"bool">,
  "pprof-port": { kind: "int", default: 6065, usage: "accepted for compatibility; no effect" } as FlagSpec<"int">,
  kubeconfig: { kind: "string", default: "", usage: "kubeconfig path (default: $KUBECONFIG, then in-cluster)" } as FlagSpec<"string">,
  "kubelet-dir": {
    kind: "string",
    default: "/var/lib/kubelet",
    usage: "kubelet's --root-dir; every target path must lie under <kubelet-dir>/pods/",
    validate: (v: string) => (v.startsWith("/") ? undefined : "must be an absolute path"),
  } as FlagSpec<"string">,
  "register-with-kubelet": {
    kind: "bool",
    default: false,
    usage:
      "serve kubelet's plugin registration API on <kubelet-dir>/plugins_registry/<drivername>-reg.sock, in place of the node-driver-registrar sidecar; --endpoint must then be the socket's path on the node",
  } as FlagSpec<"bool">,
  "secret-provider-class-dir": {
    kind: "string",
    default: "",
    usage: "standalone mode: read SecretProviderClasses from YAML files here instead of the Kubernetes API (no sync, status only logged)",
  } as FlagSpec<"string">,
  version: { kind: "bool", default: false, usage: "print the version and exit" } as FlagSpec<"bool">,
  help: { kind: "bool", default: false, usage: "print the flags and exit" } as FlagSpec<"bool">,
};

/** klog flags upstream manifests pass; accepted and ignored. */
export const IGNORED_FLAGS = ["v", "vmodule", "logtostderr", "alsologtostderr", "stderrthreshold", "log_dir", "log_file"];

export interface DriverOptions {
  endpoint: string;
  drivername: string;
  nodeId: string;
  providerDirs: string[];
  metricsAddr: string;
  healthAddr: string;
  enableSecretRotation: boolean;
  rotationPollIntervalMs: number;
  enableSecretSync: boolean;
  maxCallRecvMsgSize: number;
  tmpfsSizeBytes: number;
  providerHealthCheck: boolean;
  providerHealthCheckIntervalMs: number;
  kubeconfig: string | undefined;
  /** kubelet's root directory (targets are confined to its pods/ folder). */
  kubeletDir: string;
  /** Serve kubelet's plugin registration API ourselves (no registrar sidecar). */
  registerWithKubelet: boolean;
  secretProviderClassDir: string | undefined;
}

export function parseDriverOptions(argv: readonly string[]): DriverOptions & { version: boolean; help: boolean } {
  const f = parseFlags(argv, DRIVER_FLAGS, IGNORED_FLAGS);
  const additional = f["additional-provider-volume-paths"].split(",").map((p) => p.trim()).filter((p) => p !== "");
  return {
    endpoint: f.endpoint,
    drivername: f.drivername,
    nodeId: f.nodeid,
    providerDirs: [...additional, f["provider-volume"]],
    metricsAddr: f["metrics-addr"],
    healthAddr: f["health-addr"],
    enableSecretRotation: f["enable-secret-rotation"],
    rotationPollIntervalMs: f["rotation-poll-interval"],
    enableSecretSync: f["enable-secret-sync"],
    maxCallRecvMsgSize: f["max-call-recv-msg-size"],
    tmpfsSizeBytes: parseQuantity(f["tmpfs-size"]),
    providerHealthCheck: f["provider-health-check"],
    providerHealthCheckIntervalMs: f["provider-health-check-interval"],
    kubeconfig: f.kubeconfig || undefined,
    kubeletDir: f["kubelet-dir"].replace(/\/+$/, "") || "/",
    registerWithKubelet: f["register-with-kubelet"],
    secretProviderClassDir: f["secret-provider-class-dir"] || undefined,
    version: f.version,
    help: f.help,
  };
}

/** Start-up checks that need more than one flag. */
export function checkDriverOptions(options: DriverOptions): void {
  if (!options.nodeId) throw new Error("--nodeid is required: pass the node name, e.g. --nodeid=$(KUBE_NODE_NAME)");
  if (options.registerWithKubelet && parseEndpoint(options.endpoint).kind !== "unix") {
    throw new Error(`--register-with-kubelet needs a unix:// --endpoint (kubelet dials its path), not ${options.endpoint}`);
  }
}
