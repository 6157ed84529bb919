// PKCS#12 (PFX) → PEM, as the upstream provider converts certificate-backed
// secrets: every private key re-encoded as PKCS#8 ("PRIVATE KEY") first, then
// every certificate, headers stripped. node:crypto cannot read PFX, so
// node-forge decrypts it (legacy 3DES/RC2 and PBES2/AES, SHA-1 or SHA-2 MAC);
// keys and certificates are taken as the exact DER found in the bags.
import { createPrivateKey } from "node:crypto";
import forge from "node-forge";
import { conversionFailed } from "./errors.ts";

export interface Pkcs12Contents {
  /** PKCS#8 DER of each private key, in bag order. */
  keys: Buffer[];
  /** DER of each certificate, in bag order. */
  certificates: Buffer[];
}

type ForgeBag = { type: string; key?: unknown; cert?: unknown; asn1?: forge.asn1.Asn1 };

function toBuffer(binary: string): Buffer {
  return Buffer.from(binary, "binary");
}

/**
 * Parses a PFX with the empty password (as Key Vault stores them). Like Go's
 * pkcs12 package, an empty password is tried as the two-byte BMP terminator
 * first and as no bytes at all second.
 */
export function parsePkcs12(pfx: Uint8Array): Pkcs12Contents {
  let der: forge.asn1.Asn1;
  try {
    der = forge.asn1.fromDer(forge.util.createBuffer(Buffer.from(pfx).toString("binary")), false);
  } catch {
    throw conversionFailed("failed to decode PKCS#12: not a DER-encoded PFX");
  }
  let lastError: unknown;
  for (const password of ["", null]) {
    try {
      return readBags(der, password);
    } catch (err) {
      lastError = err;
    }
  }
  throw conversionFailed(`failed to decode PKCS#12: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
}

function readBags(der: forge.asn1.Asn1, password: string | null): Pkcs12Contents {
  // node-forge only models RSA keys and certificates; make it hand back the
  // raw ASN.1 of every bag instead, so any key type passes through and the
  // certificate bytes are exactly those stored (pkcs12FromAsn1 is synchronous).
  const pki = forge.pki as unknown as Record<string, unknown>;
  const originalCert = pki.certificateFromAsn1;
  const originalKey = pki.privateKeyFromAsn1;
  const refuse = () => {
    throw new Error("raw");
  };
  pki.certificateFromAsn1 = refuse;
  pki.privateKeyFromAsn1 = refuse;
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    p12 = forge.pkcs12.pkcs12FromAsn1(der, false, password as string);
  } finally {
    pki.certificateFromAsn1 = originalCert;
    pki.privateKeyFromAsn1 = originalKey;
  }
  const keys: Buffer[] = [];
  const certificates: Buffer[] = [];
  for (const contents of p12.safeContents) {
    for (const bag of contents.safeBags as ForgeBag[]) {
      if (!bag.asn1) continue;
      const bytes = toBuffer(forge.asn1.toDer(bag.asn1).getBytes());
      if (bag.type === forge.pki.oids.certBag) certificates.push(bytes);
      else if (bag.type === forge.pki.oids.keyBag || bag.type === forge.pki.oids.pkcs8ShroudedKeyBag) keys.push(bytes);
    }
  }
  return { keys, certificates };
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
