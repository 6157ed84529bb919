// Workload identity federation: a client assertion that is a Kubernetes
// service-account token is exchanged for an access token when an app
// registration has a federated credential with the same issuer and subject
// and the token is for the expected audience and unexpired. Its signature is
// checked when keys are configured for the issuer; otherwise it is trusted.
//
// A federated credential whose audiences include api://AKSIdentityBinding
// stands for an AKS identity binding of the service account: only the
// cluster's token proxy honours it (Entra ID never sees that audience, the
// proxy exchanges it), and the proxy honours nothing else.
import { IDENTITY_BINDING_AUDIENCE } from "../../shared/identity-binding.ts";
import { decodeJwt, MalformedJwtError, verifyJwtSignature } from "../crypto/json-web-token.ts";
import type { ApplicationRecord, DirectoryStore } from "../store/directory-store.ts";
import { InvalidClientError } from "../errors/entra-id-errors.ts";

export const TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange";
const CLOCK_SKEW_SECONDS = 300;

/** Who asks: Entra ID's own token endpoint, or the identity-binding token proxy in front of it. */
export type AssertionPath = "entraId" | "identityBinding";

/** Checks the assertion for the app; throws an EntraIdError that mirrors Entra's AADSTS codes. */
export function validateClientAssertion(assertion: string, app: ApplicationRecord, directory: DirectoryStore, path: AssertionPath = "entraId"): void {
  let jwt;
  try {
    jwt = decodeJwt(assertion);
  } catch (err) {
    if (err instanceof MalformedJwtError) throw new InvalidClientError(50027, "JWT token is invalid or malformed.");
    throw err;
  }
  const { iss, sub } = jwt.payload;
  const audiences = Array.isArray(jwt.payload.aud) ? jwt.payload.aud.map(String) : [String(jwt.payload.aud ?? "")];
  if (typeof iss !== "string" || typeof sub !== "string") {
    throw new InvalidClientError(50027, "JWT token is invalid or malformed: the client assertion needs 'iss' and 'sub' claims.");
  }

  const now = Math.floor(Date.now() / 1000);
  const exp = jwt.payload.exp;
  const nbf = jwt.payload.nbf;
  if (typeof exp !== "number" || exp + CLOCK_SKEW_SECONDS < now || (typeof nbf === "number" && nbf - CLOCK_SKEW_SECONDS > now)) {
    throw new InvalidClientError(
      700024,
      `Client assertion is not within its valid time range. Current time: ${new Date(now * 1000).toISOString()}, assertion valid from ${
        typeof nbf === "number" ? new Date(nbf * 1000).toISOString() : "-"
      }, expiry time of assertion ${typeof exp === "number" ? new Date(exp * 1000).toISOString() : "-"}.`,
    );
  }

  const issuerRecord = directory.getServiceAccountIssuer(iss);
  if (issuerRecord && issuerRecord.keys.length > 0) {
    const kid = jwt.header.kid;
    const candidates = issuerRecord.keys.filter((k) => kid === undefined || k.kid === undefined || k.kid === kid);
    if (!candidates.some((k) => verifyJwtSignature(jwt, k.key))) {
      throw new InvalidClientError(50013, `Assertion failed signature validation. [Reason - The key was not found or the signature does not match., Issuer - '${iss}']`);
    }
  }

  const matches = app.federatedCredentials.filter((fc) => fc.issuer === iss && fc.subject === sub);
  const audienceText = audiences.join(",");
  if (matches.length === 0) {
    throw new InvalidClientError(
      70021,
      `No matching federated identity record found for presented assertion. Assertion Issuer: '${iss}'. Assertion Subject: '${sub}'. Assertion Audience: '${audienceText}'.`,
    );
  }
  const honoured = (audience: string): boolean => (audience === IDENTITY_BINDING_AUDIENCE) === (path === "identityBinding");
  if (!matches.some((fc) => fc.audiences.some((a) => honoured(a) && audiences.includes(a)))) {
    throw new InvalidClientError(700212, `No matching federated identity record found for presented assertion audience '${audienceText}'.`);
  }
}
