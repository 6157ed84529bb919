#!/usr/bin/env node
// secrets-store-csi-provider-azure: the Azure Key Vault provider for the
// Secrets Store CSI driver. Flags follow the upstream provider's, plus listen
// addresses and the bounds of one mount.
import { lstatSync, unlinkSync } from "node:fs";
import { parseEndpoint, parseListenAddress } from "../shared/grpc/endpoint.ts";
import { createLogger } from "../shared/logger.ts";
import { FlagError, parseFlags, usage, type FlagSpecs } from "../shared/cli/flags.ts";
import { onShutdown } from "../shared/cli/shutdown.ts";
import { BUILD_DATE, BUILD_VERSION } from "../shared/cli/version.ts";
import { DEFAULT_CLOUD_ENV_FILE_DIRS } from "./cloud/cloud-file.ts";
import { checkCloudName, resolveCloud } from "./cloud/cloud.ts";
import { DEFAULT_LIMITS } from "./objects/parameters.ts";
import { DEFAULT_CLUSTER_CA_FILE, DEFAULT_TOKEN_PROXY_URL, tokenProxyUrlProblem } from "./auth/token-proxy.ts";
import { DEFAULT_MAX_CACHED_VAULTS } from "./keyvault/keyvault.ts";
import { DEFAULT_MAX_METRIC_SERIES } from "./metrics.ts";
import { ListenError, ProviderServer, startProviderHttp } from "./server.ts";

type FlagValue = string | number | boolean;
const port = (value: FlagValue): string | undefined =>
  Number.isInteger(value) && Number(value) >= 0 && Number(value) <= 65535 ? undefined : "must be a port number (0-65535)";
const positive = (value: FlagValue): string | undefined => (Number(value) > 0 ? undefined : "must be greater than zero");
const listenAddress = (value: FlagValue): string | undefined => {
  if (value === "") return undefined;
  try {
    parseListenAddress(String(value));
    return undefined;
  } catch {
    return "must be [host]:port, e.g. 127.0.0.1:8898 or :8898";
  }
};

