// prom-client's metric classes, imported from its own files rather than from
// its index. The index also loads Pushgateway (https, and with it tls) and
// AggregatorRegistry (cluster, child_process, dgram), which no program here
// uses: about 15 ms of the provider's start-up (measured with require() on
// Node 24) and memory on every node. Each file's module.exports is the index's
// export of the same name, so the types are prom-client's own.
import type * as PromClient from "prom-client";
import counter from "prom-client/lib/counter.js";
import defaultMetrics from "prom-client/lib/defaultMetrics.js";
import gauge from "prom-client/lib/gauge.js";
import histogram from "prom-client/lib/histogram.js";
import registry from "prom-client/lib/registry.js";

export const Registry = registry as typeof PromClient.Registry;
export type Registry = PromClient.Registry;
export const Counter = counter as typeof PromClient.Counter;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export const Gauge = gauge as typeof PromClient.Gauge;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export const Histogram = histogram as typeof PromClient.Histogram;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;
const collectDefaultMetrics = defaultMetrics as typeof PromClient.collectDefaultMetrics;

/**
 * Node's process metrics (CPU, memory, handles, GC, event-loop delay) on a
 * registry. The event-loop delay is sampled by a timer every 100 ms rather
 * than prom-client's default 10 ms: at 10 ms an idle program woke 100 times a
 * second and spent 1.3% of a core doing nothing, on every node. A stall of the
 * loop still shows in the histogram's max when a sample falls in it, and in
 * nodejs_eventloop_lag_seconds, which is measured at each scrape.
 */
export function collectProcessMetrics(register: Registry): void {
  collectDefaultMetrics({ register, eventLoopMonitoringPrecision: 100 });
}
