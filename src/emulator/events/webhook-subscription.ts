// One push subscription on the vaults' system topic, delivering to an HTTPS
// webhook the way Event Grid does:
// - first the validation handshake (Event Grid schema: a
//   SubscriptionValidationEvent answered with {"validationResponse": code},
//   or later a GET of its validationUrl; CloudEvents: an OPTIONS request with
//   WebHook-Request-Origin answered with WebHook-Allowed-Origin). A failed
//   handshake is retried on the retry schedule up to maxDeliveryAttempts,
//   then the subscription is Failed. Until it succeeds, no event is delivered
//   (events raised meanwhile are dropped and counted, as a subscription that
//   does not exist yet receives nothing);
// - then deliveries in batches (maxEventsPerBatch, preferredBatchSizeInKilobytes):
//   200-204 succeed; 400, 401 and 413 dead-letter at once; anything else
//   (other statuses, timeouts, refused connections, TLS failures) is retried
//   on Event Grid's schedule until maxDeliveryAttempts or the time to live
//   runs out, then dead-lettered. One request is in flight at a time, in the
//   order events were raised, but a batch waiting for its retry does not hold
//   back later ones, so a retried batch arrives after them: delivery is at
//   least once and unordered, yet a test can pin an order.
// Test knobs: hold() keeps matching events back; release() lets them go in
// the order asked for; accept() of an event already delivered duplicates it.
import { generateKeyPairSync, randomUUID, type KeyObject } from "node:crypto";
import type { Logger } from "../../shared/logger.ts";
import type { TokenIssuer } from "../auth/access-tokens.ts";
import { subscriptionValidationEvent, toEnvelope, type DeliverySchema } from "./envelopes.ts";
import type { WebhookSubscriptionConfig } from "./event-config.ts";
import type { EventTiming } from "./event-timing.ts";
import type { KeyVaultEvent } from "./key-vault-events.ts";
import { sendToWebhook, type WebhookAnswer } from "./webhook-client.ts";
import { applicationToken, SECURE_WEBHOOK_ROLE } from "./webhook-token.ts";

export type ProvisioningState = "Creating" | "AwaitingManualAction" | "Succeeded" | "Failed";
export type ReleaseOrder = "published" | "reverse";

/** Not retried: the endpoint refused the content itself. */
const NON_RETRIABLE = new Set([400, 401, 413]);
/** How long a validationUrl stays usable (Event Grid: 5 minutes, scaled). */
const MANUAL_VALIDATION_SECONDS = 300;
/** Requests under way at once per subscription: one keeps the order a test chose. */
const MAX_IN_FLIGHT = 1;
const MAX_DEAD_LETTERS_KEPT = 100;
const REQUEST_ORIGIN = "eventgrid.azure.net";

export interface WebhookDeps {
  timing: EventTiming;
  tokens: TokenIssuer;
  /** Trusted for the endpoint when the subscription names no CA bundle. */
  emulatorCaPem: string;
  tenantId: string;
  /** The topic named in the validation event. */
  validationTopic: string;
  validationUrl(subscription: string, code: string): string;
  logger: Logger;
}

export interface DeadLetter {
  eventIds: string[];
  reason: "MaxDeliveryAttemptsExceeded" | "TimeToLiveExceeded" | "NonRetriableHttpStatus";
  attempts: number;
  lastStatus?: number;
  lastError?: string;
}

export interface WebhookSubscriptionStatus {
  name: string;
  /** The endpoint without its query (which may hold a secret). */
  endpointBaseUrl: string;
  eventDeliverySchema: DeliverySchema;
  provisioningState: ProvisioningState;
  validationAttempts: number;
  lastValidationError?: string;
  /** Events kept back by hold(). */
  held: number;
  /** Events waiting for a delivery slot. */
  pending: number;
  /** Batches being sent now, and batches waiting for their next retry. */
  inFlight: number;
  retrying: number;
  counters: {
    eventsMatched: number;
    /** Matched while the subscription was not validated: never delivered. */
    eventsDropped: number;
    eventsDelivered: number;
    eventsDeadLettered: number;
    /** Every POST of a batch (first tries and retries). */
    deliveryAttempts: number;
    deliveriesSucceeded: number;
    deliveriesFailed: number;
  };
  lastDeliveryError?: string;
  deadLetters: DeadLetter[];
}

interface Delivery {
  events: KeyVaultEvent[];
  attempts: number;
  /** Epoch ms after which the batch is dead-lettered instead of retried. */
  expiresAt: number;
}