const FLAGS = {
  endpoint: { kind: "string", default: "unix:///tmp/azure.sock", usage: "gRPC endpoint: unix://<socket path> or tcp://<host:port>" },
  "healthz-port": { kind: "int", default: 8989, usage: "port of the HTTP health server", validate: port },
  "healthz-path": { kind: "string", default: "/healthz", usage: "path of the HTTP health check", validate: (v: FlagValue) => (String(v).startsWith("/") ? undefined : "must start with /") },
  "healthz-timeout": { kind: "duration", default: 5000, usage: "timeout of the gRPC health check done per HTTP probe", validate: positive },
  "metrics-backend": {
    kind: "string",
    default: "Prometheus",
    usage: "metrics backend (only prometheus)",
    validate: (v: FlagValue) => (String(v).toLowerCase() === "prometheus" ? undefined : "unsupported metrics backend (only prometheus)"),
  },
  "healthz-addr": {
    kind: "string",
    default: "",
    usage: "[host]:port of the HTTP health server; overrides --healthz-port (empty: all interfaces on --healthz-port)",
    validate: listenAddress,
  },
  "prometheus-port": { kind: "int", default: 8898, usage: "port of the Prometheus /metrics server", validate: port },
  "metrics-addr": {
    kind: "string",
    default: "",
    usage: "[host]:port of the Prometheus /metrics server; overrides --prometheus-port (empty: all interfaces on --prometheus-port)",
    validate: listenAddress,
  },
  "construct-pem-chain": { kind: "bool", default: true, usage: "order certificate chains from PKCS#12 secrets leaf → intermediates → root" },
  "write-cert-and-key-in-separate-files": { kind: "bool", default: false, usage: "also write <file>.crt and <file>.key for certificate-backed secrets" },
  "cloud-name": { kind: "string", default: "AzurePublicCloud", usage: "default cloud when a SecretProviderClass sets no cloudName" },
  "log-format-json": { kind: "bool", default: false, usage: "accepted for compatibility; logs are always JSON" },
  version: { kind: "bool", default: false, usage: "print the version as JSON and exit" },
  "keyvault-request-budget": {
    kind: "int",
    default: 2000,
    usage: "requests per --keyvault-request-budget-window sent to one vault at most; more wait in a queue (Key Vault allows 4000 per 10s)",
    validate: positive,
  },
  "keyvault-request-budget-window": { kind: "duration", default: 10_000, usage: "window of the per-vault request budget", validate: positive },
  "mount-concurrency": { kind: "int", default: 8, usage: "objects of one mount read from Key Vault at the same time", validate: positive },
  "max-cached-identities": { kind: "int", default: 256, usage: "identities whose credentials are kept", validate: positive },
  "max-cached-vaults": {
    kind: "int",
    default: DEFAULT_MAX_CACHED_VAULTS,
    usage: "identity and vault pairs whose Key Vault clients are kept, and vaults whose request budget is (least recently used dropped first)",
    validate: positive,
  },
  "identity-idle-timeout": { kind: "duration", default: 3_600_000, usage: "drop a cached identity, or Key Vault clients, unused for this long", validate: positive },
  "max-metric-series": {
    kind: "int",
    default: DEFAULT_MAX_METRIC_SERIES,
    usage: "series per metric whose labels name a Key Vault object or vault (keyvault_request, keyvault_http_requests_total, keyvault_budget_*); later names are counted as _other",
    validate: positive,
  },
  "cloud-env-file-dir": {
    kind: "string",
    default: DEFAULT_CLOUD_ENV_FILE_DIRS.join(","),
    usage: "directories (comma-separated) a SecretProviderClass's cloudEnvFileName may name a file in",
  },
  "max-objects-per-mount": { kind: "int", default: DEFAULT_LIMITS.maxObjects, usage: "objects one SecretProviderClass may list", validate: positive },
  "max-files-per-mount": {
    kind: "int",
    default: DEFAULT_LIMITS.maxFiles,
    usage: "files one mount may return (objectVersionHistory N counts N+1)",
    validate: positive,
  },
  "max-request-bytes": {
    kind: "int",
    default: DEFAULT_LIMITS.maxRequestBytes,
    usage: "bytes of parameters and secrets one Mount request may carry",
    validate: positive,
  },
  "token-proxy-url": {
    kind: "string",
    default: DEFAULT_TOKEN_PROXY_URL,
    usage: "identity binding (useAzureTokenProxy): URL of the cluster's token proxy, where token requests go instead of Entra ID",
    validate: (v: FlagValue) => tokenProxyUrlProblem(String(v)),
  },
  "sni-name": {
    kind: "string",
    default: "",
    usage: "identity binding: TLS server name of the token proxy (empty: derived from the API server's serving certificate)",
    validate: (v: FlagValue) => (String(v) === "" || /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/i.test(String(v)) ? undefined : "must be a DNS name"),
  },
  "token-proxy-ca-file": {
    kind: "string",
    default: DEFAULT_CLUSTER_CA_FILE,
    usage: "identity binding: the cluster CA the token proxy's and the API server's certificates are checked against",
  },
} satisfies FlagSpecs;

