// Wire-format helpers shared by the secret, key and certificate handlers:
// attributes (epoch seconds), tags, paging with absolute nextLinks.
import { BadParameterError } from "../errors/key-vault-errors.ts";
import type { Exchange } from "../server/exchange.ts";
import type { DeletedObject, ObjectAttributes, VaultRecord } from "../store/key-vault-store.ts";
import type { AttributeInput } from "../services/vault-objects.ts";

export const DEFAULT_PAGE_SIZE = 25;
export const MAX_PAGE_SIZE = 25;
const DEFAULT_API_VERSION = "7.6";

/**
 * The data-plane api-versions Key Vault serves. The JS SDKs send 2026-04-01
 * (secrets) and 2025-07-01 (keys, certificates); the upstream Go provider's
 * SDKs (azsecrets 0.13, azkeys 0.11, azcertificates 0.10) send 7.4.
 */
export const API_VERSIONS = ["2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6-preview.1", "7.6-preview.2", "7.6", "2025-07-01", "2026-04-01"];
const LATEST_API_VERSION = "2026-04-01";

/** Refuses a missing or unknown api-version with 400 BadParameter, as Key Vault does. */
export function checkApiVersion(exchange: Exchange): void {
  const apiVersion = exchange.query.get("api-version");
  if (apiVersion === null || apiVersion === "") {
    throw new BadParameterError(`The api-version query parameter is missing. Consider using the latest supported version (${LATEST_API_VERSION}).`);
  }
  if (!API_VERSIONS.includes(apiVersion)) {
    throw new BadParameterError(`The specified version (${apiVersion}) is not recognized. Consider using the latest supported version (${LATEST_API_VERSION}).`);
  }
}

/** Versions (stored oldest first) in the vault's listing order. */
export function listingOrder<V extends { version: string }>(vault: VaultRecord, versions: readonly V[]): V[] {
  switch (vault.versionListOrder ?? "oldest-first") {
    case "oldest-first":
      return [...versions];
    case "newest-first":
      return [...versions].reverse();
    case "version-id":
      return [...versions].sort((a, b) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
  }
}

/** What every vault-scoped handler receives. */
export interface VaultScope {
  vault: VaultRecord;
}

export function wireAttributes(attributes: ObjectAttributes, includeExportable = false): Record<string, unknown> {
  const wire: Record<string, unknown> = {
    enabled: attributes.enabled,
    created: attributes.created,
    updated: attributes.updated,
    recoveryLevel: attributes.recoveryLevel,
  };
  if (attributes.nbf !== undefined) wire.nbf = attributes.nbf;
  if (attributes.exp !== undefined) wire.exp = attributes.exp;
  if (attributes.recoverableDays !== undefined) wire.recoverableDays = attributes.recoverableDays;
  if (includeExportable && attributes.exportable !== undefined) wire.exportable = attributes.exportable;
  return wire;
}

export function parseAttributes(value: unknown): AttributeInput | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) throw new BadParameterError("'attributes' must be an object.");
  const raw = value as Record<string, unknown>;
  const result: AttributeInput = {};
  if (raw.enabled !== undefined) {
    if (typeof raw.enabled !== "boolean") throw new BadParameterError("'attributes.enabled' must be a boolean.");
    result.enabled = raw.enabled;
  }
  for (const field of ["nbf", "exp"] as const) {
    if (raw[field] !== undefined && raw[field] !== null) {
      if (typeof raw[field] !== "number" || !Number.isInteger(raw[field])) throw new BadParameterError(`'attributes.${field}' must be an integer (Unix seconds).`);
      result[field] = raw[field];
    }
  }
  if (typeof raw.exportable === "boolean") result.exportable = raw.exportable;
  return result;
}

export function parseTags(value: unknown): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) throw new BadParameterError("'tags' must be an object of strings.");
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== "string") throw new BadParameterError(`Tag '${k}' must be a string.`);
    tags[k] = v;
  }
  return tags;
}

export function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new BadParameterError(`'${field}' must be a string.`);
  return value;
}

/** {"value":[…],"nextLink":…} honouring maxresults and $skiptoken. */
export function page<T>(items: readonly T[], exchange: Exchange): { value: T[]; nextLink: string | null } {
  const rawMax = exchange.query.get("maxresults");
  let size = DEFAULT_PAGE_SIZE;
  if (rawMax !== null && rawMax !== "") {
    size = Number(rawMax);
    if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE_SIZE) {
      throw new BadParameterError(`The value '${rawMax}' of the parameter 'maxresults' is invalid. It must be between 1 and ${MAX_PAGE_SIZE}.`);
    }
  }
  const token = exchange.query.get("$skiptoken");
  let offset = 0;
  if (token) {
    offset = decodeSkipToken(token);
  }
  const value = items.slice(offset, offset + size);
  const next = offset + size;
  if (next >= items.length) return { value, nextLink: null };
  const apiVersion = exchange.query.get("api-version") ?? DEFAULT_API_VERSION;
  const path = exchange.path.replace(/\/+$/, "");
  const query = new URLSearchParams({ "api-version": apiVersion, $skiptoken: encodeSkipToken(next), maxresults: String(size) });
  return { value, nextLink: `${exchange.baseUrl}${path}?${query.toString()}` };
}

function encodeSkipToken(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset }), "utf8").toString("base64url");
}

function decodeSkipToken(token: string): number {
  try {
    const parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { o?: unknown };
    if (typeof parsed.o === "number" && Number.isInteger(parsed.o) && parsed.o >= 0) return parsed.o;
  } catch {
    // fall through
  }
  throw new BadParameterError("The $skiptoken is invalid.");
}

/** Fields a deleted bundle adds. */
export function deletedFields(exchange: Exchange, collection: string, deleted: DeletedObject<unknown>, vault: VaultRecord): Record<string, unknown> {
  if (!vault.softDelete) return {};
  return {
    recoveryId: `${exchange.baseUrl}/${collection}/${deleted.name}`,
    deletedDate: deleted.deletedDate,
    scheduledPurgeDate: deleted.scheduledPurgeDate,
  };
}
