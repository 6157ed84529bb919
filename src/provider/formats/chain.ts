// Certificate chain ordering (--construct-pem-chain): leaf → intermediates →
// root, linking each certificate to the one whose Subject Key Identifier
// equals its Authority Key Identifier. When the links do not cover every
// certificate (missing AKI/SKI, unrelated or missing certificates) the
// original order is kept, as upstream does since v1.6.
import { children, DER_OCTET_STRING, DER_OID, DER_SEQUENCE, readElement } from "../../shared/crypto/der.ts";

// The content octets of the extension OIDs: 2.5.29.14 and 2.5.29.35.
const OID_SUBJECT_KEY_ID = "551d0e";
const OID_AUTHORITY_KEY_ID = "551d23";
/** [3] EXPLICIT, constructed: the extensions of TBSCertificate. */
const TBS_EXTENSIONS = 0xa3;
/** [0] IMPLICIT OCTET STRING: keyIdentifier in AuthorityKeyIdentifier. */
const AKI_KEY_IDENTIFIER = 0x80;

export interface KeyIds {
  subjectKeyId?: string;
  authorityKeyId?: string;
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** Reads the SKI and AKI keyIdentifier (hex) of a DER certificate; a malformed part gives no id. */
export function readKeyIds(der: Uint8Array): KeyIds {
  const ids: KeyIds = {};
  let extensions;
  try {
    const certificate = readElement(der).element;
    const tbs = children(certificate.content)[0];
    if (certificate.tag !== DER_SEQUENCE || tbs?.tag !== DER_SEQUENCE) return ids;
    const wrapper = children(tbs.content).find((el) => el.tag === TBS_EXTENSIONS);
    if (!wrapper) return ids;
    extensions = children(children(wrapper.content)[0]?.content ?? new Uint8Array());
  } catch {
    return ids;
  }
  for (const extension of extensions) {
    try {
      // Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
      const parts = children(extension.content);
      const oid = parts[0];
      const value = parts.at(-1);
      if (oid?.tag !== DER_OID || value?.tag !== DER_OCTET_STRING || parts.length < 2) continue;
      const inner = readElement(value.content).element;
      if (hex(oid.content) === OID_SUBJECT_KEY_ID && inner.tag === DER_OCTET_STRING) {
        ids.subjectKeyId = hex(inner.content);
      } else if (hex(oid.content) === OID_AUTHORITY_KEY_ID && inner.tag === DER_SEQUENCE) {
        // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, ... }
        const keyId = children(inner.content).find((el) => el.tag === AKI_KEY_IDENTIFIER);
        if (keyId) ids.authorityKeyId = hex(keyId.content);
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
