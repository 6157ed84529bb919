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
export const collectDefaultMetrics = defaultMetrics as typeof PromClient.collectDefaultMetrics;