/** klog flags the upstream chart may pass; accepted and ignored. */
const IGNORED = ["v", "vmodule", "logtostderr", "alsologtostderr", "stderrthreshold", "log_dir", "log_file", "add_dir_header", "skip_headers", "one_output"];

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-help") || argv.includes("-h")) {
    process.stdout.write(usage("secrets-store-csi-provider-azure", FLAGS) + "\n");
    return;
  }
  let flags;
  try {
    flags = parseFlags(argv, FLAGS, IGNORED);
  } catch (err) {
    if (err instanceof FlagError) {
      console.error(`secrets-store-csi-provider-azure: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  if (flags.version) {
    process.stdout.write(JSON.stringify({ version: BUILD_VERSION, buildDate: BUILD_DATE }) + "\n");
    return;
  }
  const logger = createLogger({ name: "secrets-store-csi-provider-azure" });
  try {
    checkCloudName(flags["cloud-name"]);
    // AzureStackCloud as the default needs its file now, as upstream checks at start.
    if (flags["cloud-name"].toUpperCase() === "AZURESTACKCLOUD") await resolveCloud(flags["cloud-name"], undefined, { allowedDirs: [] });
  } catch (err) {
    console.error(`secrets-store-csi-provider-azure: --cloud-name: ${(err as Error).message}`);
    process.exit(2);
  }

  const provider = new ProviderServer(
    {
      endpoint: flags.endpoint,
      cloudName: flags["cloud-name"],
      cloudEnvFileDirs: flags["cloud-env-file-dir"].split(",").map((d) => d.trim()).filter(Boolean),
      limits: { maxObjects: flags["max-objects-per-mount"], maxFiles: flags["max-files-per-mount"], maxRequestBytes: flags["max-request-bytes"] },
      constructPemChain: flags["construct-pem-chain"],
      writeCertAndKeyInSeparateFiles: flags["write-cert-and-key-in-separate-files"],
      concurrency: flags["mount-concurrency"],
      budgetRequests: flags["keyvault-request-budget"],
      budgetWindowMs: flags["keyvault-request-budget-window"],
      maxIdentities: flags["max-cached-identities"],
      identityIdleMs: flags["identity-idle-timeout"],
      tokenProxy: { url: flags["token-proxy-url"], serverName: flags["sni-name"].toLowerCase(), caFile: flags["token-proxy-ca-file"] },
      maxCachedVaults: flags["max-cached-vaults"],
      maxMetricSeries: flags["max-metric-series"],
    },
    logger,
  );
  const endpoint = parseEndpoint(flags.endpoint);
  // the socket is created owner-only (upstream binds under umask 0077)
  const umask = process.umask(0o077);
  try {
    await provider.start();
  } catch (err) {
    fail(`cannot serve on ${flags.endpoint} (--endpoint): ${(err as Error).message}`);
  } finally {
    process.umask(umask);
  }
  if (endpoint.kind === "unix") removeSocketOnExit(endpoint.path);

  const metricsAddr = flags["metrics-addr"] || `:${flags["prometheus-port"]}`;
  const healthAddr = flags["healthz-addr"] || `:${flags["healthz-port"]}`;
  let http;
  try {
    http = await startProviderHttp(provider, {
      metricsAddr,
      healthAddr,
      healthPath: flags["healthz-path"],
      healthTimeoutMs: flags["healthz-timeout"],
    });
  } catch (err) {
    // Nobody would serve the socket: take it away so the driver says so.
    await provider.stop().catch(() => undefined);
    if (!(err instanceof ListenError)) throw err;
    const flag = err.which === "metrics" ? "--metrics-addr / --prometheus-port" : "--healthz-addr / --healthz-port";
    fail(`cannot listen on ${err.address} for ${err.which} (${flag}): ${describeListenError(err)}`);
  }
  logger.info(
    {
      version: BUILD_VERSION,
      endpoint: flags.endpoint,
      metricsAddr,
      metricsPort: http.metrics.port,
      healthAddr,
      healthPort: http.health.port,
      cloud: flags["cloud-name"],
    },
    "provider started",
  );
  onShutdown(logger, async () => {
    await http.close();
    await provider.stop();
  });
}

function fail(message: string): never {
  console.error(`secrets-store-csi-provider-azure: ${message}`);
  process.exit(1);
}

function describeListenError(err: ListenError): string {
  if (err.code === "EADDRINUSE") return "address already in use (another process has the port; pick another with the flag)";
  if (err.code === "EADDRNOTAVAIL") return "address not available on this host";
  if (err.code === "EACCES") return "permission denied";
  return err.message;
}

/**
 * Removes our socket however the process ends (a crash included), so the
 * driver never finds a socket nobody serves; a socket a newer provider made
 * at the same path is left alone.
 */
function removeSocketOnExit(path: string): void {
  let ino: number;
  try {
    ino = lstatSync(path).ino;
  } catch {
    return;
  }
  process.once("exit", () => {
    try {
      const st = lstatSync(path);
      if (st.isSocket() && st.ino === ino) unlinkSync(path);
    } catch {
      // already gone
    }
  });
}

main().catch((err: unknown) => {
  console.error(`secrets-store-csi-provider-azure: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
