// Loaded into a program of ours with `node --import <this file> <bundle>`
// (bench/trace.ts does): records every step the program publishes on the
// "sscsi:step" diagnostics channel (src/shared/trace.ts), each HTTP request it
// makes (Node's http.client channels: API server, Key Vault, Entra ID), and
// the garbage collector's pauses, each with its start (ms since the epoch)
// and duration, and appends them as JSON lines to $SSCSI_TRACE_FILE when the
// program exits. Nothing of a request but its method, host and path is kept.
import { subscribe, tracingChannel } from "node:diagnostics_channel";
import { appendFileSync } from "node:fs";
import type { ClientRequest } from "node:http";
import { performance, PerformanceObserver } from "node:perf_hooks";

export interface Span {
  step: string;
  /** Milliseconds since the epoch. */
  start: number;
  ms: number;
  error?: boolean;
}

const file = process.env.SSCSI_TRACE_FILE;
if (!file) throw new Error("bench/trace-hook.ts: SSCSI_TRACE_FILE is not set");

const spans: Span[] = [];
const now = () => performance.timeOrigin + performance.now();
const open = new WeakMap<object, Span>();

tracingChannel<unknown, { step: string }>("sscsi:step").subscribe({
  start(ctx) {
    const span: Span = { step: ctx.step, start: now(), ms: 0 };
    open.set(ctx, span);
    spans.push(span);
  },
  // A synchronous step ends here; a promise's step ends again at asyncEnd.
  end(ctx) {
    const span = open.get(ctx);
    if (span) span.ms = now() - span.start;
  },
  asyncStart() {},
  asyncEnd(ctx) {
    const span = open.get(ctx);
    if (span) span.ms = now() - span.start;
  },
  error(ctx) {
    const span = open.get(ctx);
    if (span) span.error = true;
  },
});

const requests = new WeakMap<ClientRequest, Span>();
subscribe("http.client.request.start", (message) => {
  const { request } = message as { request: ClientRequest };
  const path = request.path.split("?")[0];
  const span: Span = { step: `http ${request.method} ${request.host}${path}`, start: now(), ms: 0 };
  requests.set(request, span);
  spans.push(span);
});
subscribe("http.client.response.finish", (message) => {
  const { request } = message as { request: ClientRequest };
  const span = requests.get(request);
  if (span) span.ms = now() - span.start;
});

new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) spans.push({ step: "gc", start: performance.timeOrigin + entry.startTime, ms: entry.duration });
}).observe({ entryTypes: ["gc"] });

// Appended: every instance of a program in a run adds its spans to the one file.
process.on("exit", () => {
  appendFileSync(file, spans.map((s) => JSON.stringify(s)).join("\n") + "\n");
});
