// Just enough DER to walk an X.509 certificate's extensions: tag, length,
// content. node:crypto parses certificates but does not expose the Subject
// and Authority Key Identifiers that chain ordering needs.

export interface DerElement {
  /** The identifier octet (class, constructed bit, tag number < 31). */
  tag: number;
  /** Content bytes (a view into the input). */
  content: Uint8Array;
}

/** Reads the element at offset; returns it and the offset after it. Throws on malformed input. */
export function readElement(der: Uint8Array, offset = 0): { element: DerElement; next: number } {
  if (offset + 2 > der.length) throw new Error("truncated DER");
  const tag = der[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new Error("high tag numbers are not used in certificates");
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets === 0 || octets > 4 || start + octets > der.length) throw new Error("bad DER length");
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + der[start + i]!;
    start += octets;
  }
  if (start + length > der.length) throw new Error("truncated DER");
  return { element: { tag, content: der.subarray(start, start + length) }, next: start + length };
}

/** The elements inside a constructed element's content. */
export function children(content: Uint8Array): DerElement[] {
  const out: DerElement[] = [];
  for (let offset = 0; offset < content.length; ) {
    const { element, next } = readElement(content, offset);
    out.push(element);
    offset = next;
  }
  return out;
}

export const DER_SEQUENCE = 0x30;
export const DER_OID = 0x06;
export const DER_OCTET_STRING = 0x04;
