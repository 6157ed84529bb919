// Key Vault RBAC: the built-in data-plane roles and their data actions, and
// the check "does any of the principal's role assignments on this vault allow
// this data action". Wildcards follow Azure: "*" matches any run of characters.

export const BUILT_IN_ROLES: Readonly<Record<string, readonly string[]>> = {
  "Key Vault Administrator": ["Microsoft.KeyVault/vaults/*"],
  "Key Vault Reader": ["Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"],
  "Key Vault Secrets Officer": ["Microsoft.KeyVault/vaults/secrets/*"],
  "Key Vault Secrets User": ["Microsoft.KeyVault/vaults/secrets/getSecret/action", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"],
  "Key Vault Certificates Officer": ["Microsoft.KeyVault/vaults/certificates/*", "Microsoft.KeyVault/vaults/certificatecas/*"],
  "Key Vault Certificate User": [
    "Microsoft.KeyVault/vaults/certificates/read",
    "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "Microsoft.KeyVault/vaults/keys/read",
  ],
  "Key Vault Crypto Officer": ["Microsoft.KeyVault/vaults/keys/*", "Microsoft.KeyVault/vaults/keyrotationpolicies/*"],
  "Key Vault Crypto User": [
    "Microsoft.KeyVault/vaults/keys/read",
    "Microsoft.KeyVault/vaults/keys/update/action",
    "Microsoft.KeyVault/vaults/keys/backup/action",
    "Microsoft.KeyVault/vaults/keys/encrypt/action",
    "Microsoft.KeyVault/vaults/keys/decrypt/action",
    "Microsoft.KeyVault/vaults/keys/wrap/action",
    "Microsoft.KeyVault/vaults/keys/unwrap/action",
    "Microsoft.KeyVault/vaults/keys/sign/action",
    "Microsoft.KeyVault/vaults/keys/verify/action",
  ],
};

/** Shorthand permissions accepted in seeds: an object kind grants every action on it. */
const KIND_SHORTHAND: Record<string, string> = {
  secrets: "Microsoft.KeyVault/vaults/secrets/*",
  keys: "Microsoft.KeyVault/vaults/keys/*",
  certificates: "Microsoft.KeyVault/vaults/certificates/*",
  all: "Microsoft.KeyVault/vaults/*",
  "*": "Microsoft.KeyVault/vaults/*",
};

/** Data actions for a role name (case-insensitive), or undefined if unknown. */
export function roleDataActions(roleName: string): readonly string[] | undefined {
  const entry = Object.entries(BUILT_IN_ROLES).find(([name]) => name.toLowerCase() === roleName.toLowerCase());
  return entry?.[1];
}

/** Expands seed permissions ("secrets", "keys", full data actions) to data actions. */
export function permissionDataActions(permissions: readonly string[]): string[] {
  return permissions.map((p) => {
    const shorthand = KIND_SHORTHAND[p.toLowerCase()];
    if (shorthand) return shorthand;
    if (p.startsWith("Microsoft.KeyVault/")) return p;
    throw new Error(`unknown permission "${p}": use secrets, keys, certificates, all or a data action such as Microsoft.KeyVault/vaults/secrets/getSecret/action`);
  });
}

export function dataActionAllowed(granted: readonly string[], action: string): boolean {
  return granted.some((pattern) => {
    const regex = new RegExp(`^${pattern.split("*").map(escapeRegex).join(".*")}$`, "i");
    return regex.test(action);
  });
}

function escapeRegex(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
}
