// Azure cloud environments, named as go-autorest names them. A custom cloud
// (AzureStackCloud) is read from the JSON file named by the mount's
// `cloudEnvFileName` — per mount, never through a process-wide environment
// variable as upstream does — or, for the --cloud-name default, from
// AZURE_ENVIRONMENT_FILEPATH as upstream reads it at start-up. How the file is
// read (and refused) is in cloud-file.ts.
import { CloudFileRefused, MAX_CLOUD_FILE_BYTES, readCloudFileText } from "./cloud-file.ts";
import { invalidArgument } from "../errors.ts";

export interface CloudEnvironment {
  name: string;
  /** Entra ID authority host, e.g. https://login.microsoftonline.com/ */
  activeDirectoryEndpoint: string;
  /** Key Vault resource, e.g. https://vault.azure.net/ */
  keyVaultEndpoint: string;
  /** Vault host suffix, e.g. vault.azure.net (may carry a :port for custom clouds) */
  keyVaultDNSSuffix: string;
  /** True for the built-in public clouds, whose authorities Entra ID instance discovery knows. */
  wellKnown: boolean;
}

const BUILT_IN: Record<string, CloudEnvironment> = {
  AZUREPUBLICCLOUD: {
    name: "AzurePublicCloud",
    activeDirectoryEndpoint: "https://login.microsoftonline.com/",
    keyVaultEndpoint: "https://vault.azure.net/",
    keyVaultDNSSuffix: "vault.azure.net",
    wellKnown: true,
  },
  AZUREUSGOVERNMENTCLOUD: {
    name: "AzureUSGovernmentCloud",
    activeDirectoryEndpoint: "https://login.microsoftonline.us/",
    keyVaultEndpoint: "https://vault.usgovcloudapi.net/",
    keyVaultDNSSuffix: "vault.usgovcloudapi.net",
    wellKnown: true,
  },
  AZURECHINACLOUD: {
    name: "AzureChinaCloud",
    activeDirectoryEndpoint: "https://login.chinacloudapi.cn/",
    keyVaultEndpoint: "https://vault.azure.cn/",
    keyVaultDNSSuffix: "vault.azure.cn",
    wellKnown: true,
  },
  AZUREGERMANCLOUD: {
    name: "AzureGermanCloud",
    activeDirectoryEndpoint: "https://login.microsoftonline.de/",
    keyVaultEndpoint: "https://vault.microsoftazure.de/",
    keyVaultDNSSuffix: "vault.microsoftazure.de",
    wellKnown: true,
  },
};

export const AZURE_STACK_CLOUD = "AZURESTACKCLOUD";

function notValid(name: string, detail: string): Error {
  return invalidArgument(`cloudName ${name} is not valid, error: ${detail}`);
}

export interface CloudFileAccess {
  /** --cloud-env-file-dir: the directories a cloudEnvFileName may name a file in. */
  allowedDirs: readonly string[];
  /** Epoch ms by which the file must have been read. */
  deadline?: number;
  /** Told the real reason of a refusal (for the provider's log; the caller gets one text). */
  onRefused?: (path: string, reason: string) => void;
}

/**
 * The one text of every refused cloudEnvFileName, whatever the reason: a
 * missing file, a FIFO, a file that is not JSON or lacks a field all read the
 * same, so a tenant learns nothing about the node's files (the provider's log
 * says why).
 */
export function cloudFileRefusal(path: string, allowedDirs: readonly string[]): string {
  return (
    `cloudEnvFileName "${path}" cannot be used: it must name a readable regular file of at most ${MAX_CLOUD_FILE_BYTES / 1024} KiB ` +
    `in ${allowedDirs.join(", ") || "(none)"} (the provider's --cloud-env-file-dir), a JSON cloud environment with activeDirectoryEndpoint (https), keyVaultEndpoint and keyVaultDNSSuffix`
  );
}

/**
 * Reads a custom cloud environment file (go-autorest JSON field names).
 * `access.allowedDirs` undefined: the operator's own path (AZURE_ENVIRONMENT_FILEPATH), any directory,
 * with the reason in the error; otherwise a tenant's, with one text for every refusal.
 */
