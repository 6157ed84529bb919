// Event Grid's data plane on the emulator's HTTPS port, by host name:
// - <namespace>.<region>-1.eventgrid.azure.net: the namespace topic API that
//   @azure/eventgrid-namespaces speaks (api-version 2024-06-01):
//     POST /topics/{topic}:publish
//     POST /topics/{topic}/eventsubscriptions/{subscription}:receive?maxEvents&maxWaitTime
//     POST …:acknowledge | :release?releaseDelayInSeconds | :reject | :renewLock  {"lockTokens": […]}
//   authenticated by "Authorization: SharedAccessKey <key>" (or aeg-sas-key)
//   or a bearer token for https://eventgrid.azure.net from the emulated
//   Entra ID whose principal holds an EventGrid Data role on the namespace;
// - rp-*.eventgrid.azure.net: the validationUrl of webhook subscriptions
//   (GET …/eventsubscriptions/{name}/validate?id=<code>).
import { timingSafeEqual } from "node:crypto";
import { InvalidAccessTokenError, type TokenIssuer } from "../auth/access-tokens.ts";
import { bearerToken } from "../auth/vault-access.ts";
import {
  EventGridBadRequestError,
  EventGridForbiddenError,
  EventGridNotFoundError,
  EventGridUnauthorizedError,
} from "../errors/event-grid-errors.ts";
import type { EventBroker } from "../events/event-broker.ts";
import { EVENT_GRID_RESOURCE, parseNamespaceHost, type EventGridNamespace, type NamespaceAction } from "../events/event-grid-namespace.ts";
import type { CloudEventWire, LockTokenResult, QueueSubscription } from "../events/queue-subscription.ts";
import type { RequestCounters } from "../request-counters.ts";
import type { Exchange } from "../server/exchange.ts";
import type { DirectoryStore } from "../store/directory-store.ts";

/** api-versions of the namespace data plane (the JS SDK 1.0 sends 2024-06-01). */
export const EVENT_GRID_API_VERSIONS = ["2023-06-01-preview", "2023-10-01-preview", "2023-11-01", "2024-06-01"];
const RELEASE_DELAYS = ["0", "10", "60", "600", "3600"];
const MAX_LOCK_TOKENS = 1000;
const MAX_PUBLISHED_EVENTS = 1000;

export interface EventGridDeps {
  broker: EventBroker;
  tokens: TokenIssuer;
  directory: DirectoryStore;
  counters: RequestCounters;
}

type SettleAction = "acknowledge" | "release" | "reject" | "renewLock";

export class EventGridHandler {
  readonly #deps: EventGridDeps;

  constructor(deps: EventGridDeps) {
    this.#deps = deps;
  }

  static handles(hostname: string): boolean {
    return hostname.endsWith(".eventgrid.azure.net");
  }

  async handle(exchange: Exchange): Promise<void> {
    if (/^rp-[a-z0-9-]+\.eventgrid\.azure\.net$/.test(exchange.hostname)) return this.#manualValidation(exchange);
    const host = parseNamespaceHost(exchange.hostname);
    const namespace = host ? this.#deps.broker.namespace(host.namespace) : undefined;
    if (!namespace || namespace.hostName !== exchange.hostname) {
      exchange.operation = "unknownNamespace";
      throw new EventGridNotFoundError(`No Event Grid namespace is served at ${exchange.hostname}.`);
    }
    exchange.vault = namespace.name;
    const route = parseRoute(exchange.method, exchange.path);
    if (!route) {
      exchange.operation = "unknown";
      throw new EventGridNotFoundError(`The operation ${exchange.method} ${exchange.path} is not supported by the Event Grid emulator.`);
    }
    exchange.operation = route.operation;
    this.#authorize(exchange, namespace, route.action);
    checkApiVersion(exchange);
    this.#deps.counters.increment(route.operation, namespace.name);

    const topic = namespace.topic(route.topic);
    if (!topic) throw new EventGridNotFoundError(`Topic ${route.topic} is not found in namespace ${namespace.name}.`);
    if (route.kind === "publish") {
      for (const event of await publishedEvents(exchange)) topic.publish(event);
      exchange.send({ status: 200, body: {} });
      return;
    }
    const subscription = topic.subscription(route.subscription);
    if (!subscription) throw new EventGridNotFoundError(`Event subscription ${route.subscription} is not found in topic ${route.topic}.`);
    if (route.kind === "receive") return this.#receive(exchange, subscription);
    const tokens = await lockTokens(exchange);
    exchange.send({ status: 200, body: settle(subscription, route.settle, tokens, exchange) });
  }

