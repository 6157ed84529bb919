// Access tokens issued by the emulated Entra ID and IMDS: RS256 JWTs signed
// with a key generated at start (published as JWKS), shaped like Entra v1
// access tokens (aud, iss https://sts.windows.net/<tid>/, tid, oid, appid).
// Key Vault verifies them itself and maps the oid to role assignments.
import { createPublicKey, randomUUID, type KeyObject } from "node:crypto";
import { generatePrivateKey } from "../crypto/json-web-key.ts";
import { decodeJwt, MalformedJwtError, signJwt, verifyJwtSignature } from "../crypto/json-web-token.ts";
import type { PrincipalRecord } from "../store/directory-store.ts";

export interface IssuedToken {
  accessToken: string;
  /** Epoch seconds. */
  expiresOn: number;
  notBefore: number;
  expiresIn: number;
}

export interface AccessTokenClaims {
  aud: string;
  iss: string;
  tid: string;
  oid: string;
  appid: string;
  exp: number;
  nbf: number;
}

export class InvalidAccessTokenError extends Error {}

export class TokenIssuer {
  readonly keyId = randomUUID().replace(/-/g, "");
  readonly #privateKey: KeyObject;
  readonly #lifetimeSeconds: number;

  private constructor(privateKey: KeyObject, lifetimeSeconds: number) {
    this.#privateKey = privateKey;
    this.#lifetimeSeconds = lifetimeSeconds;
  }

  static async create(lifetimeSeconds = 3600): Promise<TokenIssuer> {
    return new TokenIssuer(await generatePrivateKey({ kty: "RSA", keySize: 2048 }), lifetimeSeconds);
  }

  issue(principal: PrincipalRecord, resource: string, lifetimeSeconds = this.#lifetimeSeconds): IssuedToken {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      aud: resource,
      iss: `https://sts.windows.net/${principal.tenantId}/`,
      iat: now,
      nbf: now - 300,
      exp: now + lifetimeSeconds,
      appid: principal.clientId,
      appidacr: principal.kind === "application" ? "1" : "2",
      idp: `https://sts.windows.net/${principal.tenantId}/`,
      idtyp: "app",
      oid: principal.objectId,
      sub: principal.objectId,
      tid: principal.tenantId,
      ver: "1.0",
      xms_cc: ["cp1"],
    };
    if (principal.kind === "managedIdentity") claims.xms_mirid = principal.resourceId;
    const accessToken = this.sign(claims);
    return { accessToken, expiresOn: now + lifetimeSeconds, notBefore: now - 300, expiresIn: lifetimeSeconds };
  }

  /** Signs arbitrary claims with the Entra ID key (published in the JWKS). */
  sign(claims: Record<string, unknown>): string {
    return signJwt(claims, this.#privateKey, { kid: this.keyId, x5t: this.keyId });
  }

  /** Verifies signature and lifetime; audience and tenant are checked by the caller. */
  verify(token: string): AccessTokenClaims {
    let jwt;
    try {
      jwt = decodeJwt(token);
    } catch (err) {
      throw new InvalidAccessTokenError(err instanceof MalformedJwtError ? "AKV10000: Request is missing a Bearer or PoP token." : String(err));
    }
    if (!verifyJwtSignature(jwt, this.#privateKey)) throw new InvalidAccessTokenError("AKV10031: Token signature is invalid (not issued by this emulator).");
    const claims = jwt.payload as unknown as AccessTokenClaims;
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== "number" || claims.exp <= now) throw new InvalidAccessTokenError("AKV10013: Token is expired.");
    if (typeof claims.nbf === "number" && claims.nbf > now + 300) throw new InvalidAccessTokenError("AKV10012: Token is not yet valid.");
    return claims;
  }

  /** The JWKS document of the signing key. */
  jwks(): { keys: Array<Record<string, unknown>> } {
    const jwk = createPublicKey(this.#privateKey).export({ format: "jwk" });
    return { keys: [{ kty: "RSA", use: "sig", kid: this.keyId, x5t: this.keyId, n: jwk.n, e: jwk.e, alg: "RS256" }] };
  }
}
