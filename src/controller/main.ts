#!/usr/bin/env node
// secrets-store-sync-controller: keeps Kubernetes Secrets in sync with a
// secrets store, without any pod mounting a volume, for SecretSync objects
// (secret-sync.x-k8s.io/v1alpha1, the API of
// kubernetes-sigs/secrets-store-sync-controller). It calls the provider named
// by each SecretSync's SecretProviderClass over the provider's unix socket,
// usually a sidecar in the same pod. Optionally it receives Key Vault events
// (Event Grid push or pull) to rotate at once, and restarts workloads whose
// secrets changed.
import { FlagError, usage } from "../shared/cli/flags.ts";
import { onShutdown } from "../shared/cli/shutdown.ts";
import { BUILD_DATE, BUILD_VERSION, GIT_COMMIT } from "../shared/cli/version.ts";
import { createLogger } from "../shared/logger.ts";
import { startController } from "./controller.ts";
import { CONTROLLER_FLAGS, checkControllerOptions, parseControllerOptions } from "./options.ts";

const PROGRAM = "secrets-store-sync-controller";

async function main(): Promise<void> {
  let options;
  try {
    options = parseControllerOptions(process.argv.slice(2));
    if (options.help) {
      process.stdout.write(usage(PROGRAM, CONTROLLER_FLAGS) + "\n");
      return;
    }
    if (options.version) {
      process.stdout.write(JSON.stringify({ BuildVersion: BUILD_VERSION, GitCommit: GIT_COMMIT, BuildDate: BUILD_DATE }) + "\n");
      return;
    }
    checkControllerOptions(options);
  } catch (err) {
    if (err instanceof FlagError || err instanceof Error) {
      console.error(`${PROGRAM}: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({ name: PROGRAM });
  const controller = await startController(options, {
    logger,
    onLeadershipLost: () => {
      // As controller-runtime does: a replica that lost its Lease exits, and
      // comes back as a stand-by.
      logger.error("leadership lost; exiting");
      void controller.stop().finally(() => process.exit(1));
    },
    onFatal: () => {
      void controller.stop().finally(() => process.exit(1));
    },
  });
  onShutdown(logger, () => controller.stop());
}

main().catch((err: unknown) => {
  console.error(`${PROGRAM}: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
