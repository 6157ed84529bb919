// The Azure clouds the emulator impersonates: which Key Vault DNS suffix
// belongs to which Entra ID login host, and which resource (token audience)
// a vault under that suffix announces in its 401 challenge.

export interface CloudEndpoints {
  /** Key Vault DNS suffix, e.g. "vault.azure.net". */
  keyVaultDnsSuffix: string;
  /** Entra ID host that issues tokens for vaults under the suffix. */
  loginHost: string;
  /** Resource named in the challenge and expected as token audience. */
  keyVaultResource: string;
}

export const KNOWN_CLOUDS: readonly CloudEndpoints[] = [
  { keyVaultDnsSuffix: "vault.azure.net", loginHost: "login.microsoftonline.com", keyVaultResource: "https://vault.azure.net" },
  {
    keyVaultDnsSuffix: "vault.usgovcloudapi.net",
    loginHost: "login.microsoftonline.us",
    keyVaultResource: "https://vault.usgovcloudapi.net",
  },
  { keyVaultDnsSuffix: "vault.azure.cn", loginHost: "login.chinacloudapi.cn", keyVaultResource: "https://vault.azure.cn" },
];

/** The application id of Azure Key Vault, which real tokens may carry as audience. */
export const KEY_VAULT_APP_ID = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093";

/**
 * The clouds served by one emulator: the known ones plus one entry per extra
 * DNS suffix (whose tokens come from the public-cloud login host).
 */
export function cloudsFor(extraDnsSuffixes: readonly string[] = []): CloudEndpoints[] {
  const clouds = [...KNOWN_CLOUDS];
  for (const raw of extraDnsSuffixes) {
    const suffix = raw.trim().toLowerCase().replace(/^\*?\./, "");
    if (suffix === "" || clouds.some((c) => c.keyVaultDnsSuffix === suffix)) continue;
    clouds.push({ keyVaultDnsSuffix: suffix, loginHost: KNOWN_CLOUDS[0]!.loginHost, keyVaultResource: `https://${suffix}` });
  }
  return clouds;
}

/** Splits "kv1.vault.azure.net" into the vault name and its cloud, if it is a vault host. */
export function parseVaultHost(hostname: string, clouds: readonly CloudEndpoints[]): { vault: string; cloud: CloudEndpoints } | undefined {
  const host = hostname.toLowerCase();
  for (const cloud of clouds) {
    const tail = `.${cloud.keyVaultDnsSuffix}`;
    if (host.endsWith(tail)) {
      const vault = host.slice(0, -tail.length);
      if (vault !== "" && !vault.includes(".")) return { vault, cloud };
    }
  }
  return undefined;
}

/** All host names the TLS certificate must cover. */
export function certificateHostNames(clouds: readonly CloudEndpoints[]): string[] {
  const names = new Set<string>();
  for (const cloud of clouds) {
    names.add(`*.${cloud.keyVaultDnsSuffix}`);
    names.add(cloud.loginHost);
  }
  names.add("localhost");
  return [...names];
}
