// The vaults' Event Grid system topic: every event Key Vault raises comes
// here (new versions from the services, NearExpiry / Expired /
// VaultAccessPolicyChanged on demand), is logged, and goes to each webhook
// subscription and namespace topic whose filters take it. Destinations are
// named "<webhook subscription>" or "<namespace>/<topic>/<queue subscription>";
// the test knobs (hold, release, redeliver) address them by that name, or
// all of them when none is given.
import type { Logger } from "../../shared/logger.ts";
import type { TokenIssuer } from "../auth/access-tokens.ts";
import type { NewVersion } from "../services/vault-objects.ts";
import type { ObjectAttributes, ObjectKind, VaultRecord } from "../store/key-vault-store.ts";
import { toCloudEvent } from "./envelopes.ts";
import {
  EventConfigError,
  validateNamespace,
  validateNamespaceTopic,
  validateWebhookSubscription,
  type EventsConfig,
  type NamespaceConfig,
  type NamespaceTopicConfig,
  type WebhookSubscriptionConfig,
} from "./event-config.ts";
import { EventGridNamespace, EVENT_GRID_HOST_SUFFIX, NamespaceTopic, type NamespaceStatus } from "./event-grid-namespace.ts";
import { EventTiming } from "./event-timing.ts";
import { objectEvent, parseEventType, vaultAccessPolicyChanged, vaultResourceId, DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION_ID, type KeyVaultEvent } from "./key-vault-events.ts";
import type { QueueSubscription } from "./queue-subscription.ts";
import { WebhookSubscription, type ReleaseOrder, type WebhookSubscriptionStatus } from "./webhook-subscription.ts";

const MAX_LOGGED_EVENTS = 1000;
const MAX_WEBHOOK_SUBSCRIPTIONS = 100;
const MAX_NAMESPACES = 20;
const MAX_TOPICS = 100;

export interface EventBrokerDeps {
  timing: EventTiming;
  tokens: TokenIssuer;
  emulatorCaPem: string;
  tenantId: string;
  /** Key Vault DNS suffix of the object URLs in events (vault.azure.net). */
  keyVaultDnsSuffix: string;
  /** ":<port>", or "" on 443. */
  portSuffix(): string;
  vault(name: string): VaultRecord | undefined;
  /** The current (or named) version of an object; throws a Key Vault error when absent. */
  version(vault: VaultRecord, kind: ObjectKind, name: string, version?: string): { name: string; version: string; attributes: ObjectAttributes };
  logger: Logger;
}

/** An on-demand event: NearExpiry/Expired of an object's version, or VaultAccessPolicyChanged. */
export interface RaiseRequest {
  /** e.g. "SecretNearExpiry" or "Microsoft.KeyVault.KeyExpired". */
  type: string;
  vault: string;
  /** Object name (not for VaultAccessPolicyChanged). */
  name?: string;
  /** Default: the current version. */
  version?: string;
  /** Replaces fields of `data` (e.g. NBF/EXP as strings, as Key Vault's samples show). */
  data?: Record<string, unknown>;
}

interface Destination {
  id: string;
  hold(): void;
  releaseHeld(order: ReleaseOrder): number;
}

export class EventBroker {
  readonly timing: EventTiming;
  readonly #deps: EventBrokerDeps;
  readonly #log: KeyVaultEvent[] = [];
  readonly #webhooks = new Map<string, WebhookSubscription>();
  readonly #namespaces = new Map<string, EventGridNamespace>();
  #closed = false;

  constructor(deps: EventBrokerDeps) {
    this.timing = deps.timing;
    this.#deps = deps;
  }

