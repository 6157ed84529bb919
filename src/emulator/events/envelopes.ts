// The two wire forms of an event: the Event Grid schema (always sent as a
// JSON array) and CloudEvents 1.0 (one object, or an array in batch mode),
// and Event Grid's subscription validation event.
import { randomUUID } from "node:crypto";
import type { KeyVaultEvent } from "./key-vault-events.ts";

export type DeliverySchema = "EventGridSchema" | "CloudEventSchemaV1_0";
export const DELIVERY_SCHEMAS: readonly DeliverySchema[] = ["EventGridSchema", "CloudEventSchemaV1_0"];

export const SUBSCRIPTION_VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent";

export function toEventGridEvent(event: KeyVaultEvent): Record<string, unknown> {
  return {
    id: event.id,
    topic: event.topic,
    subject: event.subject,
    eventType: event.type,
    eventTime: event.time,
    data: event.data,
    dataVersion: event.dataVersion,
    metadataVersion: "1",
  };
}

export function toCloudEvent(event: KeyVaultEvent): Record<string, unknown> {
  return {
    id: event.id,
    source: event.topic,
    specversion: "1.0",
    type: event.type,
    subject: event.subject,
    time: event.time,
    data: event.data,
  };
}

export function toEnvelope(schema: DeliverySchema, event: KeyVaultEvent): Record<string, unknown> {
  return schema === "EventGridSchema" ? toEventGridEvent(event) : toCloudEvent(event);
}

/** Event Grid's handshake event for the Event Grid schema (data version 2 carries validationUrl). */
export function subscriptionValidationEvent(topic: string, validationCode: string, validationUrl: string): Record<string, unknown> {
  return {
    id: randomUUID(),
    topic,
    subject: "",
    data: { validationCode, validationUrl },
    eventType: SUBSCRIPTION_VALIDATION_EVENT,
    eventTime: new Date().toISOString(),
    metadataVersion: "1",
    dataVersion: "2",
  };
}
