// The bearer token Event Grid sends to an Entra ID protected webhook: an
// app-only v1 access token of Event Grid's own service principal, for the
// webhook application's id or URI (audience), with the app role the webhook's
// owner assigned to Event Grid. Signed with the emulated Entra ID's key, so a
// receiver validates it against the emulator's OpenID configuration and JWKS.
import { signJwt } from "../crypto/json-web-token.ts";
import type { TokenIssuer } from "../auth/access-tokens.ts";
import { uuidFrom } from "../seeder.ts";
import type { KeyObject } from "node:crypto";

/** The application id of Microsoft.EventGrid's first-party service principal. */
export const EVENT_GRID_APP_ID = "4962773b-9cdb-44cf-a8bf-237846a00ab7";
export const SECURE_WEBHOOK_ROLE = "AzureEventGridSecureWebhookSubscriber";
const DEFAULT_LIFETIME_SECONDS = 3600;

export interface ApplicationTokenOptions {
  tenantId: string;
  audience: string;
  /** The `roles` claim (omitted when empty). */
  roles?: string[];
  /** Default 3600; negative for an already expired token. */
  lifetimeSeconds?: number;
  /** The calling application (default: Event Grid). */
  appId?: string;
  /** Sign with this key instead of Entra ID's (a forged token, for refusal tests). */
  foreignKey?: KeyObject;
}

export function applicationToken(issuer: TokenIssuer, options: ApplicationTokenOptions): string {
  const now = Math.floor(Date.now() / 1000);
  const lifetime = options.lifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS;
  const appId = options.appId ?? EVENT_GRID_APP_ID;
  const objectId = uuidFrom(`sp:${options.tenantId}:${appId}`);
  const claims: Record<string, unknown> = {
    aud: options.audience,
    iss: `https://sts.windows.net/${options.tenantId}/`,
    iat: Math.min(now, now + lifetime - 60),
    nbf: Math.min(now, now + lifetime - 60),
    exp: now + lifetime,
    appid: appId,
    appidacr: "2",
    idp: `https://sts.windows.net/${options.tenantId}/`,
    idtyp: "app",
    oid: objectId,
    sub: objectId,
    tid: options.tenantId,
    ver: "1.0",
  };
  if (options.roles && options.roles.length > 0) claims.roles = [...options.roles];
  if (options.foreignKey) return signJwt(claims, options.foreignKey, { kid: issuer.keyId, x5t: issuer.keyId });
  return issuer.sign(claims);
}
