// What a user configures for events, in the seed document, the admin API or
// startEmulator options: webhook (push) subscriptions on the vaults' system
// topic, and Event Grid namespaces whose topics receive the vaults' events
// and serve queue (pull) subscriptions. Field names follow Event Grid's ARM
// properties. Validated once, with messages that name the field.
import { DELIVERY_SCHEMAS, type DeliverySchema } from "./envelopes.ts";
import { KEY_VAULT_EVENT_TYPES } from "./key-vault-events.ts";

export interface WebhookSubscriptionConfig {
  /** 3-64 letters, digits and dashes. */
  name: string;
  /** HTTPS URL; its query (for example a shared secret) is sent with every request. */
  endpointUrl: string;
  /** Default EventGridSchema. */
  eventDeliverySchema?: DeliverySchema;
  /** Vaults whose events are delivered (default: every vault). */
  vaults?: string[];
  /** Default: every Key Vault event type. */
  includedEventTypes?: string[];
  /** 1-5000, default 1. */
  maxEventsPerBatch?: number;
  /** 1-1024, default 64. */
  preferredBatchSizeInKilobytes?: number;
  /** 1-30, default 30. */
  maxDeliveryAttempts?: number;
  /** 1-1440, default 1440 (scaled like every Event Grid time). */
  eventTimeToLiveInMinutes?: number;
  /** PEM CA bundle the endpoint's certificate must chain to (default: the emulator's CA). */
  caCertificates?: string;
  /** Entra ID protected webhook: the webhook app's tenant (default: the emulator's tenant)… */
  azureActiveDirectoryTenantId?: string;
  /** …and its application id or URI, the token's audience. Setting it turns on the bearer token. */
  azureActiveDirectoryApplicationIdOrUri?: string;
  /** The token's roles claim (default ["AzureEventGridSecureWebhookSubscriber"]; [] for a token without the role). */
  tokenRoles?: string[];
  /** Lifetime of the token sent (default 3600; negative sends an expired token). */
  tokenLifetimeSeconds?: number;
  /** Sign the token with a key Entra ID never published (a forged token). */
  tokenSignedByForeignKey?: boolean;
}

export interface QueueSubscriptionConfig {
  name: string;
  /** 60-300 (scaled), default 60. */
  receiveLockDurationInSeconds?: number;
  /** 1-10, default 10: a delivery beyond it dead-letters the event. */
  maxDeliveryCount?: number;
  includedEventTypes?: string[];
}

export interface NamespaceTopicConfig {
  name: string;
  /** Vaults whose system topic forwards to this topic (default: every vault). */
  vaults?: string[];
  /** Event types forwarded (default: every Key Vault event type). */
  includedEventTypes?: string[];
  subscriptions?: QueueSubscriptionConfig[];
}

export interface NamespaceRoleAssignment {
  /** Application or managed identity: name, client id or object id. */
  principal: string;
  role: NamespaceRole;
}

export const NAMESPACE_ROLES = ["EventGrid Data Receiver", "EventGrid Data Sender", "EventGrid Data Contributor"] as const;
export type NamespaceRole = (typeof NAMESPACE_ROLES)[number];

export interface NamespaceConfig {
  /** 3-50 letters, digits and dashes. */
  name: string;
  /** Default "eastus": the host is <name>.<region>-1.eventgrid.azure.net. */
  region?: string;
  /** Tenant whose tokens are accepted (default: the emulator's tenant). */
  tenantId?: string;
  /** Shared access keys (default: two random keys). */
  accessKeys?: string[];
  roleAssignments?: NamespaceRoleAssignment[];
  topics?: NamespaceTopicConfig[];
}

export interface EventsConfig {
  webhookSubscriptions?: WebhookSubscriptionConfig[];
  eventGridNamespaces?: NamespaceConfig[];
}

export class EventConfigError extends Error {}

type Json = Record<string, unknown>;

const WEBHOOK_FIELDS = [
  "name",
  "endpointUrl",
  "eventDeliverySchema",
  "vaults",
  "includedEventTypes",
  "maxEventsPerBatch",
  "preferredBatchSizeInKilobytes",
  "maxDeliveryAttempts",
  "eventTimeToLiveInMinutes",
  "caCertificates",
  "azureActiveDirectoryTenantId",
  "azureActiveDirectoryApplicationIdOrUri",
  "tokenRoles",
  "tokenLifetimeSeconds",
  "tokenSignedByForeignKey",
];
const NAMESPACE_FIELDS = ["name", "region", "tenantId", "accessKeys", "roleAssignments", "topics"];
const TOPIC_FIELDS = ["name", "vaults", "includedEventTypes", "subscriptions"];
const QUEUE_FIELDS = ["name", "receiveLockDurationInSeconds", "maxDeliveryCount", "includedEventTypes"];
const SUBSCRIPTION_NAME = /^[A-Za-z0-9-]{3,64}$/;
const NAMESPACE_NAME = /^[A-Za-z0-9-]{3,50}$/;
const REGION = /^[a-z0-9]{2,40}$/;

