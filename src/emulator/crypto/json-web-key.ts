// Key Vault keys as JSON Web Keys: generation, import and the public view the
// service returns. Private material stays in Node KeyObjects; the JWK that
// goes on the wire carries public members only, base64url without padding.
import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject, type JsonWebKey as NodeJwk } from "node:crypto";
import { promisify } from "node:util";

const generateKeyPairAsync = promisify(generateKeyPair);

export type KeyType = "RSA" | "RSA-HSM" | "EC" | "EC-HSM";
export type CurveName = "P-256" | "P-384" | "P-521" | "P-256K";

export const RSA_KEY_SIZES = [2048, 3072, 4096] as const;
export const CURVE_NAMES: readonly CurveName[] = ["P-256", "P-384", "P-521", "P-256K"];
export const KEY_TYPES: readonly KeyType[] = ["RSA", "RSA-HSM", "EC", "EC-HSM"];

const NODE_CURVE: Record<CurveName, string> = { "P-256": "P-256", "P-384": "P-384", "P-521": "P-521", "P-256K": "secp256k1" };
const KV_CURVE: Record<string, CurveName> = { "P-256": "P-256", "P-384": "P-384", "P-521": "P-521", secp256k1: "P-256K", "P-256K": "P-256K" };

export const DEFAULT_RSA_KEY_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"];
export const DEFAULT_EC_KEY_OPS = ["sign", "verify"];

/** The public JWK of a Key Vault key bundle. */
export interface PublicJsonWebKey {
  kid: string;
  kty: KeyType;
  key_ops: string[];
  n?: string;
  e?: string;
  crv?: CurveName;
  x?: string;
  y?: string;
}

export function isEllipticCurve(kty: KeyType): boolean {
  return kty === "EC" || kty === "EC-HSM";
}

export function defaultKeyOps(kty: KeyType): string[] {
  return isEllipticCurve(kty) ? [...DEFAULT_EC_KEY_OPS] : [...DEFAULT_RSA_KEY_OPS];
}

export interface KeyGenerationSpec {
  kty: KeyType;
  keySize?: number;
  curve?: CurveName;
  publicExponent?: number;
}

/** Generates a private key for Key Vault key creation; throws a plain Error with a user-facing message on bad input. */
export async function generatePrivateKey(spec: KeyGenerationSpec): Promise<KeyObject> {
  if (isEllipticCurve(spec.kty)) {
    const curve = spec.curve ?? "P-256";
    if (!CURVE_NAMES.includes(curve)) throw new Error(`The curve '${String(curve)}' is not supported. Supported curves: ${CURVE_NAMES.join(", ")}.`);
    const { privateKey } = await generateKeyPairAsync("ec", { namedCurve: NODE_CURVE[curve] });
    return privateKey;
  }
  if (spec.kty !== "RSA" && spec.kty !== "RSA-HSM") throw new Error(`The key type '${String(spec.kty)}' is not supported by this vault.`);
  const size = spec.keySize ?? 2048;
  if (!(RSA_KEY_SIZES as readonly number[]).includes(size)) {
    throw new Error(`The RSA key size ${size} is not supported. Supported sizes: ${RSA_KEY_SIZES.join(", ")}.`);
  }
  const { privateKey } = await generateKeyPairAsync("rsa", { modulusLength: size, publicExponent: spec.publicExponent ?? 65537 });
  return privateKey;
}

/** Imports a private JWK (Key Vault member names; curve P-256K allowed). */
export function importPrivateJwk(jwk: Record<string, unknown>): KeyObject {
  const kty = String(jwk.kty ?? "");
  const base = kty.replace(/-HSM$/, "");
  const nodeJwk: NodeJwk = { kty: base };
  for (const member of ["n", "e", "d", "p", "q", "dp", "dq", "qi", "x", "y"] as const) {
    const value = jwk[member];
    if (typeof value === "string") nodeJwk[member] = value.replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  }
  if (base === "EC") {
    const crv = KV_CURVE[String(jwk.crv ?? "")];
    if (!crv) throw new Error(`The curve '${String(jwk.crv)}' is not supported.`);
    nodeJwk.crv = NODE_CURVE[crv];
  } else if (base !== "RSA") {
    throw new Error(`The key type '${kty}' is not supported by this vault.`);
  }
  if (typeof nodeJwk.d !== "string") throw new Error("The JSON Web Key must contain the private key ('d').");
  return createPrivateKey({ key: nodeJwk, format: "jwk" });
}

/** The Key Vault key type of a Node private key. */
export function keyTypeOf(key: KeyObject, hsm = false): KeyType {
  if (key.asymmetricKeyType === "rsa") return hsm ? "RSA-HSM" : "RSA";
  if (key.asymmetricKeyType === "ec") return hsm ? "EC-HSM" : "EC";
  throw new Error(`Keys of type '${String(key.asymmetricKeyType)}' are not supported.`);
}

/** The Key Vault curve name of an EC key. */
export function curveOf(key: KeyObject): CurveName | undefined {
  const jwk = key.export({ format: "jwk" });
  return jwk.crv ? KV_CURVE[jwk.crv] : undefined;
}

/** Size in bits of an RSA key. */
export function rsaKeySize(key: KeyObject): number | undefined {
  return key.asymmetricKeyDetails?.modulusLength;
}

/** The public JWK that Key Vault returns for a key version. */
export function toPublicJwk(key: KeyObject, kid: string, kty: KeyType, keyOps: readonly string[]): PublicJsonWebKey {
  const jwk = createPublicKey(key).export({ format: "jwk" });
  const result: PublicJsonWebKey = { kid, kty, key_ops: [...keyOps] };
  if (jwk.kty === "RSA") {
    result.n = jwk.n;
    result.e = jwk.e;
  } else {
    result.crv = KV_CURVE[jwk.crv ?? ""];
    result.x = jwk.x;
    result.y = jwk.y;
  }
  return result;
}