export class WebhookSubscription {
  readonly config: WebhookSubscriptionConfig;
  readonly name: string;
  readonly #deps: WebhookDeps;
  readonly #endpoint: URL;
  readonly #schema: DeliverySchema;
  readonly #vaults: Set<string> | undefined;
  readonly #types: Set<string> | undefined;
  readonly #foreignKey: KeyObject | undefined;
  #state: ProvisioningState = "Creating";
  #validationAttempts = 0;
  #lastValidationError: string | undefined;
  #validationCode: string | undefined;
  /** Identifies the running handshake cycle; a new validate() abandons the old one. */
  #validationCycle = "";
  #held: KeyVaultEvent[] | undefined;
  readonly #pending: KeyVaultEvent[] = [];
  #inFlight = 0;
  #retrying = 0;
  #dispatchScheduled = false;
  #closed = false;
  readonly #timers = new Set<NodeJS.Timeout>();
  /** Ends requests still under way when the subscription goes away. */
  readonly #closing = new AbortController();
  readonly #counters = { eventsMatched: 0, eventsDropped: 0, eventsDelivered: 0, eventsDeadLettered: 0, deliveryAttempts: 0, deliveriesSucceeded: 0, deliveriesFailed: 0 };
  #lastDeliveryError: string | undefined;
  readonly #deadLetters: DeadLetter[] = [];

  constructor(config: WebhookSubscriptionConfig, deps: WebhookDeps) {
    this.config = config;
    this.name = config.name;
    this.#deps = deps;
    this.#endpoint = new URL(config.endpointUrl);
    this.#schema = config.eventDeliverySchema ?? "EventGridSchema";
    this.#vaults = config.vaults ? new Set(config.vaults.map((v) => v.toLowerCase())) : undefined;
    this.#types = config.includedEventTypes ? new Set(config.includedEventTypes.map((t) => t.toLowerCase())) : undefined;
    this.#foreignKey = config.tokenSignedByForeignKey ? generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey : undefined;
  }

  get state(): ProvisioningState {
    return this.#state;
  }