  async #receive(exchange: Exchange, subscription: QueueSubscription): Promise<void> {
    const maxEvents = integerParam(exchange, "maxEvents", 1, 1, 100);
    const maxWaitTime = integerParam(exchange, "maxWaitTime", 60, 10, 120);
    exchange.discardBody();
    const gone = new AbortController();
    exchange.res.on("close", () => gone.abort());
    const received = await subscription.receive(maxEvents, maxWaitTime * 1000, gone.signal);
    exchange.send({ status: 200, body: { value: received } });
  }

  #authorize(exchange: Exchange, namespace: EventGridNamespace, action: NamespaceAction): void {
    const authorization = exchange.header("authorization") ?? "";
    const sasKey = /^SharedAccessKey\s+(\S+)\s*$/i.exec(authorization)?.[1] ?? exchange.header("aeg-sas-key");
    if (sasKey !== undefined) {
      if (namespace.accessKeys.some((key) => sameText(key, sasKey))) return;
      this.#deps.counters.increment("eventGridUnauthorized", namespace.name);
      throw new EventGridUnauthorizedError("The shared access key is not valid for this namespace.");
    }
    const token = bearerToken(authorization);
    if (!token) {
      this.#deps.counters.increment("eventGridUnauthorized", namespace.name);
      throw new EventGridUnauthorizedError("The request carries no credentials: send Authorization: SharedAccessKey <key> or a bearer token for https://eventgrid.azure.net.");
    }
    let claims;
    try {
      claims = this.#deps.tokens.verify(token);
    } catch (err) {
      this.#deps.counters.increment("eventGridUnauthorized", namespace.name);
      if (err instanceof InvalidAccessTokenError) throw new EventGridUnauthorizedError(`The bearer token is not valid: ${err.message}`);
      throw err;
    }
    const audience = String(claims.aud ?? "").replace(/\/+$/, "");
    if (audience.toLowerCase() !== EVENT_GRID_RESOURCE) {
      this.#deps.counters.increment("eventGridUnauthorized", namespace.name);
      throw new EventGridUnauthorizedError(`The bearer token's audience ${String(claims.aud)} is not ${EVENT_GRID_RESOURCE}.`);
    }
    if (String(claims.tid).toLowerCase() !== namespace.tenantId.toLowerCase()) {
      this.#deps.counters.increment("eventGridUnauthorized", namespace.name);
      throw new EventGridUnauthorizedError(`The bearer token is from tenant ${String(claims.tid)}, not the namespace's tenant ${namespace.tenantId}.`);
    }
    const principal = this.#deps.directory.findPrincipal(claims.oid);
    const ids = { objectId: claims.oid, clientId: claims.appid ?? "", names: principal ? [principal.displayName] : [] };
    if (!namespace.allows(ids, action)) {
      this.#deps.counters.increment("eventGridForbidden", namespace.name);
      const role = action === "receive" ? "EventGrid Data Receiver" : "EventGrid Data Sender";
      throw new EventGridForbiddenError(`The principal ${claims.appid ?? claims.oid} (object id ${claims.oid}) has no role on namespace ${namespace.name} that allows ${action} (for example ${role}).`);
    }
  }

  #manualValidation(exchange: Exchange): void {
    exchange.operation = "validateEventSubscription";
    const match = /^\/eventsubscriptions\/([^/]+)\/validate\/?$/i.exec(exchange.path);
    const code = exchange.query.get("id");
    if (exchange.method !== "GET" || !match || !code) throw new EventGridNotFoundError(`No validation endpoint at ${exchange.method} ${exchange.path}.`);
    const name = decodeURIComponent(match[1]!);
    if (!this.#deps.broker.confirmValidation(name, code)) {
      throw new EventGridBadRequestError(`The validation code does not match a subscription awaiting manual validation (${name}).`);
    }
    this.#deps.counters.increment("validateEventSubscription", name);
    exchange.send({ status: 200, text: "Webhook successfully validated as a subscription endpoint." });
  }
}

type Route =
  | { kind: "publish"; operation: string; action: NamespaceAction; topic: string }
  | { kind: "receive"; operation: string; action: NamespaceAction; topic: string; subscription: string }
  | { kind: "settle"; operation: string; action: NamespaceAction; topic: string; subscription: string; settle: SettleAction };

