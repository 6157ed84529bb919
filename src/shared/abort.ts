// An abort signal for one operation: it aborts when any parent signal aborts
// or when the time is up, and dispose() releases its timer and its listeners
// on the parents as soon as the operation is over. AbortSignal.timeout() and
// AbortSignal.any() hold theirs until the timeout fires or the parents are
// collected, so a busy program that sets one per request keeps tens of
// thousands of timers and signals alive (about 2 KiB each).

export interface ScopedSignal {
  signal: AbortSignal;
  dispose(): void;
}

export function scopedSignal(parents: ReadonlyArray<AbortSignal | undefined>, timeoutMs?: number): ScopedSignal {
  const controller = new AbortController();
  const live = parents.filter((p): p is AbortSignal => p !== undefined);
  const onAbort = function (this: AbortSignal) {
    controller.abort(this.reason);
  };
  let timer: NodeJS.Timeout | undefined;
  const dispose = () => {
    if (timer) clearTimeout(timer);
    for (const p of live) p.removeEventListener("abort", onAbort);
  };
  const aborted = live.find((p) => p.aborted);
  if (aborted) {
    controller.abort(aborted.reason);
    return { signal: controller.signal, dispose: () => undefined };
  }
  for (const p of live) p.addEventListener("abort", onAbort, { once: true });
  if (timeoutMs !== undefined) {
    timer = setTimeout(() => controller.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")), Math.max(0, timeoutMs));
    timer.unref();
  }
  controller.signal.addEventListener("abort", dispose, { once: true });
  return { signal: controller.signal, dispose };
}

/** Waits ms, or less when the signal aborts first; never rejects. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
