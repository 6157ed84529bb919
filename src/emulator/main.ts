#!/usr/bin/env node
// keyvault-emulator: serves the Key Vault data plane, Entra ID and the admin
// endpoints over HTTPS (own CA, written to <data-dir>/ca.pem) and IMDS over
// plain HTTP, seeded from a JSON/YAML file. Clients reach the real host names
// via `node --import <repo>/src/emulator/dns-hook.ts` (or /etc/hosts), and
// trust the CA with NODE_EXTRA_CA_CERTS=<data-dir>/ca.pem. Key Vault events
// go to the webhooks and namespace topics of --webhook, --cloudevents-webhook,
// --event-namespace and the seed, on Event Grid's clock scaled by
// --event-time-scale.
import { parseListenAddress } from "../shared/grpc/endpoint.ts";
import { FlagError, parseFlags, usage, type FlagSpecs } from "../shared/cli/flags.ts";
import { createLogger } from "../shared/logger.ts";
import { onShutdown } from "../shared/cli/shutdown.ts";
import { DEFAULT_TENANT_ID, loadSeedFile, startEmulator, type NamespaceConfig, type SeedDocument, type WebhookSubscriptionConfig } from "./index.ts";

const FLAGS = {
  listen: { kind: "string", default: "127.0.0.1:8443", usage: "HTTPS listen address host:port (use port 443 so SDK URLs without a port work; port 0 = random)" },
  "imds-listen": { kind: "string", default: "127.0.0.1:8480", usage: "plain-HTTP IMDS listen address host:port (port 0 = random)" },
  seed: { kind: "string", default: "", usage: "seed file (JSON or YAML): vaults, secrets, keys, certificates, applications, managed identities, role assignments" },
  "data-dir": { kind: "string", default: "", usage: "directory for ca.pem (default: a new temporary directory)" },
  "dns-suffix": { kind: "string", default: "", usage: "extra Key Vault DNS suffixes, comma separated (e.g. vault.emu)" },
  "tenant-id": { kind: "string", default: DEFAULT_TENANT_ID, usage: "tenant of vaults and principals that name none" },
  "cluster-id": { kind: "string", default: "", usage: "AKS cluster id of identity binding's API server certificate (default: random)" },
  "log-level": { kind: "string", default: "info", usage: "log level: trace, debug, info, warn, error" },
  "event-time-scale": {
    kind: "string",
    default: "1",
    usage: "Event Grid's clock: retry schedule, timeouts, locks and release delays times this factor (0 < x <= 1; 0.01 turns 10 s into 100 ms)",
    validate: (v) => {
      const scale = Number(v);
      return String(v).trim() !== "" && Number.isFinite(scale) && scale > 0 && scale <= 1 ? undefined : "a number greater than 0 and at most 1";
    },
  },
  webhook: { kind: "string", default: "", usage: "webhook subscriptions (Event Grid schema) for every vault's events: https URLs, comma separated" },
  "cloudevents-webhook": { kind: "string", default: "", usage: "webhook subscriptions in the CloudEvents 1.0 schema: https URLs, comma separated" },
  "event-namespace": {
    kind: "string",
    default: "",
    usage: "Event Grid namespace topics with a queue subscription receiving every vault's events: <namespace>/<topic>/<subscription>, comma separated",
  },
} satisfies FlagSpecs;

async function main(argv: string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h") || argv.includes("-help")) {
    console.error(usage("keyvault-emulator", FLAGS));
    return;
  }
  const flags = parseFlags(argv, FLAGS);
  const logger = createLogger({ name: "keyvault-emulator", level: flags["log-level"] });
  const listen = parseListenAddress(flags.listen);
  const imdsListen = parseListenAddress(flags["imds-listen"]);
  const seed = withFlagDestinations(flags.seed ? await loadSeedFile(flags.seed) : undefined, flags);
  const emulator = await startEmulator({
    host: listen.host ?? "0.0.0.0",
    port: listen.port,
    imdsHost: imdsListen.host ?? "0.0.0.0",
    imdsPort: imdsListen.port,
    dataDir: flags["data-dir"] || undefined,
    seed,
    extraDnsSuffixes: flags["dns-suffix"].split(",").map((s) => s.trim()).filter((s) => s !== ""),
    defaultTenantId: flags["tenant-id"],
    clusterId: flags["cluster-id"] || undefined,
    eventTimeScale: Number(flags["event-time-scale"]),
    logger,
  });
  const vaults = ((seed?.vaults ?? []) as Array<{ name: string }>).map((v) => emulator.vaultUrl(v.name));
  logger.info(
    {
      caCertPath: emulator.caCertPath,
      port: emulator.port,
      imdsEndpoint: emulator.imdsEndpoint,
      authorityHost: emulator.authorityHost,
      tenantId: emulator.tenantId,
      vaultUrls: vaults,
      identityBinding: emulator.identityBinding,
      eventTimeScale: emulator.events.timeScale,
      webhookSubscriptions: emulator.events.webhookSubscriptions().map((w) => ({ name: w.name, endpoint: w.endpointBaseUrl, state: w.provisioningState })),
      eventGridNamespaces: emulator.events.namespaces().map((n) => ({ name: n.name, endpoint: n.endpoint, topics: n.topics.map((t) => t.name) })),
      env: { NODE_EXTRA_CA_CERTS: emulator.caCertPath, AZURE_POD_IDENTITY_AUTHORITY_HOST: emulator.imdsEndpoint, SSCSI_EMULATOR_ADDRESS: listen.host ?? "127.0.0.1" },
    },
    "keyvault emulator ready",
  );
  onShutdown(logger, () => emulator.close());
}

/** Adds the destinations named by flags to the seed's. */
function withFlagDestinations(seed: SeedDocument | undefined, flags: { webhook: string; "cloudevents-webhook": string; "event-namespace": string }): SeedDocument | undefined {
  const list = (value: string): string[] => value.split(",").map((v) => v.trim()).filter((v) => v !== "");
  const webhooks: WebhookSubscriptionConfig[] = [
    ...list(flags.webhook).map((endpointUrl) => ({ endpointUrl, eventDeliverySchema: "EventGridSchema" as const })),
    ...list(flags["cloudevents-webhook"]).map((endpointUrl) => ({ endpointUrl, eventDeliverySchema: "CloudEventSchemaV1_0" as const })),
  ].map((w, i) => ({ name: `webhook-${i + 1}`, ...w }));
  const namespaces = new Map<string, NamespaceConfig>();
  for (const entry of list(flags["event-namespace"])) {
    const [namespace, topic, subscription, extra] = entry.split("/");
    if (!namespace || !topic || !subscription || extra !== undefined) throw new FlagError(`invalid --event-namespace entry "${entry}": use <namespace>/<topic>/<subscription>`);
    const config = namespaces.get(namespace) ?? { name: namespace, topics: [] };
    namespaces.set(namespace, config);
    let topicConfig = config.topics!.find((t) => t.name === topic);
    if (!topicConfig) config.topics!.push((topicConfig = { name: topic, subscriptions: [] }));
    topicConfig.subscriptions!.push({ name: subscription });
  }
  if (webhooks.length === 0 && namespaces.size === 0) return seed;
  return {
    ...seed,
    webhookSubscriptions: [...(seed?.webhookSubscriptions ?? []), ...webhooks],
    eventGridNamespaces: [...(seed?.eventGridNamespaces ?? []), ...namespaces.values()],
  };
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`keyvault-emulator: ${err instanceof FlagError || err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
});
