#!/usr/bin/env node
// secrets-store-csi-driver: the CSI node plugin kubelet calls to mount
// SecretProviderClass volumes.
import { FlagError, usage } from "../shared/cli/flags.ts";
import { createLogger } from "../shared/logger.ts";
import { onShutdown } from "../shared/cli/shutdown.ts";
import { BUILD_DATE, BUILD_VERSION, GIT_COMMIT } from "../shared/cli/version.ts";
import { startDriver } from "./driver.ts";
import { checkDriverOptions, DRIVER_FLAGS, parseDriverOptions } from "./options.ts";

async function main(): Promise<void> {
  let options;
  try {
    options = parseDriverOptions(process.argv.slice(2));
    if (options.help) {
      process.stdout.write(usage("secrets-store-csi-driver", DRIVER_FLAGS) + "\n");
      return;
    }
    if (options.version) {
      process.stdout.write(JSON.stringify({ BuildVersion: BUILD_VERSION, GitCommit: GIT_COMMIT, BuildDate: BUILD_DATE }) + "\n");
      return;
    }
    checkDriverOptions(options);
  } catch (err) {
    if (err instanceof FlagError || err instanceof Error) {
      console.error(`secrets-store-csi-driver: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({ name: "secrets-store-csi-driver" });
  const driver = await startDriver(options, { logger });
  onShutdown(logger, () => driver.stop());
}

main().catch((err: unknown) => {
  console.error(`secrets-store-csi-driver: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
