// Key Vault events as Event Grid delivers them, read into one shape whatever
// the envelope: the Event Grid schema (`eventType`, `eventTime`) or
// CloudEvents 1.0 (`type`, `time`). `data` is read the way Key Vault writes
// it on the wire, PascalCase (`VaultName`, `ObjectName`, ...), but with keys
// compared case-insensitively, since @azure/eventgrid's types and some
// samples spell them in camelCase; NBF and EXP may be numbers, numeric
// strings (with stray spaces, as the documentation samples show) or null.
// Everything here is a hint: names and versions are checked against Key
// Vault's own rules so that nothing unbounded or odd goes further, and a
// malformed event is reported, never half-used.

export const KEY_VAULT_EVENT_PREFIX = "Microsoft.KeyVault.";

/** What a Key Vault event announces, without its object-type part. */
export type KeyVaultEventKind = "NewVersionCreated" | "NearExpiry" | "Expired" | "VaultAccessPolicyChanged";

/** Key Vault's object types, as events name them. */
export type KeyVaultObjectType = "Secret" | "Key" | "Certificate";

export interface KeyVaultEvent {
  /** The delivery's event id (a redelivery repeats it). */
  id: string;
  kind: KeyVaultEventKind;
  /** The full event type, e.g. Microsoft.KeyVault.SecretNewVersionCreated. */
  type: string;
  /** Lower case: vault names are case-insensitive. */
  vault: string;
  /** Absent for VaultAccessPolicyChanged. */
  objectType?: KeyVaultObjectType;
  /** As written in the event; compared case-insensitively. */
  objectName?: string;
  version?: string;
  /** Event time in ms since the epoch, when the envelope has a readable one. */
  time?: number;
  /** Seconds since the epoch, when set. */
  notBefore?: number;
  expires?: number;
}

export type ParsedEvent = { event: KeyVaultEvent } | { ignored: "other" | "malformed"; type: string; problem?: string };

/** Key Vault's rules: vault names 3-24 of [0-9a-zA-Z-], object names 1-127 of the same, versions 32 hex. */
const VAULT_NAME = /^[0-9a-zA-Z-]{3,24}$/;
const OBJECT_NAME = /^[0-9a-zA-Z-]{1,127}$/;
/** Real versions are 32 lowercase hex characters; anything alphanumeric up to 64 is let through. */
const VERSION = /^[0-9a-zA-Z]{1,64}$/;
const EVENT_ID_MAX = 256;
const TYPE_MAX = 128;

const OBJECT_TYPES: readonly KeyVaultObjectType[] = ["Secret", "Key", "Certificate"];
const KINDS: readonly KeyVaultEventKind[] = ["NewVersionCreated", "NearExpiry", "Expired"];

/** The value of `key` in `data`, whatever the case of its name. */
export function dataField(data: Record<string, unknown>, key: string): unknown {
  if (key in data) return data[key];
  const wanted = key.toLowerCase();
  for (const [k, v] of Object.entries(data)) if (k.toLowerCase() === wanted) return v;
  return undefined;
}

/** Epoch seconds from a number or a numeric string; undefined for null, empty or unreadable values. */
/** The seconds a JavaScript Date can hold either side of the epoch: a time beyond is no time. */
const MAX_EPOCH_SECONDS = 8.64e12;

export function epochSeconds(value: unknown): number | undefined {
  if (typeof value === "number") return inDateRange(value);
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  if (!/^-?\d+(\.\d+)?$/.test(text)) return undefined;
  return inDateRange(Number(text));
}

function inDateRange(n: number): number | undefined {
  return Number.isFinite(n) && Math.abs(n) <= MAX_EPOCH_SECONDS ? n : undefined;
}

function text(value: unknown): string | undefined {
  return typeof value === "string" ? value.trim() : undefined;
}

/** The kind and object type in a Key Vault event type, or undefined for any other type. */
export function splitEventType(type: string): { kind: KeyVaultEventKind; objectType?: KeyVaultObjectType } | undefined {
  if (!type.startsWith(KEY_VAULT_EVENT_PREFIX)) return undefined;
  const rest = type.slice(KEY_VAULT_EVENT_PREFIX.length);
  if (rest === "VaultAccessPolicyChanged") return { kind: "VaultAccessPolicyChanged" };
  for (const objectType of OBJECT_TYPES) {
    if (!rest.startsWith(objectType)) continue;
    const kind = KINDS.find((k) => rest === objectType + k);
    if (kind) return { kind, objectType };
  }
  return undefined;
}

