// An Event Grid namespace as far as pull delivery needs it: its host name
// (<name>.<region>-1.eventgrid.azure.net), who may use it (shared access
// keys, and principals with an EventGrid Data role), and its topics. A topic
// receives the vaults' events it subscribes to (vaults, event types), as a
// Key Vault system topic subscription with a namespace-topic destination
// does, always as CloudEvents 1.0, and fans them out to its queue
// subscriptions.
import { randomBytes } from "node:crypto";
import type { NamespaceConfig, NamespaceRole, NamespaceRoleAssignment, NamespaceTopicConfig } from "./event-config.ts";
import type { EventTiming } from "./event-timing.ts";
import type { KeyVaultEvent } from "./key-vault-events.ts";
import { QueueSubscription, type CloudEventWire, type QueueSubscriptionStatus } from "./queue-subscription.ts";

export const EVENT_GRID_HOST_SUFFIX = "eventgrid.azure.net";
/** The token audience of Event Grid's data plane (scope https://eventgrid.azure.net/.default). */
export const EVENT_GRID_RESOURCE = "https://eventgrid.azure.net";
export const DEFAULT_REGION = "eastus";

const RECEIVE_ACTION = "receive";
const SEND_ACTION = "send";
const ROLE_ACTIONS: Record<NamespaceRole, readonly string[]> = {
  "EventGrid Data Receiver": [RECEIVE_ACTION],
  "EventGrid Data Sender": [SEND_ACTION],
  "EventGrid Data Contributor": [RECEIVE_ACTION, SEND_ACTION],
};
export type NamespaceAction = typeof RECEIVE_ACTION | typeof SEND_ACTION;

export interface NamespaceStatus {
  name: string;
  region: string;
  hostName: string;
  /** https://<host>[:port] for EventGridReceiverClient. */
  endpoint: string;
  tenantId: string;
  accessKeys: string[];
  roleAssignments: NamespaceRoleAssignment[];
  topics: Array<{ name: string; vaults?: string[]; includedEventTypes?: string[]; subscriptions: QueueSubscriptionStatus[] }>;
}

export class NamespaceTopic {
  readonly name: string;
  readonly #config: NamespaceTopicConfig;
  readonly #vaults: Set<string> | undefined;
  readonly #types: Set<string> | undefined;
  readonly subscriptions = new Map<string, QueueSubscription>();

  constructor(config: NamespaceTopicConfig, timing: EventTiming) {
    this.name = config.name;
    this.#config = config;
    this.#vaults = config.vaults ? new Set(config.vaults.map((v) => v.toLowerCase())) : undefined;
    this.#types = config.includedEventTypes ? new Set(config.includedEventTypes.map((t) => t.toLowerCase())) : undefined;
    for (const subscription of config.subscriptions ?? []) this.subscriptions.set(subscription.name.toLowerCase(), new QueueSubscription(subscription, timing));
  }

  /** Whether the vaults' system topic forwards this event here. */
  forwards(event: KeyVaultEvent): boolean {
    if (this.#vaults && !this.#vaults.has(event.vault.toLowerCase())) return false;
    return !this.#types || this.#types.has(event.type.toLowerCase());
  }

  /** A published CloudEvent to every queue subscription whose filter takes it. */
  publish(event: CloudEventWire): void {
    for (const subscription of this.subscriptions.values()) if (subscription.matches(event.type)) subscription.accept(event);
  }

  subscription(name: string): QueueSubscription | undefined {
    return this.subscriptions.get(name.toLowerCase());
  }

  status(): NamespaceStatus["topics"][number] {
    const status: NamespaceStatus["topics"][number] = { name: this.name, subscriptions: [...this.subscriptions.values()].map((s) => s.status()) };
    if (this.#config.vaults) status.vaults = [...this.#config.vaults];
    if (this.#config.includedEventTypes) status.includedEventTypes = [...this.#config.includedEventTypes];
    return status;
  }

  close(): void {
    for (const subscription of this.subscriptions.values()) subscription.close();
  }
}

export class EventGridNamespace {
  readonly name: string;
  readonly region: string;
  readonly tenantId: string;
  readonly accessKeys: string[];
  readonly roleAssignments: NamespaceRoleAssignment[];
  readonly topics = new Map<string, NamespaceTopic>();

  constructor(config: NamespaceConfig, defaultTenantId: string, timing: EventTiming) {
    this.name = config.name.toLowerCase();
    this.region = (config.region ?? DEFAULT_REGION).toLowerCase();
    this.tenantId = config.tenantId ?? defaultTenantId;
    this.accessKeys = config.accessKeys ? [...config.accessKeys] : [randomBytes(32).toString("base64"), randomBytes(32).toString("base64")];
    this.roleAssignments = (config.roleAssignments ?? []).map((a) => ({ ...a }));
    for (const topic of config.topics ?? []) this.topics.set(topic.name.toLowerCase(), new NamespaceTopic(topic, timing));
  }

  get hostName(): string {
    return `${this.name}.${this.region}-1.${EVENT_GRID_HOST_SUFFIX}`;
  }

  topic(name: string): NamespaceTopic | undefined {
    return this.topics.get(name.toLowerCase());
  }

  /** Whether one of the principal's role assignments here allows the action. */
  allows(principalIds: { objectId: string; clientId: string; names: string[] }, action: NamespaceAction): boolean {
    return this.roleAssignments.some((assignment) => {
      const ref = assignment.principal.toLowerCase();
      const named = ref === principalIds.objectId.toLowerCase() || ref === principalIds.clientId.toLowerCase() || principalIds.names.some((n) => n.toLowerCase() === ref);
      return named && ROLE_ACTIONS[assignment.role].includes(action);
    });
  }

  status(endpoint: string): NamespaceStatus {
    return {
      name: this.name,
      region: this.region,
      hostName: this.hostName,
      endpoint,
      tenantId: this.tenantId,
      accessKeys: [...this.accessKeys],
      roleAssignments: this.roleAssignments.map((a) => ({ ...a })),
      topics: [...this.topics.values()].map((t) => t.status()),
    };
  }

  close(): void {
    for (const topic of this.topics.values()) topic.close();
  }
}

/** "<namespace>.<region>-1.eventgrid.azure.net" split into its parts, or undefined. */
export function parseNamespaceHost(hostname: string): { namespace: string; region: string } | undefined {
  const match = /^([a-z0-9-]{3,50})\.([a-z0-9]{2,40})-1\.eventgrid\.azure\.net$/.exec(hostname.toLowerCase());
  return match ? { namespace: match[1]!, region: match[2]! } : undefined;
}