export async function readCloudFile(name: string, path: string, access: Partial<CloudFileAccess> & { allowedDirs: readonly string[] | undefined }): Promise<CloudEnvironment> {
  const refuse = (reason: string): never => {
    access.onRefused?.(path, reason);
    if (access.allowedDirs === undefined) throw notValid(name, `cannot use the cloud environment file ${path} (AZURE_ENVIRONMENT_FILEPATH): ${reason}`);
    throw notValid(name, cloudFileRefusal(path, access.allowedDirs));
  };
  let text = "";
  try {
    text = await readCloudFileText(path, { allowedDirs: access.allowedDirs, deadline: access.deadline });
  } catch (err) {
    refuse(err instanceof CloudFileRefused ? err.reason : `${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  let doc: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
    doc = parsed as Record<string, unknown>;
  } catch {
    refuse("not a JSON object of cloud environment endpoints");
  }
  // The file's values are never quoted back: the file may be something else than a cloud file.
  const field = (key: string): string => {
    const value = doc[key];
    if (typeof value !== "string" || value.trim() === "") refuse(`no "${key}"`);
    return (value as string).trim();
  };
  const activeDirectoryEndpoint = field("activeDirectoryEndpoint");
  if (!/^https:\/\//i.test(activeDirectoryEndpoint)) refuse("activeDirectoryEndpoint is not an https:// URL");
  const keyVaultEndpoint = field("keyVaultEndpoint");
  const keyVaultDNSSuffix = field("keyVaultDNSSuffix").replace(/^\.+/, "");
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(keyVaultDNSSuffix)) refuse("keyVaultDNSSuffix is not a host name");
  const builtIn = Object.values(BUILT_IN).some((c) => sameUrl(c.activeDirectoryEndpoint, activeDirectoryEndpoint));
  return {
    name: typeof doc.name === "string" && doc.name ? doc.name : "AzureStackCloud",
    activeDirectoryEndpoint,
    keyVaultEndpoint,
    keyVaultDNSSuffix,
    wellKnown: builtIn,
  };
}

function sameUrl(a: string, b: string): boolean {
  return a.replace(/\/+$/, "").toLowerCase() === b.replace(/\/+$/, "").toLowerCase();
}

/** Checks a cloud name without reading files (for --cloud-name and early validation). */
export function checkCloudName(name: string): void {
  const upper = name.toUpperCase();
  if (upper !== AZURE_STACK_CLOUD && !BUILT_IN[upper]) {
    throw notValid(name, `autorest/azure: There is no cloud environment matching the name "${upper}"`);
  }
}

/**
 * Resolves a cloud by name (case-insensitive). AzureStackCloud needs a file:
 * the mount's cloudEnvFileName (only inside access.allowedDirs), else the
 * operator's AZURE_ENVIRONMENT_FILEPATH.
 */
export async function resolveCloud(name: string, envFile: string | undefined, access: CloudFileAccess): Promise<CloudEnvironment> {
  checkCloudName(name);
  const upper = name.toUpperCase();
  const builtIn = BUILT_IN[upper];
  if (builtIn) return builtIn;
  if (envFile) return readCloudFile(name, envFile, access);
  const operatorPath = process.env.AZURE_ENVIRONMENT_FILEPATH || "";
  if (!operatorPath) throw notValid(name, "cloudEnvFileName is not set (it names the JSON file describing the custom cloud)");
  return readCloudFile(name, operatorPath, { ...access, allowedDirs: undefined });
}

/** https://<vault>.<suffix>/ */
export function vaultUrl(cloud: CloudEnvironment, vaultName: string): string {
  return `https://${vaultName}.${cloud.keyVaultDNSSuffix}/`;
}

/** The Key Vault token scope of a cloud: https://vault.azure.net/.default */
export function keyVaultScope(cloud: CloudEnvironment): string {
  return cloud.keyVaultEndpoint.replace(/\/+$/, "") + "/.default";
}
