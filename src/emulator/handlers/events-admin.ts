// The admin endpoints for events, under /_emulator/events:
//   GET    events                                   recent events, oldest first
//   POST   events/raise                             {"type","vault","name"?,"version"?,"data"?}: NearExpiry, Expired,
//                                                   VaultAccessPolicyChanged (or another NewVersionCreated) on demand
//   GET    events/webhook-subscriptions             statuses with counters
//   POST   events/webhook-subscriptions             one config or a list; answers after the first handshake
//   GET    events/webhook-subscriptions/{name}
//   DELETE events/webhook-subscriptions/{name}
//   POST   events/webhook-subscriptions/{name}/validate   run the handshake again
//   GET    events/namespaces                         namespaces with endpoint, keys, topics, queue counters
//   POST   events/namespaces                         one config or a list
//   POST   events/namespaces/{name}/topics               add or replace one topic
//   GET    events/namespaces/{name}
//   DELETE events/namespaces/{name}
//   POST   events/hold      {"destination"?}                       keep events back
//   POST   events/release   {"destination"?, "order"?: "published"|"reverse"}
//   POST   events/redeliver {"eventId", "destination"?}            deliver a logged event again (same id)
import { EventConfigError, type NamespaceConfig, type NamespaceTopicConfig, type WebhookSubscriptionConfig } from "../events/event-config.ts";
import type { EventBroker, RaiseRequest } from "../events/event-broker.ts";
import type { ReleaseOrder } from "../events/webhook-subscription.ts";
import type { HttpResult } from "../server/exchange.ts";

export async function handleEventsAdmin(broker: EventBroker, method: string, path: string, body: () => Promise<unknown>): Promise<HttpResult | undefined> {
  const parts = path.split("/").map((p) => decodeURIComponent(p));
  if (parts[0] !== "events") return undefined;
  const [, collection, name, action] = parts;
  const notFound = (what: string): HttpResult => ({ status: 404, body: { error: { code: "NotFound", message: `no ${what} named ${name ?? ""}` } } });

  if (collection === undefined) return method === "GET" ? { status: 200, body: broker.published() } : undefined;
  switch (`${method} ${collection}${name === undefined ? "" : "/*"}${action === undefined ? "" : `/${action}`}`) {
    case "POST raise":
      return { status: 200, body: broker.raise(object(await body()) as unknown as RaiseRequest) };
    case "GET webhook-subscriptions":
      return { status: 200, body: broker.webhookSubscriptions() };
    case "POST webhook-subscriptions": {
      const configs = list(await body()) as WebhookSubscriptionConfig[];
      const statuses = [];
      for (const config of configs) statuses.push(await broker.addWebhookSubscription(config));
      return { status: 200, body: statuses };
    }
    case "GET webhook-subscriptions/*": {
      const status = broker.webhookSubscription(name!);
      return status ? { status: 200, body: status } : notFound("webhook subscription");
    }
    case "DELETE webhook-subscriptions/*":
      return broker.removeWebhookSubscription(name!) ? { status: 200, body: {} } : notFound("webhook subscription");
    case "POST webhook-subscriptions/*/validate":
      return { status: 200, body: await broker.revalidate(name!) };
    case "GET namespaces":
      return { status: 200, body: broker.namespaceStatuses() };
    case "POST namespaces":
      return { status: 200, body: (list(await body()) as NamespaceConfig[]).map((config) => broker.addNamespace(config)) };
    case "POST namespaces/*/topics":
      return { status: 200, body: broker.addNamespaceTopic(name!, object(await body()) as unknown as NamespaceTopicConfig) };
    case "GET namespaces/*": {
      const status = broker.namespaceStatus(name!);
      return status ? { status: 200, body: status } : notFound("Event Grid namespace");
    }
    case "DELETE namespaces/*":
      return broker.removeNamespace(name!) ? { status: 200, body: {} } : notFound("Event Grid namespace");
    case "POST hold": {
      const { destination } = object(await body());
      broker.hold(optionalString(destination, "destination"));
      return { status: 200, body: {} };
    }
    case "POST release": {
      const { destination, order } = object(await body());
      if (order !== undefined && order !== "published" && order !== "reverse") throw new EventConfigError('order must be "published" or "reverse"');
      return { status: 200, body: { released: broker.releaseHeld(optionalString(destination, "destination"), order as ReleaseOrder | undefined) } };
    }
    case "POST redeliver": {
      const { eventId, destination } = object(await body());
      if (typeof eventId !== "string") throw new EventConfigError("eventId is required");
      return { status: 200, body: { destinations: broker.redeliver(eventId, optionalString(destination, "destination")) } };
    }
    default:
      return undefined;
  }
}

function object(value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new EventConfigError("the body must be a JSON object");
  return value as Record<string, unknown>;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [object(value)];
}

function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new EventConfigError(`${name} must be a string`);
  return value;
}
