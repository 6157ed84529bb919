// Applies the fault injector's decision to one exchange: waits the injected
// latency, then drops the connection or answers with the service's own
// throttling / server error, and counts what it did.
import type { FaultDecision, FaultInjector } from "../fault-injector.ts";
import type { RequestCounters } from "../request-counters.ts";
import type { ServiceError } from "../errors/service-error.ts";
import type { Exchange } from "./exchange.ts";

export type FailureFactory = (failure: Exclude<FaultDecision["failure"], { kind: "drop" } | undefined>) => ServiceError;

/** Returns true when the fault ended the exchange. */
export async function applyFaults(
  exchange: Exchange,
  faults: FaultInjector,
  counters: RequestCounters,
  toError: FailureFactory,
): Promise<boolean> {
  const decision = faults.decide(exchange.operation, exchange.vault);
  if (decision.delayMs > 0) {
    counters.increment("fault:latency", exchange.operation);
    await new Promise((resolve) => setTimeout(resolve, decision.delayMs));
  }
  const failure = decision.failure;
  if (!failure) return false;
  if (failure.kind === "drop") {
    counters.increment("fault:drop", exchange.operation);
    exchange.drop();
    return true;
  }
  counters.increment(`fault:${failure.kind}`, exchange.operation);
  exchange.sendError(toError(failure));
  return true;
}