  /** A version written by a service: Secret/Key/CertificateNewVersionCreated. */
  newVersion(created: NewVersion): KeyVaultEvent {
    const event = objectEvent("NewVersionCreated", created.vault, created.kind, created.name, created, this.#deps.keyVaultDnsSuffix);
    this.publish(event);
    return event;
  }

  raise(request: RaiseRequest): KeyVaultEvent {
    if (typeof request.type !== "string" || typeof request.vault !== "string") throw new EventConfigError("type and vault are required strings");
    if (request.name !== undefined && typeof request.name !== "string") throw new EventConfigError("name must be a string");
    if (request.version !== undefined && typeof request.version !== "string") throw new EventConfigError("version must be a string");
    if (request.data !== undefined && (request.data === null || typeof request.data !== "object" || Array.isArray(request.data))) throw new EventConfigError("data must be an object");
    const parsed = parseEventType(request.type);
    if (!parsed) throw new EventConfigError(`unknown Key Vault event type "${request.type}"`);
    const vault = this.#deps.vault(request.vault);
    if (!vault) throw new EventConfigError(`vault "${request.vault}" does not exist`);
    let event: KeyVaultEvent;
    if (parsed === "VaultAccessPolicyChanged") {
      event = vaultAccessPolicyChanged(vault, this.#deps.keyVaultDnsSuffix);
    } else {
      if (!request.name) throw new EventConfigError(`${request.type} needs the object's name`);
      const found = this.#deps.version(vault, parsed.objectKind, request.name, request.version);
      event = objectEvent(parsed.kind, vault, parsed.objectKind, found.name, found, this.#deps.keyVaultDnsSuffix);
    }
    if (request.data) event.data = { ...event.data, ...request.data };
    this.publish(event);
    return event;
  }

  publish(event: KeyVaultEvent): void {
    if (this.#closed) return;
    this.#log.push(event);
    if (this.#log.length > MAX_LOGGED_EVENTS) this.#log.shift();
    this.#route(event, undefined);
  }

  /** Recent events, oldest first. */
  published(): KeyVaultEvent[] {
    return this.#log.map((e) => structuredClone(e));
  }

  /** Delivers a logged event once more (same id); returns how many destinations took it. */
  redeliver(eventId: string, destination?: string): number {
    const event = this.#log.find((e) => e.id === eventId);
    if (!event) throw new EventConfigError(`no recent event with id ${eventId}`);
    if (destination !== undefined) this.#destinations(destination);
    return this.#route(event, destination);
  }

  hold(destination?: string): void {
    for (const d of this.#destinations(destination)) d.hold();
  }

  releaseHeld(destination?: string, order: ReleaseOrder = "published"): number {
    let released = 0;
    for (const d of this.#destinations(destination)) released += d.releaseHeld(order);
    return released;
  }

  /** Adds (or replaces) a webhook subscription; resolves after the first handshake. */
  async addWebhookSubscription(input: WebhookSubscriptionConfig): Promise<WebhookSubscriptionStatus> {
    const config = validateWebhookSubscription(input);
    const key = config.name.toLowerCase();
    if (!this.#webhooks.has(key) && this.#webhooks.size >= MAX_WEBHOOK_SUBSCRIPTIONS) throw new EventConfigError(`at most ${MAX_WEBHOOK_SUBSCRIPTIONS} webhook subscriptions`);
    this.#webhooks.get(key)?.close();
    const subscription = new WebhookSubscription(config, {
      timing: this.timing,
      tokens: this.#deps.tokens,
      emulatorCaPem: this.#deps.emulatorCaPem,
      tenantId: this.#deps.tenantId,
      validationTopic: this.#validationTopic(config),
      validationUrl: (name, code) => `https://rp-emulator.${EVENT_GRID_HOST_SUFFIX}${this.#deps.portSuffix()}/eventsubscriptions/${encodeURIComponent(name)}/validate?id=${encodeURIComponent(code)}`,
      logger: this.#deps.logger,
    });
    this.#webhooks.set(key, subscription);
    await subscription.validate();
    return subscription.status();
  }

  removeWebhookSubscription(name: string): boolean {
    const subscription = this.#webhooks.get(name.toLowerCase());
    subscription?.close();
    return this.#webhooks.delete(name.toLowerCase());
  }

  webhookSubscription(name: string): WebhookSubscriptionStatus | undefined {
    return this.#webhooks.get(name.toLowerCase())?.status();
  }

  webhookSubscriptions(): WebhookSubscriptionStatus[] {
    return [...this.#webhooks.values()].map((s) => s.status());
  }

  /** Runs the handshake again (after the receiver came up). */
  async revalidate(name: string): Promise<WebhookSubscriptionStatus> {
    const subscription = this.#webhooks.get(name.toLowerCase());
    if (!subscription) throw new EventConfigError(`no webhook subscription named ${name}`);
    await subscription.validate();
    return subscription.status();
  }

  /** A GET of a validationUrl. */
  confirmValidation(name: string, code: string): boolean {
    return this.#webhooks.get(name.toLowerCase())?.confirmManually(code) ?? false;
  }

  /** Adds (or replaces) an Event Grid namespace with its topics and queue subscriptions. */
  addNamespace(input: NamespaceConfig): NamespaceStatus {
    const config = validateNamespace(input);
    const key = config.name.toLowerCase();
    if (!this.#namespaces.has(key) && this.#namespaces.size >= MAX_NAMESPACES) throw new EventConfigError(`at most ${MAX_NAMESPACES} Event Grid namespaces`);
    this.#namespaces.get(key)?.close();
    const namespace = new EventGridNamespace(config, this.#deps.tenantId, this.timing);
    this.#namespaces.set(key, namespace);
    return namespace.status(this.#endpoint(namespace));
  }

  /** Adds (or replaces) one topic of an existing namespace, leaving its other topics as they are. */
  addNamespaceTopic(namespaceName: string, input: NamespaceTopicConfig): NamespaceStatus {
    const namespace = this.namespace(namespaceName);
    if (!namespace) throw new EventConfigError(`no Event Grid namespace named ${namespaceName}`);
    const config = validateNamespaceTopic(input);
    const key = config.name.toLowerCase();
    if (!namespace.topics.has(key) && namespace.topics.size >= MAX_TOPICS) throw new EventConfigError(`at most ${MAX_TOPICS} topics per namespace`);
    namespace.topics.get(key)?.close();
    namespace.topics.set(key, new NamespaceTopic(config, this.timing));
    return namespace.status(this.#endpoint(namespace));
  }

  removeNamespace(name: string): boolean {
    this.#namespaces.get(name.toLowerCase())?.close();
    return this.#namespaces.delete(name.toLowerCase());
  }

  namespace(name: string): EventGridNamespace | undefined {
    return this.#namespaces.get(name.toLowerCase());
  }

  namespaceStatus(name: string): NamespaceStatus | undefined {
    const namespace = this.namespace(name);
    return namespace?.status(this.#endpoint(namespace));
  }

  namespaceStatuses(): NamespaceStatus[] {
    return [...this.#namespaces.values()].map((n) => n.status(this.#endpoint(n)));
  }

  /** Applies the events part of a seed document (after its vaults, so their contents raise nothing). */
  async configure(config: EventsConfig): Promise<void> {
    for (const namespace of config.eventGridNamespaces ?? []) this.addNamespace(namespace);
    for (const subscription of config.webhookSubscriptions ?? []) await this.addWebhookSubscription(subscription);
  }

  close(): void {
    this.#closed = true;
    for (const subscription of this.#webhooks.values()) subscription.close();
    for (const namespace of this.#namespaces.values()) namespace.close();
  }

  #route(event: KeyVaultEvent, only: string | undefined): number {
    let taken = 0;
    for (const subscription of this.#webhooks.values()) {
      if (only !== undefined && subscription.name.toLowerCase() !== only.toLowerCase()) continue;
      if (!subscription.matches(event)) continue;
      subscription.accept(event);
      taken++;
    }
    const cloudEvent = toCloudEvent(event);
    for (const namespace of this.#namespaces.values()) {
      for (const topic of namespace.topics.values()) {
        if (!topic.forwards(event)) continue;
        for (const queue of topic.subscriptions.values()) {
          if (only !== undefined && queueId(namespace, topic.name, queue).toLowerCase() !== only.toLowerCase()) continue;
          if (!queue.matches(event.type)) continue;
          queue.accept(structuredClone(cloudEvent));
          taken++;
        }
      }
    }
    return taken;
  }

  #destinations(only: string | undefined): Destination[] {
    const all: Destination[] = [...this.#webhooks.values()].map((s) => ({ id: s.name, hold: () => s.hold(), releaseHeld: (o) => s.releaseHeld(o) }));
    for (const namespace of this.#namespaces.values()) {
      for (const topic of namespace.topics.values()) {
        for (const queue of topic.subscriptions.values()) all.push({ id: queueId(namespace, topic.name, queue), hold: () => queue.hold(), releaseHeld: (o) => queue.releaseHeld(o) });
      }
    }
    if (only === undefined) return all;
    const chosen = all.filter((d) => d.id.toLowerCase() === only.toLowerCase());
    if (chosen.length === 0) throw new EventConfigError(`no event destination named "${only}" (known: ${all.map((d) => d.id).join(", ") || "none"})`);
    return chosen;
  }

  #validationTopic(config: WebhookSubscriptionConfig): string {
    const only = config.vaults?.length === 1 ? this.#deps.vault(config.vaults[0]!) : undefined;
    if (only) return vaultResourceId(only);
    return `/subscriptions/${DEFAULT_SUBSCRIPTION_ID}/resourceGroups/${DEFAULT_RESOURCE_GROUP}/providers/Microsoft.EventGrid/systemTopics/keyvault-emulator`;
  }

  #endpoint(namespace: EventGridNamespace): string {
    return `https://${namespace.hostName}${this.#deps.portSuffix()}`;
  }
}

function queueId(namespace: EventGridNamespace, topic: string, queue: QueueSubscription): string {
  return `${namespace.name}/${topic}/${queue.name}`;
}
