// objectType: key. The public key only, as a PKIX "PUBLIC KEY" PEM, built
// from the JSON Web Key Key Vault returns: RSA/RSA-HSM from n and e, EC/EC-HSM
// on P-256, P-384 and P-521 from x and y. P-256K and symmetric keys are
// refused with upstream's messages.
import { createPublicKey, type JsonWebKey as NodeJwk } from "node:crypto";
import { conversionFailed } from "../errors.ts";

export interface FetchedKey {
  kty: string | undefined;
  crv: string | undefined;
  n?: Uint8Array;
  e?: Uint8Array;
  x?: Uint8Array;
  y?: Uint8Array;
  kid: string | undefined;
  version: string;
  /** The object's tags (for objectTags). */
  tags?: Record<string, string>;
}

const CURVE_BYTES: Record<string, number> = { "P-256": 32, "P-384": 48, "P-521": 66 };

function b64url(bytes: Uint8Array, size?: number): string {
  let buf = Buffer.from(bytes);
  if (size !== undefined && buf.length < size) buf = Buffer.concat([Buffer.alloc(size - buf.length), buf]);
  return buf.toString("base64url");
}

export function publicKeyPem(key: FetchedKey): string {
  if (!key.kid) throw conversionFailed("key id is nil");
  let jwk: NodeJwk;
  switch (key.kty) {
    case "RSA":
    case "RSA-HSM":
      if (!key.n || !key.e) throw conversionFailed("key value is nil");
      jwk = { kty: "RSA", n: b64url(key.n), e: b64url(key.e) };
      break;
    case "EC":
    case "EC-HSM": {
      const crv = key.crv ?? "";
      if (crv === "P-256K") throw conversionFailed("curve P-256K is not supported");
      const size = CURVE_BYTES[crv];
      if (size === undefined) throw conversionFailed(`curve ${crv} is not supported`);
      if (!key.x || !key.y) throw conversionFailed("key value is nil");
      jwk = { kty: "EC", crv, x: b64url(key.x, size), y: b64url(key.y, size) };
      break;
    }
    default:
      throw conversionFailed(`failed to get key. key type '${key.kty ?? ""}' currently not supported`);
  }
  try {
    return createPublicKey({ key: jwk, format: "jwk" }).export({ type: "spki", format: "pem" }).toString();
  } catch {
    throw conversionFailed(`failed to build the ${key.kty} public key from the key vault JSON web key`);
  }
}
