// Compact JWS tokens: the access tokens the emulator issues and the client
// assertions (Kubernetes service-account tokens) it receives.
import { createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { fromBase64Url, toBase64Url } from "./base64url.ts";

export interface DecodedJwt {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  signingInput: string;
  signature: Buffer;
}

const ALGORITHMS: Record<string, { hash: string; pss?: boolean; ecdsa?: boolean }> = {
  RS256: { hash: "sha256" },
  RS384: { hash: "sha384" },
  RS512: { hash: "sha512" },
  PS256: { hash: "sha256", pss: true },
  PS384: { hash: "sha384", pss: true },
  PS512: { hash: "sha512", pss: true },
  ES256: { hash: "sha256", ecdsa: true },
  ES384: { hash: "sha384", ecdsa: true },
  ES512: { hash: "sha512", ecdsa: true },
};

export class MalformedJwtError extends Error {}

/** Splits and parses a JWT without checking its signature. */
export function decodeJwt(token: string): DecodedJwt {
  const parts = token.split(".");
  if (parts.length !== 3) throw new MalformedJwtError("a JWT has three dot-separated parts");
  try {
    const header = JSON.parse(fromBase64Url(parts[0]!).toString("utf8")) as unknown;
    const payload = JSON.parse(fromBase64Url(parts[1]!).toString("utf8")) as unknown;
    if (!isObject(header) || !isObject(payload)) throw new MalformedJwtError("JWT header and payload must be JSON objects");
    return { header, payload, signingInput: `${parts[0]}.${parts[1]}`, signature: fromBase64Url(parts[2]!) };
  } catch (err) {
    if (err instanceof MalformedJwtError) throw err;
    throw new MalformedJwtError("JWT parts are not base64url JSON");
  }
}

/** Checks the signature of a decoded JWT against one public key. */
export function verifyJwtSignature(jwt: DecodedJwt, key: KeyObject): boolean {
  const alg = ALGORITHMS[String(jwt.header.alg)];
  if (!alg) return false;
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  if (alg.ecdsa && publicKey.asymmetricKeyType !== "ec") return false;
  if (!alg.ecdsa && publicKey.asymmetricKeyType !== "rsa" && publicKey.asymmetricKeyType !== "rsa-pss") return false;
  try {
    return verify(
      alg.hash,
      Buffer.from(jwt.signingInput, "ascii"),
      alg.ecdsa
        ? { key: publicKey, dsaEncoding: "ieee-p1363" }
        : alg.pss
          ? { key: publicKey, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: -1 }
          : publicKey,
      jwt.signature,
    );
  } catch {
    return false;
  }
}

/** Signs claims as a compact JWT with RS256 (RSA key) or ES256/384/512 (EC key). */
export function signJwt(payload: Record<string, unknown>, key: KeyObject, headerExtra: Record<string, unknown> = {}): string {
  let alg = "RS256";
  if (key.asymmetricKeyType === "ec") {
    const bits = key.asymmetricKeyDetails?.namedCurve;
    alg = bits === "secp384r1" ? "ES384" : bits === "secp521r1" ? "ES512" : "ES256";
  }
  const header = { alg, typ: "JWT", ...headerExtra };
  const signingInput = `${toBase64Url(JSON.stringify(header))}.${toBase64Url(JSON.stringify(payload))}`;
  const spec = ALGORITHMS[alg]!;
  const signature = sign(spec.hash, Buffer.from(signingInput, "ascii"), spec.ecdsa ? { key, dsaEncoding: "ieee-p1363" } : key);
  return `${signingInput}.${toBase64Url(signature)}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
