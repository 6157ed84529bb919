// PKCS#12 (PFX) → PEM, as the upstream provider converts certificate-backed
// secrets: every private key re-encoded as PKCS#8 ("PRIVATE KEY") first, then
// every certificate, headers stripped. Reading the archive is shared
// (src/shared/crypto/pkcs12.ts).
import { createPrivateKey } from "node:crypto";
import { pkcs12Reader } from "../../shared/crypto/pkcs12-loader.ts";
import type { Pkcs12Contents } from "../../shared/crypto/pkcs12.ts";
import { conversionFailed } from "../errors.ts";

export type { Pkcs12Contents };

/** Parses a Key Vault PFX (empty password); failures are conversion errors naming no secret bytes. */
export function parsePkcs12(pfx: Uint8Array): Pkcs12Contents {
  try {
    return pkcs12Reader()(pfx);
  } catch (err) {
    throw conversionFailed((err as Error).message);
  }
}

/** Re-encodes a PKCS#8 private key the way Go's x509.MarshalPKCS8PrivateKey + pem.Encode does. */
export function privateKeyToPkcs8Pem(pkcs8Der: Buffer): string {
  try {
    const key = createPrivateKey({ key: pkcs8Der, format: "der", type: "pkcs8" });
    return key.export({ type: "pkcs8", format: "pem" }).toString();
  } catch {
    throw conversionFailed("failed to parse key for type pkcs1, pkcs8 or ec");
  }
}
