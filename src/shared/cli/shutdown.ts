// Graceful shutdown on SIGTERM/SIGINT: run the stop hooks once, then exit.
import type { Logger } from "pino";

export function onShutdown(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        // the message only: a minified program's class names say nothing
        logger.error({ error: err instanceof Error ? err.message : String(err) }, "shutdown failed");
        process.exit(1);
      });
  };
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
}
