#!/usr/bin/env node
// secrets-store-csi-provider-azure: the Azure Key Vault provider for the
// Secrets Store CSI driver. Flags follow the upstream provider's.
import { createLogger } from "../shared/logger.ts";
import { FlagError, parseFlags, usage, type FlagSpecs } from "../shared/flags.ts";
import { onShutdown } from "../shared/shutdown.ts";
import { BUILD_DATE, BUILD_VERSION } from "../shared/version.ts";
import { checkCloudName, resolveCloud } from "./cloud.ts";
import { ProviderServer, startProviderHttp } from "./server.ts";

type FlagValue = string | number | boolean;
const port = (value: FlagValue): string | undefined =>
  Number.isInteger(value) && Number(value) >= 0 && Number(value) <= 65535 ? undefined : "must be a port number (0-65535)";
const positive = (value: FlagValue): string | undefined => (Number(value) > 0 ? undefined : "must be greater than zero");

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
  "prometheus-port": { kind: "int", default: 8898, usage: "port of the Prometheus /metrics server", validate: port },
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
  "max-cached-identities": { kind: "int", default: 256, usage: "identities whose credentials and Key Vault clients are kept", validate: positive },
  "identity-idle-timeout": { kind: "duration", default: 3_600_000, usage: "drop a cached identity unused for this long", validate: positive },
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
    if (flags["cloud-name"].toUpperCase() === "AZURESTACKCLOUD") await resolveCloud(flags["cloud-name"], undefined);
  } catch (err) {
    console.error(`secrets-store-csi-provider-azure: --cloud-name: ${(err as Error).message}`);
    process.exit(2);
  }

  const provider = new ProviderServer(
    {
      endpoint: flags.endpoint,
      cloudName: flags["cloud-name"],
      constructPemChain: flags["construct-pem-chain"],
      writeCertAndKeyInSeparateFiles: flags["write-cert-and-key-in-separate-files"],
      concurrency: flags["mount-concurrency"],
      budgetRequests: flags["keyvault-request-budget"],
      budgetWindowMs: flags["keyvault-request-budget-window"],
      maxIdentities: flags["max-cached-identities"],
      identityIdleMs: flags["identity-idle-timeout"],
    },
    logger,
  );
  // the socket is created owner-only (upstream binds under umask 0077)
  const umask = process.umask(0o077);
  try {
    await provider.start();
  } finally {
    process.umask(umask);
  }
  const http = await startProviderHttp(provider, {
    metricsPort: flags["prometheus-port"],
    healthPort: flags["healthz-port"],
    healthPath: flags["healthz-path"],
    healthTimeoutMs: flags["healthz-timeout"],
  });
  logger.info(
    { version: BUILD_VERSION, endpoint: flags.endpoint, metricsPort: http.metrics.port, healthPort: http.health.port, cloud: flags["cloud-name"] },
    "provider started",
  );
  onShutdown(logger, async () => {
    await http.close();
    await provider.stop();
  });
}

main().catch((err: unknown) => {
  console.error(`secrets-store-csi-provider-azure: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
