#!/usr/bin/env node
// keyvault-emulator: serves the Key Vault data plane, Entra ID and the admin
// endpoints over HTTPS (own CA, written to <data-dir>/ca.pem) and IMDS over
// plain HTTP, seeded from a JSON/YAML file. Clients reach the real host names
// via `node --import <repo>/src/emulator/dns-hook.ts` (or /etc/hosts), and
// trust the CA with NODE_EXTRA_CA_CERTS=<data-dir>/ca.pem.
import { parseListenAddress } from "../shared/grpc/endpoint.ts";
import { FlagError, parseFlags, usage, type FlagSpecs } from "../shared/cli/flags.ts";
import { createLogger } from "../shared/logger.ts";
import { onShutdown } from "../shared/cli/shutdown.ts";
import { DEFAULT_TENANT_ID, loadSeedFile, startEmulator } from "./index.ts";

const FLAGS = {
  listen: { kind: "string", default: "127.0.0.1:8443", usage: "HTTPS listen address host:port (use port 443 so SDK URLs without a port work; port 0 = random)" },
  "imds-listen": { kind: "string", default: "127.0.0.1:8480", usage: "plain-HTTP IMDS listen address host:port (port 0 = random)" },
  seed: { kind: "string", default: "", usage: "seed file (JSON or YAML): vaults, secrets, keys, certificates, applications, managed identities, role assignments" },
  "data-dir": { kind: "string", default: "", usage: "directory for ca.pem (default: a new temporary directory)" },
  "dns-suffix": { kind: "string", default: "", usage: "extra Key Vault DNS suffixes, comma separated (e.g. vault.emu)" },
  "tenant-id": { kind: "string", default: DEFAULT_TENANT_ID, usage: "tenant of vaults and principals that name none" },
  "cluster-id": { kind: "string", default: "", usage: "AKS cluster id of identity binding's API server certificate (default: random)" },
  "log-level": { kind: "string", default: "info", usage: "log level: trace, debug, info, warn, error" },
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
  const seed = flags.seed ? await loadSeedFile(flags.seed) : undefined;
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
      env: { NODE_EXTRA_CA_CERTS: emulator.caCertPath, AZURE_POD_IDENTITY_AUTHORITY_HOST: emulator.imdsEndpoint, SSCSI_EMULATOR_ADDRESS: listen.host ?? "127.0.0.1" },
    },
    "keyvault emulator ready",
  );
  onShutdown(logger, () => emulator.close());
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`keyvault-emulator: ${err instanceof FlagError || err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
});
