// Who may do what on a vault: the bearer token must be one this emulator
// issued, for the vault's resource (audience) and tenant; the principal it
// names must hold a role assignment on the vault that allows the operation's
// data action. Failures carry Key Vault's error texts.
import { KEY_VAULT_APP_ID, type CloudEndpoints } from "../cloud.ts";
import { ForbiddenByRbacError, UnauthorizedError } from "../errors/key-vault-errors.ts";
import type { DirectoryStore, PrincipalRecord } from "../store/directory-store.ts";
import type { VaultRecord } from "../store/key-vault-store.ts";
import { InvalidAccessTokenError, type AccessTokenClaims, type TokenIssuer } from "./access-tokens.ts";
import { bearerChallenge, MISSING_TOKEN_MESSAGE } from "./challenge.ts";
import { dataActionAllowed } from "./role-definitions.ts";

export interface Caller {
  claims: AccessTokenClaims;
  principal: PrincipalRecord | undefined;
}

/** The bearer token of an Authorization header, or undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "");
  return match?.[1];
}

export function missingTokenError(cloud: CloudEndpoints, vault: VaultRecord): UnauthorizedError {
  return new UnauthorizedError(MISSING_TOKEN_MESSAGE, bearerChallenge(cloud, vault.tenantId));
}

/** Verifies the token for this vault; throws UnauthorizedError (with a fresh challenge) otherwise. */
export function authenticate(token: string, cloud: CloudEndpoints, vault: VaultRecord, tokens: TokenIssuer, directory: DirectoryStore): Caller {
  const challenge = bearerChallenge(cloud, vault.tenantId);
  let claims: AccessTokenClaims;
  try {
    claims = tokens.verify(token);
  } catch (err) {
    if (err instanceof InvalidAccessTokenError) throw new UnauthorizedError(err.message, challenge);
    throw err;
  }
  const audience = String(claims.aud ?? "").replace(/\/+$/, "");
  if (audience.toLowerCase() !== cloud.keyVaultResource.toLowerCase() && audience !== KEY_VAULT_APP_ID) {
    throw new UnauthorizedError(`AKV10022: Invalid audience. Expected ${cloud.keyVaultResource}, found: ${String(claims.aud)}.`, challenge);
  }
  if (String(claims.tid).toLowerCase() !== vault.tenantId.toLowerCase()) {
    const expected = `https://sts.windows.net/${vault.tenantId}/`;
    throw new UnauthorizedError(`AKV10032: Invalid issuer. Expected one of ${expected}, found: ${String(claims.iss)}.`, challenge);
  }
  return { claims, principal: directory.findPrincipal(claims.oid) };
}

/** Throws 403 ForbiddenByRbac unless one of the caller's role assignments on the vault allows the action. */
export function authorize(caller: Caller, vault: VaultRecord, dataAction: string, directory: DirectoryStore, resourcePath: string): void {
  const assignments = caller.principal ? directory.roleAssignmentsFor(caller.principal.objectId, vault.name) : [];
  if (assignments.some((a) => dataActionAllowed(a.dataActions, dataAction))) return;
  const { claims } = caller;
  const name = caller.principal ? `;name=${caller.principal.displayName}` : "";
  throw new ForbiddenByRbacError(
    [
      "Caller is not authorized to perform action on resource.",
      "If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.",
      `Caller: appid=${claims.appid};oid=${claims.oid};iss=${claims.iss}${name}`,
      `Action: '${dataAction}'`,
      `Resource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/keyvault-emulator/providers/microsoft.keyvault/vaults/${vault.name.toLowerCase()}${resourcePath.toLowerCase()}'`,
      `Assignment: ${assignments.length > 0 ? assignments.map((a) => a.roleName).join(", ") : "(not found)"}`,
      "DecisionReason: 'DeniedWithNoValidRBAC' ",
      `Vault: ${vault.name};location=emulator`,
      "",
    ].join("\r\n"),
  );
}