  matches(event: KeyVaultEvent): boolean {
    if (this.#vaults && !this.#vaults.has(event.vault.toLowerCase())) return false;
    return !this.#types || this.#types.has(event.type.toLowerCase());
  }

  /** Takes a matching event (or a duplicate of one) for delivery. */
  accept(event: KeyVaultEvent): void {
    if (this.#closed) return;
    this.#counters.eventsMatched++;
    if (this.#state !== "Succeeded") {
      this.#counters.eventsDropped++;
      return;
    }
    if (this.#held) this.#held.push(event);
    else this.#enqueue([event]);
  }

  hold(): void {
    this.#held ??= [];
  }

  /** Ends hold(); returns how many events were let go. */
  releaseHeld(order: ReleaseOrder = "published"): number {
    const held = this.#held ?? [];
    this.#held = undefined;
    this.#enqueue(order === "reverse" ? [...held].reverse() : held);
    return held.length;
  }

  /**
   * Runs the handshake (retried on the schedule while it fails); resolves
   * after the first attempt, with the state it left.
   */
  validate(): Promise<ProvisioningState> {
    this.#state = "Creating";
    this.#validationAttempts = 0;
    this.#lastValidationError = undefined;
    const cycle = randomUUID();
    this.#validationCycle = cycle;
    return this.#handshake(cycle).then(() => this.#state);
  }

  async #handshake(cycle: string): Promise<void> {
    if (this.#closed || cycle !== this.#validationCycle) return;
    this.#validationAttempts++;
    const code = randomUUID().toUpperCase();
    this.#validationCode = code;
    let problem: string | undefined;
    let manual = false;
    try {
      if (this.#schema === "EventGridSchema") {
        const answer = await this.#send("POST", { "aeg-event-type": "SubscriptionValidation", "aeg-delivery-count": "0", "aeg-data-version": "2", "aeg-metadata-version": "1", "content-type": "application/json; charset=utf-8" }, JSON.stringify([subscriptionValidationEvent(this.#deps.validationTopic, code, this.#deps.validationUrl(this.name, code))]));
        problem = checkValidationAnswer(answer, code);
        manual = problem !== undefined && answer.status >= 200 && answer.status <= 204;
      } else {
        const answer = await this.#send("OPTIONS", { "webhook-request-origin": REQUEST_ORIGIN, "webhook-request-rate": "120" });
        problem = checkAbuseProtectionAnswer(answer);
      }
    } catch (err) {
      problem = `handshake failed: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (this.#closed || cycle !== this.#validationCycle) return;
    if (problem === undefined) {
      this.#state = "Succeeded";
      this.#lastValidationError = undefined;
      return;
    }
    this.#lastValidationError = problem;
    if (manual) {
      // 2xx without the code: Event Grid waits for a GET of the validationUrl.
      this.#state = "AwaitingManualAction";
      this.#after(this.#deps.timing.scaled(MANUAL_VALIDATION_SECONDS), () => {
        if (this.#state === "AwaitingManualAction" && cycle === this.#validationCycle) this.#retryHandshake(cycle);
      });
      return;
    }
    this.#retryHandshake(cycle);
  }

  #retryHandshake(cycle: string): void {
    if (this.#validationAttempts >= this.#maxAttempts()) {
      this.#state = "Failed";
      this.#deps.logger.warn({ subscription: this.name, endpoint: this.#endpointBase(), error: this.#lastValidationError }, "event subscription validation failed");
      return;
    }
    this.#state = "Creating";
    this.#after(this.#deps.timing.retryDelayMs(this.#validationAttempts), () => void this.#handshake(cycle));
  }

  /** A GET of the validationUrl; true if it validated the subscription. */
  confirmManually(code: string): boolean {
    if (this.#state !== "AwaitingManualAction" || code !== this.#validationCode) return false;
    this.#state = "Succeeded";
    this.#lastValidationError = undefined;
    return true;
  }

  status(): WebhookSubscriptionStatus {
    const status: WebhookSubscriptionStatus = {
      name: this.name,
      endpointBaseUrl: this.#endpointBase(),
      eventDeliverySchema: this.#schema,
      provisioningState: this.#state,
      validationAttempts: this.#validationAttempts,
      held: this.#held?.length ?? 0,
      pending: this.#pending.length,
      inFlight: this.#inFlight,
      retrying: this.#retrying,
      counters: { ...this.#counters },
      deadLetters: this.#deadLetters.map((d) => ({ ...d, eventIds: [...d.eventIds] })),
    };
    if (this.#lastValidationError !== undefined) status.lastValidationError = this.#lastValidationError;
    if (this.#lastDeliveryError !== undefined) status.lastDeliveryError = this.#lastDeliveryError;
    return status;
  }

  close(): void {
    this.#closed = true;
    this.#closing.abort();
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  #enqueue(events: KeyVaultEvent[]): void {
    if (events.length === 0) return;
    this.#pending.push(...events);
    if (this.#dispatchScheduled) return;
    // Events raised in the same turn (a certificate's three) may share a batch.
    this.#dispatchScheduled = true;
    setImmediate(() => {
      this.#dispatchScheduled = false;
      this.#dispatch();
    });
  }

  #dispatch(): void {
    const ttlMs = this.#deps.timing.scaled((this.config.eventTimeToLiveInMinutes ?? 1440) * 60);
    while (!this.#closed && this.#pending.length > 0 && this.#inFlight < MAX_IN_FLIGHT) {
      void this.#attempt({ events: this.#takeBatch(), attempts: 0, expiresAt: Date.now() + ttlMs });
    }
  }

  #takeBatch(): KeyVaultEvent[] {
    const maxEvents = this.config.maxEventsPerBatch ?? 1;
    const maxBytes = (this.config.preferredBatchSizeInKilobytes ?? 64) * 1024;
    const batch: KeyVaultEvent[] = [this.#pending.shift()!];
    let bytes = JSON.stringify(toEnvelope(this.#schema, batch[0]!)).length;
    while (batch.length < maxEvents && this.#pending.length > 0) {
      const size = JSON.stringify(toEnvelope(this.#schema, this.#pending[0]!)).length;
      if (bytes + size > maxBytes) break;
      bytes += size;
      batch.push(this.#pending.shift()!);
    }
    return batch;
  }

  async #attempt(delivery: Delivery): Promise<void> {
    this.#inFlight++;
    delivery.attempts++;
    this.#counters.deliveryAttempts++;
    let status: number | undefined;
    let error: string | undefined;
    try {
      const { contentType, body } = this.#render(delivery.events);
      const headers: Record<string, string> = {
        "aeg-event-type": "Notification",
        "aeg-delivery-count": String(delivery.attempts - 1),
        "aeg-metadata-version": this.#schema === "EventGridSchema" ? "1" : "1.0",
        "content-type": contentType,
      };
      if (this.#schema === "EventGridSchema") headers["aeg-data-version"] = delivery.events[0]!.dataVersion;
      const answer = await this.#send("POST", headers, body);
      status = answer.status;
      if (status < 200 || status > 204) error = `HTTP ${status}`;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    } finally {
      this.#inFlight--;
    }
    if (this.#closed) return;
    if (error === undefined) {
      this.#counters.deliveriesSucceeded++;
      this.#counters.eventsDelivered += delivery.events.length;
    } else {
      this.#counters.deliveriesFailed++;
      this.#lastDeliveryError = error;
      this.#deps.logger.debug({ subscription: this.name, endpoint: this.#endpointBase(), attempt: delivery.attempts, error }, "event delivery failed");
      this.#afterFailure(delivery, status, error);
    }
    this.#dispatch();
  }

  #afterFailure(delivery: Delivery, status: number | undefined, error: string): void {
    const deadLetter = (reason: DeadLetter["reason"]): void => {
      this.#counters.eventsDeadLettered += delivery.events.length;
      const entry: DeadLetter = { eventIds: delivery.events.map((e) => e.id), reason, attempts: delivery.attempts, lastError: error };
      if (status !== undefined) entry.lastStatus = status;
      this.#deadLetters.push(entry);
      if (this.#deadLetters.length > MAX_DEAD_LETTERS_KEPT) this.#deadLetters.shift();
    };
    if (status !== undefined && NON_RETRIABLE.has(status)) return deadLetter("NonRetriableHttpStatus");
    if (delivery.attempts >= this.#maxAttempts()) return deadLetter("MaxDeliveryAttemptsExceeded");
    const delay = this.#deps.timing.retryDelayMs(delivery.attempts);
    if (Date.now() + delay > delivery.expiresAt) return deadLetter("TimeToLiveExceeded");
    this.#retrying++;
    this.#after(delay, () => {
      this.#retrying--;
      void this.#attempt(delivery);
    });
  }

  #render(events: KeyVaultEvent[]): { contentType: string; body: string } {
    const envelopes = events.map((e) => toEnvelope(this.#schema, e));
    if (this.#schema === "EventGridSchema") return { contentType: "application/json; charset=utf-8", body: JSON.stringify(envelopes) };
    if ((this.config.maxEventsPerBatch ?? 1) > 1) return { contentType: "application/cloudevents-batch+json; charset=utf-8", body: JSON.stringify(envelopes) };
    return { contentType: "application/cloudevents+json; charset=utf-8", body: JSON.stringify(envelopes[0]) };
  }

  #send(method: "POST" | "OPTIONS", headers: Record<string, string>, body?: string): Promise<WebhookAnswer> {
    const all: Record<string, string> = { "aeg-subscription-name": this.name.toUpperCase(), ...headers };
    const audience = this.config.azureActiveDirectoryApplicationIdOrUri;
    if (audience) {
      const token = applicationToken(this.#deps.tokens, {
        tenantId: this.config.azureActiveDirectoryTenantId ?? this.#deps.tenantId,
        audience,
        roles: this.config.tokenRoles ?? [SECURE_WEBHOOK_ROLE],
        lifetimeSeconds: this.config.tokenLifetimeSeconds,
        foreignKey: this.#foreignKey,
      });
      all.authorization = `Bearer ${token}`;
    }
    return sendToWebhook({
      method,
      url: this.#endpoint,
      headers: all,
      body,
      ca: this.config.caCertificates ?? this.#deps.emulatorCaPem,
      timeoutMs: this.#deps.timing.responseTimeoutMs(),
      signal: this.#closing.signal,
    });
  }

  #maxAttempts(): number {
    return this.config.maxDeliveryAttempts ?? 30;
  }

  #endpointBase(): string {
    return `${this.#endpoint.origin}${this.#endpoint.pathname}`;
  }

  #after(ms: number, run: () => void): void {
    if (this.#closed) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#closed) run();
    }, ms);
    timer.unref();
    this.#timers.add(timer);
  }
}

function checkValidationAnswer(answer: WebhookAnswer, code: string): string | undefined {
  if (answer.status !== 200) return `the validation request got HTTP ${answer.status}, not 200 with {"validationResponse": code}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body);
  } catch {
    return 'the validation answer is not JSON {"validationResponse": code}';
  }
  const response = parsed !== null && typeof parsed === "object" ? (parsed as Record<string, unknown>).validationResponse : undefined;
  if (response !== code) return "the validation answer does not carry the validation code in validationResponse";
  return undefined;
}

function checkAbuseProtectionAnswer(answer: WebhookAnswer): string | undefined {
  if (answer.status < 200 || answer.status > 299) return `the OPTIONS validation request got HTTP ${answer.status}`;
  const allowed = answer.headers["webhook-allowed-origin"];
  const origins = (Array.isArray(allowed) ? allowed.join(",") : (allowed ?? "")).split(",").map((o) => o.trim().toLowerCase());
  if (!origins.includes(REQUEST_ORIGIN) && !origins.includes("*")) return `the OPTIONS answer lacks WebHook-Allowed-Origin: ${REQUEST_ORIGIN}`;
  return undefined;
}
