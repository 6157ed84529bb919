// Reading PKCS#12 (PFX) archives: node:crypto cannot, so node-forge decrypts
// them (legacy 3DES/RC2 and PBES2/AES, SHA-1 or SHA-2 MAC). Keys and
// certificates come back as the exact DER stored in the bags, whatever the key
// type, so re-encoding them matches openssl and the upstream Go programs.
import forge from "node-forge";

export interface Pkcs12Contents {
  /** PKCS#8 DER of each private key, in bag order. */
  keys: Buffer[];
  /** DER of each certificate, in bag order. */
  certificates: Buffer[];
}

type ForgeBag = { type: string; asn1?: forge.asn1.Asn1 };

/**
 * Parses a PFX. The empty password (how Key Vault stores PFX) is tried, as
 * Go's pkcs12 package does, as the two-byte BMP terminator first and as no
 * bytes at all second. Throws an Error that never quotes the archive.
 */
export function readPkcs12(pfx: Uint8Array, password = ""): Pkcs12Contents {
  let der: forge.asn1.Asn1;
  try {
    der = forge.asn1.fromDer(forge.util.createBuffer(Buffer.from(pfx).toString("binary")), false);
  } catch {
    throw new Error("failed to decode PKCS#12: not a DER-encoded PFX");
  }
  let lastError: unknown;
  for (const attempt of password === "" ? ["", null] : [password]) {
    try {
      return readBags(der, attempt);
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`failed to decode PKCS#12: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
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
      const bytes = Buffer.from(forge.asn1.toDer(bag.asn1).getBytes(), "binary");
      if (bag.type === forge.pki.oids.certBag) certificates.push(bytes);
      else if (bag.type === forge.pki.oids.keyBag || bag.type === forge.pki.oids.pkcs8ShroudedKeyBag) keys.push(bytes);
    }
  }
  return { keys, certificates };
}
