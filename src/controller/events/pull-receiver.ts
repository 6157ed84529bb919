// Pull delivery: the vaults' system topic delivers to an Event Grid namespace
// topic (CloudEvents 1.0), and the controller reads the topic's queue
// subscription over outbound HTTPS with @azure/eventgrid-namespaces, so
// nothing in the cluster is exposed (the right default for private
// clusters). It authenticates as the controller's own identity (workload
// identity in the chart; any credential DefaultAzureCredential finds), which
// needs the "EventGrid Data Receiver" role on the namespace or topic.
//
// Each receive long-polls for up to a minute and returns as soon as events
// arrive. An event is acknowledged once it was handled (its SecretSyncs
// synced, its nodes signalled), or when it needs nothing (a duplicate, an
// object no class reads); released with a delay when handling failed, so it
// comes back after ten seconds; rejected (dead-lettered) when it is not a
// readable event at all.
import { DefaultAzureCredential, type TokenCredential } from "@azure/identity";
import { EventGridReceiverClient, type ReceiveDetails } from "@azure/eventgrid-namespaces";
import { abortableSleep } from "../../shared/abort.ts";
import type { Logger } from "../../shared/logger.ts";
import type { ControllerMetrics } from "../metrics.ts";
import type { EventProcessor } from "./event-processor.ts";
import { parseEnvelope } from "./key-vault-event.ts";

export interface PullOptions {
  /** https://<namespace>.<region>-1.eventgrid.azure.net */
  endpoint: string;
  topic: string;
  subscription: string;
  /** The client id of the controller's identity, when not taken from the environment (AZURE_CLIENT_ID). */
  clientId?: string;
  tenantId?: string;
  credential?: TokenCredential;
}

const MAX_EVENTS = 100;
const MAX_WAIT_S = 60;
/** A failed event comes back after this long (one of the delays Event Grid accepts). */
const RELEASE_DELAY = "10";
const MAX_BACKOFF_MS = 60_000;

export class PullReceiver {
  private readonly options: PullOptions;
  private readonly client: EventGridReceiverClient;
  private readonly processor: EventProcessor;
  private readonly metrics: ControllerMetrics;
  private readonly logger: Logger;

  constructor(options: PullOptions, processor: EventProcessor, metrics: ControllerMetrics, logger: Logger) {
    this.options = options;
    const credential =
      options.credential ??
      new DefaultAzureCredential({
        ...(options.clientId ? { workloadIdentityClientId: options.clientId, managedIdentityClientId: options.clientId } : {}),
        ...(options.tenantId ? { tenantId: options.tenantId } : {}),
      });
    this.client = new EventGridReceiverClient(options.endpoint, credential, options.topic, options.subscription);
    this.processor = processor;
    this.metrics = metrics;
    this.logger = logger;
  }

  /** Receives until the signal aborts; never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    const where = `${this.options.endpoint} topic ${this.options.topic} subscription ${this.options.subscription}`;
    this.logger.info({ endpoint: this.options.endpoint, topic: this.options.topic, subscription: this.options.subscription }, "receiving key vault events");
    let failures = 0;
    while (!signal.aborted) {
      let details: ReceiveDetails<unknown>[];
      try {
        ({ details } = await this.client.receiveEvents({ maxEvents: MAX_EVENTS, maxWaitTime: MAX_WAIT_S, abortSignal: signal }));
        failures = 0;
      } catch (err) {
        if (signal.aborted) return;
        failures++;
        this.metrics.pullReceives.inc({ outcome: "failed" });
        const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(failures - 1, 6));
        const status = (err as { statusCode?: number }).statusCode;
        const hint = status === 401 || status === 403 ? " (the controller's identity needs the EventGrid Data Receiver role on the namespace or topic)" : "";
        this.logger.warn({ error: `${(err as Error).message}${hint}`, status, retryInMs: delay }, `cannot receive events from ${where}`);
        await abortableSleep(delay, signal);
        continue;
      }
      this.metrics.pullReceives.inc({ outcome: details.length > 0 ? "events" : "empty" });
      if (details.length > 0) await this.settle(details);
    }
  }

  private async settle(details: ReceiveDetails<unknown>[]): Promise<void> {
    const ack: string[] = [];
    const release: string[] = [];
    const reject: string[] = [];
    const work: Promise<void>[] = [];
    for (const { brokerProperties, event } of details) {
      const parsed = parseEnvelope({ ...event, time: event.time instanceof Date ? event.time.toISOString() : event.time });
      if (!("event" in parsed)) {
        this.processor.countIgnored("pull", "other", parsed.ignored === "other" ? "ignored" : "malformed");
        (parsed.ignored === "malformed" ? reject : ack).push(brokerProperties.lockToken);
        continue;
      }
      work.push(
        this.processor.handle(parsed.event, "pull").then(
          () => void ack.push(brokerProperties.lockToken),
          () => void release.push(brokerProperties.lockToken),
        ),
      );
    }
    // One receive (100 events at most) is handled before the next.
    await Promise.all(work);
    const calls: Promise<unknown>[] = [];
    if (ack.length > 0) calls.push(this.client.acknowledgeEvents(ack));
    if (release.length > 0) calls.push(this.client.releaseEvents(release, { releaseDelay: RELEASE_DELAY }));
    if (reject.length > 0) calls.push(this.client.rejectEvents(reject));
    const results = await Promise.allSettled(calls);
    for (const r of results) {
      // A lost lock means the event comes back; it is then found handled.
      if (r.status === "rejected") this.logger.warn({ error: (r.reason as Error).message }, "cannot settle received events; they will be delivered again");
    }
  }
}
