// The Mount request → validated mount parameters, in upstream's order so the
// same mistake gives the same first error: attributes/secrets/permission JSON,
// pod name, pod namespace, identity flags, their exclusivity, keyvaultName,
// tenantID, cloud, identity, objects, vault name. Everything is checked before
// any network I/O, and the request's size and object count are bounded first
// (--max-request-bytes, --max-objects-per-mount, --max-files-per-mount).
import { SERVICE_ACCOUNT_TOKENS_KEY } from "../../shared/logger.ts";
import { resolveCloud, vaultUrl, type CloudEnvironment } from "../cloud/cloud.ts";
import { invalidArgument } from "../errors.ts";
import { buildAuthConfig, type AuthConfig } from "../auth/identity.ts";
import type { KeyVaultObject, ObjectLimits, ObjectWarning } from "./objects.ts";
import { loadObjectsYaml, type ObjectsParser } from "./objects-parser.ts";

export const POD_NAME_KEY = "csi.storage.k8s.io/pod.name";
export const POD_NAMESPACE_KEY = "csi.storage.k8s.io/pod.namespace";
export const SERVICE_ACCOUNT_NAME_KEY = "csi.storage.k8s.io/serviceAccount.name";

export interface MountRequestFields {
  attributes: string;
  secrets: string;
  permission: string;
}

export interface MountParameters {
  podName: string;
  podNamespace: string;
  vaultName: string;
  vaultUrl: string;
  cloud: CloudEnvironment;
  auth: AuthConfig;
  objects: KeyVaultObject[];
  /** Mode for files without filePermission (the request's permission). */
  defaultMode: number;
  unknownKeys: Array<{ index: number; keys: string[] }>;
  /** Accepted, but read differently from how it is written; index: the object's, when one object is meant. */
  warnings: ParameterWarning[];
}

export type ParameterWarning = Omit<ObjectWarning, "index"> & { index?: number };

/** Upstream mounts nothing for such a list, and its driver then fails with "missing object versions". */
export const NO_OBJECTS =
  'objects lists no object: "array" is missing or empty, and upstream\'s driver fails such a mount with "missing object versions": list at least one object under "array:"';

export interface MountLimits extends ObjectLimits {
  /** Bytes of attributes plus secrets a Mount request may carry. */
  maxRequestBytes: number;
}

/** Far above real use (a few objects, a few KiB), low enough that no mount can stall the provider. */
export const DEFAULT_LIMITS: MountLimits = { maxObjects: 1000, maxFiles: 5000, maxRequestBytes: 1024 * 1024 };

export interface ParameterDefaults {
  /** --cloud-name */
  cloudName: string;
  /** --cloud-env-file-dir: where a cloudEnvFileName may point. */
  cloudEnvFileDirs: readonly string[];
  limits: MountLimits;
}

export interface ParseContext {
  /** Epoch ms: the call's deadline. */
  deadline: number;
  /** Parses large objects lists off the event loop; parsed in place without one. */
  objectsParser?: ObjectsParser;
  /** Told why a cloudEnvFileName was refused (the caller only sees one text). */
  onCloudFileRefused?: (path: string, reason: string) => void;
}

function kib(bytes: number): string {
  return `${Math.ceil(bytes / 1024)} KiB`;
}

/** Refuses a request whose attributes and secrets are larger than --max-request-bytes, before parsing any of it. */
export function checkRequestSize(request: MountRequestFields, maxBytes: number): void {
  const size = Buffer.byteLength(request.attributes ?? "") + Buffer.byteLength(request.secrets ?? "");
  if (size > maxBytes) {
    throw invalidArgument(
      `the mount request carries ${kib(size)} of parameters and secrets, more than the ${kib(maxBytes)} this provider accepts (--max-request-bytes); list fewer objects per SecretProviderClass`,
    );
  }
}

const BOOL_TRUE = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const BOOL_FALSE = new Set(["0", "f", "F", "FALSE", "false", "False"]);

/** strconv.ParseBool with upstream's error text. */
export function parseBool(name: string, value: string): boolean {
  if (value === "") return false;
  if (BOOL_TRUE.has(value)) return true;
  if (BOOL_FALSE.has(value)) return false;
  throw invalidArgument(`failed to parse ${name} flag, error: strconv.ParseBool: parsing "${value}": invalid syntax`);
}

/**
 * JSON with an error that never quotes the input: V8's messages include a
 * piece of the text, which may be a token or a client secret.
 */
function parseJsonQuietly(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

export function parseAttributes(text: string): Record<string, string> {
  const parsed = parseJsonQuietly(text);
  if (!parsed.ok || parsed.value === null || typeof parsed.value !== "object" || Array.isArray(parsed.value)) {
    throw invalidArgument("failed to unmarshal attributes, error: not a JSON object of strings");
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed.value as Record<string, unknown>)) {
    if (typeof v !== "string") throw invalidArgument(`failed to unmarshal attributes, error: the value of "${k}" is not a string`);
    out[k] = v;
  }
  return out;
}