/**
 * Reads one envelope (an Event Grid schema event or a CloudEvent, already
 * parsed from JSON). Never throws.
 */
export function parseEnvelope(envelope: unknown): ParsedEvent {
  if (!envelope || typeof envelope !== "object" || Array.isArray(envelope)) return { ignored: "malformed", type: "", problem: "an event is not a JSON object" };
  const e = envelope as Record<string, unknown>;
  const type = text(e.eventType) ?? text(e.type) ?? "";
  if (type.length > TYPE_MAX) return { ignored: "malformed", type: "", problem: "the event type is too long" };
  const split = splitEventType(type);
  if (!split) return { ignored: "other", type };
  const id = text(e.id);
  if (!id || id.length > EVENT_ID_MAX) return { ignored: "malformed", type, problem: "the event has no id, or one longer than 256 characters" };
  const data = e.data;
  if (!data || typeof data !== "object" || Array.isArray(data)) return { ignored: "malformed", type, problem: `event ${id} has no data object` };
  const fields = data as Record<string, unknown>;

  const vault = text(dataField(fields, "VaultName"));
  if (!vault || !VAULT_NAME.test(vault)) return { ignored: "malformed", type, problem: `event ${id}: VaultName is missing or not a Key Vault name` };
  const timeText = text(e.eventTime) ?? text(e.time);
  const parsedTime = timeText ? Date.parse(timeText) : NaN;
  const event: KeyVaultEvent = {
    id,
    kind: split.kind,
    type,
    vault: vault.toLowerCase(),
    ...(Number.isFinite(parsedTime) ? { time: parsedTime } : {}),
  };
  if (split.kind === "VaultAccessPolicyChanged") return { event };

  const objectType = text(dataField(fields, "ObjectType"));
  // The type's own object type wins; data must not contradict it.
  if (objectType !== undefined && objectType !== "" && objectType.toLowerCase() !== split.objectType!.toLowerCase()) {
    return { ignored: "malformed", type, problem: `event ${id}: ObjectType ${JSON.stringify(objectType.slice(0, 32))} contradicts the event type` };
  }
  const objectName = text(dataField(fields, "ObjectName"));
  if (!objectName || !OBJECT_NAME.test(objectName)) return { ignored: "malformed", type, problem: `event ${id}: ObjectName is missing or not a Key Vault object name` };
  const version = text(dataField(fields, "Version"));
  if (!version || !VERSION.test(version)) return { ignored: "malformed", type, problem: `event ${id}: Version is missing or not a Key Vault version` };
  event.objectType = split.objectType;
  event.objectName = objectName;
  event.version = version;
  const notBefore = epochSeconds(dataField(fields, "NBF"));
  const expires = epochSeconds(dataField(fields, "EXP"));
  if (notBefore !== undefined) event.notBefore = notBefore;
  if (expires !== undefined) event.expires = expires;
  return { event };
}

/** Event Grid's subscription validation event, if this envelope is one. */
export function validationCodeOf(envelope: unknown): string | undefined {
  if (!envelope || typeof envelope !== "object") return undefined;
  const e = envelope as Record<string, unknown>;
  if (e.eventType !== "Microsoft.EventGrid.SubscriptionValidationEvent") return undefined;
  const data = e.data as Record<string, unknown> | undefined;
  const code = data && typeof data === "object" ? dataField(data, "validationCode") : undefined;
  return typeof code === "string" && code.length > 0 && code.length <= 256 ? code : undefined;
}

/** A short, bounded description of an object for logs and Event messages. */
export function describeObject(event: Pick<KeyVaultEvent, "vault" | "objectType" | "objectName" | "version">): string {
  if (!event.objectName) return `vault ${event.vault}`;
  return `${(event.objectType ?? "object").toLowerCase()} ${event.objectName}${event.version ? ` (version ${event.version})` : ""} in vault ${event.vault}`;
}
