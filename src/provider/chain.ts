// Certificate chain ordering (--construct-pem-chain): leaf → intermediates →
// root, linking each certificate to the one whose Subject Key Identifier
// equals its Authority Key Identifier. When the links do not cover every
// certificate (missing AKI/SKI, unrelated or missing certificates) the
// original order is kept, as upstream does since v1.6.
import forge from "node-forge";

const OID_SUBJECT_KEY_ID = "2.5.29.14";
const OID_AUTHORITY_KEY_ID = "2.5.29.35";

export interface KeyIds {
  subjectKeyId?: string;
  authorityKeyId?: string;
}

/** Reads the SKI and AKI keyIdentifier (hex) of a DER certificate. */
export function readKeyIds(der: Uint8Array): KeyIds {
  const ids: KeyIds = {};
  let cert: forge.asn1.Asn1;
  try {
    cert = forge.asn1.fromDer(forge.util.createBuffer(Buffer.from(der).toString("binary")), false);
  } catch {
    return ids;
  }
  const tbs = (cert.value as forge.asn1.Asn1[])[0];
  if (!tbs || !Array.isArray(tbs.value)) return ids;
  // extensions are the [3] EXPLICIT context element of TBSCertificate
  const extsWrapper = tbs.value.find((el) => el.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && el.type === 3);
  const exts = extsWrapper && Array.isArray(extsWrapper.value) ? (extsWrapper.value[0]?.value as forge.asn1.Asn1[] | undefined) : undefined;
  for (const ext of exts ?? []) {
    const parts = ext.value as forge.asn1.Asn1[];
    if (!Array.isArray(parts) || parts.length < 2) continue;
    const oid = forge.asn1.derToOid(parts[0]!.value as string);
    const octets = parts[parts.length - 1]!.value;
    if (typeof octets !== "string") continue;
    try {
      const inner = forge.asn1.fromDer(forge.util.createBuffer(octets), false);
      if (oid === OID_SUBJECT_KEY_ID && typeof inner.value === "string") {
        ids.subjectKeyId = forge.util.bytesToHex(inner.value);
      } else if (oid === OID_AUTHORITY_KEY_ID && Array.isArray(inner.value)) {
        // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, ... }
        const keyId = inner.value.find((el) => el.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && el.type === 0);
        if (keyId && typeof keyId.value === "string") ids.authorityKeyId = forge.util.bytesToHex(keyId.value);
      }
    } catch {
      // a malformed extension just gives no link
    }
  }
  return ids;
}

export type ChainResult = { ordered: true; certificates: Buffer[] } | { ordered: false; certificates: Buffer[]; reason: string };

/**
 * Orders certificates leaf first. Returns the input order (ordered: false,
 * with the reason for a log line) when no complete chain covers them all.
 */
export function constructChain(certificates: readonly Buffer[]): ChainResult {
  if (certificates.length <= 1) return { ordered: true, certificates: [...certificates] };
  const ids = certificates.map(readKeyIds);
  const parent: Array<number | undefined> = ids.map(() => undefined);
  const isParent = ids.map(() => false);
  for (let i = 0; i < ids.length; i++) {
    const aki = ids[i]!.authorityKeyId;
    if (aki === undefined) continue;
    for (let j = 0; j < ids.length; j++) {
      if (i === j) continue;
      if (ids[j]!.subjectKeyId === aki) {
        parent[i] = j;
        isParent[j] = true;
        break;
      }
    }
  }
  const leaf = isParent.indexOf(false);
  if (leaf < 0) return { ordered: false, certificates: [...certificates], reason: "no leaf found" };
  const order: number[] = [];
  const seen = new Set<number>();
  for (let at: number | undefined = leaf; at !== undefined; at = parent[at]) {
    if (seen.has(at)) return { ordered: false, certificates: [...certificates], reason: "constructing chain resulted in cycle" };
    seen.add(at);
    order.push(at);
  }
  if (order.length !== certificates.length) {
    return {
      ordered: false,
      certificates: [...certificates],
      reason: `chain from the leaf covers ${order.length} of ${certificates.length} certificates`,
    };
  }
  return { ordered: true, certificates: order.map((i) => certificates[i]!) };
}