export function parseSecrets(text: string): Record<string, unknown> | null {
  if (text.trim() === "" || text.trim() === "null") return null;
  const parsed = parseJsonQuietly(text);
  if (!parsed.ok || typeof parsed.value !== "object" || Array.isArray(parsed.value)) {
    throw invalidArgument("failed to unmarshal secrets, error: not a JSON object");
  }
  return parsed.value as Record<string, unknown> | null;
}

export function parsePermission(text: string): number {
  if (text.trim() === "") return 0o644;
  const parsed = parseJsonQuietly(text);
  const value = parsed.ok ? parsed.value : undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0o777) {
    throw invalidArgument(`failed to unmarshal file permission, error: "${text.slice(0, 20)}" is not a file mode between 0 and 511 (0777)`);
  }
  return value;
}

/** Key Vault names: 3-24 of [-a-zA-Z0-9] (upstream), starting with a letter, no "--", not ending with "-". */
export function validateVaultName(name: string): void {
  const fail = (why: string): never => {
    throw invalidArgument(`failed to get vault: Invalid vault name: "${name}", ${why}`);
  };
  if (name.length < 3 || name.length > 24) fail("must be between 3 and 24 chars");
  if (!/^[-A-Za-z0-9]+$/.test(name)) fail("must match [-a-zA-Z0-9]{3,24}");
  if (!/^[A-Za-z]/.test(name) || name.endsWith("-") || name.includes("--")) {
    fail("must start with a letter, end with a letter or digit, and not contain consecutive hyphens");
  }
}

export async function parseMountRequest(request: MountRequestFields, defaults: ParameterDefaults, ctx: ParseContext): Promise<MountParameters> {
  checkRequestSize(request, defaults.limits.maxRequestBytes);
  const attrs = parseAttributes(request.attributes);
  const secrets = parseSecrets(request.secrets);
  const defaultMode = parsePermission(request.permission);
  const get = (key: string): string => (attrs[key] ?? "").trim();

  const podName = get(POD_NAME_KEY);
  if (!podName) throw invalidArgument("pod name is not provided");
  const podNamespace = get(POD_NAMESPACE_KEY);
  if (!podNamespace) throw invalidArgument("pod namespace is not provided");

  const usePodIdentity = parseBool("usePodIdentity", get("usePodIdentity"));
  const useVMManagedIdentity = parseBool("useVMManagedIdentity", get("useVMManagedIdentity"));
  const useAzureTokenProxy = parseBool("useAzureTokenProxy", get("useAzureTokenProxy"));
  if ([usePodIdentity, useVMManagedIdentity, useAzureTokenProxy].filter(Boolean).length > 1) {
    throw invalidArgument("only one identity mode can be enabled at a time: usePodIdentity, useVMManagedIdentity, or useAzureTokenProxy");
  }
  if (usePodIdentity) {
    throw invalidArgument(
      "usePodIdentity is not supported: AAD pod identity is deprecated; use workload identity (clientID), identity binding (useAzureTokenProxy) or useVMManagedIdentity instead",
    );
  }

  const vaultName = get("keyvaultName");
  if (!vaultName) throw invalidArgument("keyvaultName is not provided");
  const tenantId = get("tenantID") || get("tenantId");
  if (!tenantId) throw invalidArgument("tenantId is not provided");
  if (!/^[0-9a-zA-Z.-]+$/.test(tenantId)) {
    throw invalidArgument(`tenantID "${tenantId}" is not valid: a tenant id is a GUID or a domain name (characters 0-9, a-z, A-Z, "." and "-")`);
  }

  const cloud = await resolveCloud(get("cloudName") || defaults.cloudName, get("cloudEnvFileName") || undefined, {
    allowedDirs: defaults.cloudEnvFileDirs,
    deadline: ctx.deadline,
    onRefused: ctx.onCloudFileRefused,
  });

  const warnings: ParameterWarning[] = [];
  const auth = buildAuthConfig({
    useVMManagedIdentity,
    useAzureTokenProxy,
    userAssignedIdentityID: get("userAssignedIdentityID"),
    clientID: get("clientID"),
    tenantId,
    cloud,
    serviceAccountTokens: attrs[SERVICE_ACCOUNT_TOKENS_KEY],
    podNamespace,
    serviceAccountName: get(SERVICE_ACCOUNT_NAME_KEY),
    secrets,
    onWarning: (message) => warnings.push({ message, differsFromUpstream: false }),
  });

  const objectsText = get("objects");
  if (!objectsText) throw invalidArgument("objects is not set");
  const {
    objects,
    unknownKeys,
    warnings: objectWarnings,
  } = ctx.objectsParser ? await ctx.objectsParser.parse(objectsText, defaults.limits, ctx.deadline, podNamespace) : (await loadObjectsYaml()).parseObjects(objectsText, defaults.limits);
  warnings.push(...objectWarnings);
  if (objects.length === 0) throw invalidArgument(NO_OBJECTS);
  validateVaultName(vaultName);
  return { podName, podNamespace, vaultName, vaultUrl: vaultUrl(cloud, vaultName), cloud, auth, objects, defaultMode, unknownKeys, warnings };
}
