// Parses manifest files off the main thread, one at a time, each within a
// time limit (--timeout) and a heap limit, so no single file (a mapping of a
// million keys, an alias bomb) can hold the run: the worker is stopped and the
// file reported, and the next file gets a fresh worker.
import { Worker } from "node:worker_threads";
import type { ManifestAnswer } from "./manifest-worker.ts";

/** The worker's heap: the YAML library needs about 100 MiB per MiB of YAML. */
const HEAP_MB = 1024;

export class ManifestParser {
  private worker: Worker | undefined;
  private readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /** The documents of `text` (as JSON values), or an error message for the file. */
  parse(text: string): Promise<ManifestAnswer> {
    const worker = (this.worker ??= new Worker(new URL("./manifest-worker.ts", import.meta.url), {
      resourceLimits: { maxOldGenerationSizeMb: HEAP_MB },
    }));
    return new Promise((resolve) => {
      const done = (answer: ManifestAnswer, stop: boolean) => {
        clearTimeout(timer);
        worker.removeListener("message", onMessage);
        worker.removeListener("error", onError);
        if (stop) {
          void worker.terminate();
          this.worker = undefined;
        }
        resolve(answer);
      };
      const onMessage = (answer: ManifestAnswer) => done(answer, false);
      const onError = (err: Error) =>
        done(
          {
            ok: false,
            message:
              (err as NodeJS.ErrnoException).code === "ERR_WORKER_OUT_OF_MEMORY"
                ? `needs more than ${HEAP_MB} MiB to parse: not read`
                : `could not be parsed (${err.name})`,
          },
          true,
        );
      const timer = setTimeout(() => done({ ok: false, message: `took more than ${this.timeoutMs / 1000} s to parse (--timeout): not read` }, true), this.timeoutMs);
      worker.on("message", onMessage);
      worker.on("error", onError);
      worker.postMessage(text);
    });
  }

  close(): void {
    void this.worker?.terminate();
    this.worker = undefined;
  }
}