const SETTLE_OPERATIONS: Record<SettleAction, string> = {
  acknowledge: "acknowledgeCloudEvents",
  release: "releaseCloudEvents",
  reject: "rejectCloudEvents",
  renewLock: "renewCloudEventLocks",
};

function parseRoute(method: string, path: string): Route | undefined {
  if (method !== "POST") return undefined;
  let match = /^\/topics\/([^/:]+):publish$/.exec(path);
  if (match) return { kind: "publish", operation: "publishCloudEvents", action: "send", topic: decodeURIComponent(match[1]!) };
  match = /^\/topics\/([^/:]+)\/eventsubscriptions\/([^/:]+):(receive|acknowledge|release|reject|renewLock)$/.exec(path);
  if (!match) return undefined;
  const topic = decodeURIComponent(match[1]!);
  const subscription = decodeURIComponent(match[2]!);
  const verb = match[3]!;
  if (verb === "receive") return { kind: "receive", operation: "receiveCloudEvents", action: "receive", topic, subscription };
  const settle = verb as SettleAction;
  return { kind: "settle", operation: SETTLE_OPERATIONS[settle], action: "receive", topic, subscription, settle };
}

function settle(subscription: QueueSubscription, action: SettleAction, tokens: string[], exchange: Exchange): LockTokenResult {
  switch (action) {
    case "acknowledge":
      return subscription.acknowledge(tokens);
    case "reject":
      return subscription.reject(tokens);
    case "renewLock":
      return subscription.renewLocks(tokens);
    case "release": {
      const delay = exchange.query.get("releaseDelayInSeconds") ?? "0";
      if (!RELEASE_DELAYS.includes(delay)) throw new EventGridBadRequestError(`releaseDelayInSeconds must be one of ${RELEASE_DELAYS.join(", ")}; got ${delay}.`);
      return subscription.release(tokens, Number(delay));
    }
  }
}

function checkApiVersion(exchange: Exchange): void {
  const version = exchange.query.get("api-version");
  if (!version) throw new EventGridBadRequestError("The api-version query parameter is required.");
  if (!EVENT_GRID_API_VERSIONS.includes(version)) throw new EventGridBadRequestError(`Unknown api version ${version}; supported: ${EVENT_GRID_API_VERSIONS.join(", ")}.`);
}

function integerParam(exchange: Exchange, name: string, fallback: number, min: number, max: number): number {
  const raw = exchange.query.get(name);
  if (raw === null || raw === "") return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new EventGridBadRequestError(`${name} must be an integer from ${min} to ${max}; got ${raw}.`);
  return Number(raw);
}

async function lockTokens(exchange: Exchange): Promise<string[]> {
  const body = await jsonBody(exchange);
  const tokens = body !== null && typeof body === "object" && !Array.isArray(body) ? (body as Record<string, unknown>).lockTokens : undefined;
  if (!Array.isArray(tokens) || tokens.length === 0 || tokens.some((t) => typeof t !== "string")) {
    throw new EventGridBadRequestError('The body must be {"lockTokens": ["…"]} with at least one lock token.');
  }
  if (tokens.length > MAX_LOCK_TOKENS) throw new EventGridBadRequestError(`At most ${MAX_LOCK_TOKENS} lock tokens per request.`);
  return tokens as string[];
}

async function publishedEvents(exchange: Exchange): Promise<CloudEventWire[]> {
  const body = await jsonBody(exchange);
  const events = Array.isArray(body) ? body : [body];
  if (events.length === 0 || events.length > MAX_PUBLISHED_EVENTS) throw new EventGridBadRequestError(`Publish 1 to ${MAX_PUBLISHED_EVENTS} events per request.`);
  for (const [index, event] of events.entries()) {
    if (event === null || typeof event !== "object" || Array.isArray(event)) throw new EventGridBadRequestError(`Event ${index} is not a JSON object.`);
    const e = event as Record<string, unknown>;
    for (const field of ["id", "source", "type", "specversion"]) {
      if (typeof e[field] !== "string" || e[field] === "") throw new EventGridBadRequestError(`Event ${index} lacks the CloudEvents attribute ${field}.`);
    }
    if (e.specversion !== "1.0") throw new EventGridBadRequestError(`Event ${index} has specversion ${String(e.specversion)}; only 1.0 is accepted.`);
  }
  return events as CloudEventWire[];
}

async function jsonBody(exchange: Exchange): Promise<unknown> {
  const raw = (await exchange.body()).toString("utf8");
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new EventGridBadRequestError("The request body is not valid JSON.");
  }
}

function sameText(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
