// The Key Vault bearer challenge (WWW-Authenticate) as the Azure SDKs parse
// it: quoted values, comma+space separated, the tenant as the only path
// segment of the authorization URL, the resource derived from the vault's
// DNS suffix.
import type { CloudEndpoints } from "../cloud.ts";

export function bearerChallenge(cloud: CloudEndpoints, tenantId: string): string {
  return `Bearer authorization="https://${cloud.loginHost}/${tenantId}", resource="${cloud.keyVaultResource}"`;
}

export const MISSING_TOKEN_MESSAGE = "AKV10000: Request is missing a Bearer or PoP token.";