export function validateWebhookSubscription(input: unknown, path = "webhookSubscription"): WebhookSubscriptionConfig {
  const value = object(input, path);
  fields(value, WEBHOOK_FIELDS, path);
  matches(value, "name", SUBSCRIPTION_NAME, path, "3-64 letters, digits and dashes");
  if (typeof value.endpointUrl !== "string") throw new EventConfigError(`${path}.endpointUrl is required and must be a string`);
  let url: URL;
  try {
    url = new URL(value.endpointUrl);
  } catch {
    throw new EventConfigError(`${path}.endpointUrl is not a URL`);
  }
  if (url.protocol !== "https:") throw new EventConfigError(`${path}.endpointUrl must be an https URL: Event Grid delivers over HTTPS only`);
  if (value.eventDeliverySchema !== undefined && !DELIVERY_SCHEMAS.includes(value.eventDeliverySchema as DeliverySchema)) {
    throw new EventConfigError(`${path}.eventDeliverySchema must be one of ${DELIVERY_SCHEMAS.join(", ")}`);
  }
  strings(value, "vaults", path);
  eventTypes(value, path);
  integer(value, "maxEventsPerBatch", 1, 5000, path);
  integer(value, "preferredBatchSizeInKilobytes", 1, 1024, path);
  integer(value, "maxDeliveryAttempts", 1, 30, path);
  integer(value, "eventTimeToLiveInMinutes", 1, 1440, path);
  for (const f of ["caCertificates", "azureActiveDirectoryTenantId", "azureActiveDirectoryApplicationIdOrUri"]) optionalString(value, f, path);
  if (typeof value.caCertificates === "string" && !value.caCertificates.includes("-----BEGIN CERTIFICATE-----")) {
    throw new EventConfigError(`${path}.caCertificates must be PEM certificates`);
  }
  strings(value, "tokenRoles", path);
  integer(value, "tokenLifetimeSeconds", -86400, 86400, path);
  if (value.tokenSignedByForeignKey !== undefined && typeof value.tokenSignedByForeignKey !== "boolean") {
    throw new EventConfigError(`${path}.tokenSignedByForeignKey must be a boolean`);
  }
  return value as unknown as WebhookSubscriptionConfig;
}

export function validateNamespace(input: unknown, path = "eventGridNamespace"): NamespaceConfig {
  const value = object(input, path);
  fields(value, NAMESPACE_FIELDS, path);
  matches(value, "name", NAMESPACE_NAME, path, "3-50 letters, digits and dashes");
  if (value.region !== undefined) matches(value, "region", REGION, path, "an Azure region name such as eastus");
  optionalString(value, "tenantId", path);
  strings(value, "accessKeys", path);
  list(value, "roleAssignments", path, (assignment, p) => {
    fields(assignment, ["principal", "role"], p);
    if (typeof assignment.principal !== "string") throw new EventConfigError(`${p}.principal is required and must be a string`);
    if (!NAMESPACE_ROLES.includes(assignment.role as NamespaceRole)) throw new EventConfigError(`${p}.role must be one of ${NAMESPACE_ROLES.join(", ")}`);
  });
  list(value, "topics", path, (topic, p) => validateNamespaceTopic(topic, p));
  return value as unknown as NamespaceConfig;
}

export function validateNamespaceTopic(input: unknown, path = "topic"): NamespaceTopicConfig {
  const topic = object(input, path);
  fields(topic, TOPIC_FIELDS, path);
  matches(topic, "name", SUBSCRIPTION_NAME, path, "3-64 letters, digits and dashes");
  strings(topic, "vaults", path);
  eventTypes(topic, path);
  list(topic, "subscriptions", path, (subscription, p) => validateQueueSubscription(subscription, p));
  return topic as unknown as NamespaceTopicConfig;
}

export function validateQueueSubscription(input: unknown, path = "subscription"): QueueSubscriptionConfig {
  const value = object(input, path);
  fields(value, QUEUE_FIELDS, path);
  matches(value, "name", SUBSCRIPTION_NAME, path, "3-64 letters, digits and dashes");
  integer(value, "receiveLockDurationInSeconds", 60, 300, path);
  integer(value, "maxDeliveryCount", 1, 10, path);
  eventTypes(value, path);
  return value as unknown as QueueSubscriptionConfig;
}

function eventTypes(value: Json, path: string): void {
  strings(value, "includedEventTypes", path);
  for (const type of (value.includedEventTypes as string[] | undefined) ?? []) {
    if (!KEY_VAULT_EVENT_TYPES.some((known) => known.toLowerCase() === type.toLowerCase())) {
      throw new EventConfigError(`${path}.includedEventTypes: unknown event type "${type}" (known: ${KEY_VAULT_EVENT_TYPES.join(", ")})`);
    }
  }
}

function object(value: unknown, path: string): Json {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new EventConfigError(`${path} must be an object`);
  return value as Json;
}

function fields(value: Json, allowed: readonly string[], path: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new EventConfigError(`${path}.${key} is not a known field (known: ${allowed.join(", ")})`);
  }
}

function matches(value: Json, key: string, pattern: RegExp, path: string, what: string): void {
  if (typeof value[key] !== "string" || !pattern.test(value[key])) throw new EventConfigError(`${path}.${key} is required: ${what}`);
}

function optionalString(value: Json, key: string, path: string): void {
  if (value[key] !== undefined && typeof value[key] !== "string") throw new EventConfigError(`${path}.${key} must be a string`);
}

function strings(value: Json, key: string, path: string): void {
  const items = value[key];
  if (items === undefined) return;
  if (!Array.isArray(items) || items.some((i) => typeof i !== "string")) throw new EventConfigError(`${path}.${key} must be a list of strings`);
  if (items.length > 100) throw new EventConfigError(`${path}.${key} has more than 100 entries`);
}

function integer(value: Json, key: string, min: number, max: number, path: string): void {
  const n = value[key];
  if (n === undefined) return;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) throw new EventConfigError(`${path}.${key} must be an integer from ${min} to ${max}`);
}

function list(value: Json, key: string, path: string, each: (item: Json, path: string) => void): void {
  const items = value[key];
  if (items === undefined) return;
  if (!Array.isArray(items)) throw new EventConfigError(`${path}.${key} must be a list`);
  items.forEach((item, index) => each(object(item, `${path}.${key}[${index}]`), `${path}.${key}[${index}]`));
}
