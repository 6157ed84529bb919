// The steps of a CSI call or a provider Mount, published on one diagnostics
// channel ("sscsi:step"), so that a benchmark can time each step of the
// running program from outside (bench/trace-hook.ts, loaded with --import)
// without a build of its own. Nobody subscribes in production: a step then
// costs one property read and runs its function directly.
import { tracingChannel } from "node:diagnostics_channel";

/** What a subscriber sees: the step's name, set once per call. */
export interface TraceStep {
  step: string;
}

export const TRACE_CHANNEL = "sscsi:step";

const channel = tracingChannel<unknown, TraceStep>(TRACE_CHANNEL);

/** Runs `fn` as the step `name`; its duration is its promise's settling. */
export function traceStep<T>(name: string, fn: () => Promise<T>): Promise<T> {
  if (!channel.hasSubscribers) return fn();
  return channel.tracePromise(fn, { step: name });
}

/** Runs the synchronous `fn` as the step `name`. */
export function traceStepSync<T>(name: string, fn: () => T): T {
  if (!channel.hasSubscribers) return fn();
  return channel.traceSync(fn, { step: name });
}
