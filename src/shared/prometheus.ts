// prom-client's metric classes, imported from its own files rather than from
// its index. The index also loads Pushgateway (https, and with it tls) and
// AggregatorRegistry (cluster, child_process, dgram), which no program here
// uses: about 15 ms of the provider's start-up (measured with require() on
// Node 24) and memory on every node. The types are prom-client's own.
import type * as PromClient from "prom-client";
import CounterClass from "prom-client/lib/counter.js";
import collectDefaultMetricsFunction from "prom-client/lib/defaultMetrics.js";
import GaugeClass from "prom-client/lib/gauge.js";
import HistogramClass from "prom-client/lib/histogram.js";
import RegistryClass from "prom-client/lib/registry.js";

export const Registry = RegistryClass;
export type Registry = PromClient.Registry;
export const Counter = CounterClass;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export const Gauge = GaugeClass;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export const Histogram = HistogramClass;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;
export const collectDefaultMetrics = collectDefaultMetricsFunction;
