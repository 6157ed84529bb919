// PEM and text encodings with Go's exact output and input rules, so files are
// byte-identical to the upstream provider's: PEM bodies in 64-character base64
// lines, "\n" line endings, a trailing newline; base64 decoding as Go's
// StdEncoding (padding required, CR/LF ignored); strict hex.
import { conversionFailed } from "./errors.ts";

export interface PemBlock {
  type: string;
  bytes: Buffer;
}

/** Encodes one PEM block as Go's pem.EncodeToMemory does (no headers). */
export function encodePem(type: string, bytes: Uint8Array): string {
  const body = Buffer.from(bytes).toString("base64");
  let out = `-----BEGIN ${type}-----\n`;
  for (let i = 0; i < body.length; i += 64) out += body.slice(i, i + 64) + "\n";
  return out + `-----END ${type}-----\n`;
}

export function encodePemBlocks(blocks: readonly PemBlock[]): string {
  return blocks.map((b) => encodePem(b.type, b.bytes)).join("");
}

const BEGIN = /-----BEGIN ([^\n-]*)-----\r?\n/g;

/**
 * Decodes every PEM block in the text, in order, as Go's pem.Decode loop
 * would: text outside blocks is skipped, header lines ("Key: value") are
 * dropped, a block whose body is not valid base64 ends the scan.
 */
export function decodePemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  BEGIN.lastIndex = 0;
  for (let match = BEGIN.exec(text); match; match = BEGIN.exec(text)) {
    const type = match[1]!;
    const end = `-----END ${type}-----`;
    const endIndex = text.indexOf(end, BEGIN.lastIndex);
    if (endIndex < 0) break;
    const lines = text.slice(BEGIN.lastIndex, endIndex).split(/\r?\n/);
    const body = lines.filter((line) => !line.includes(":")).join("");
    const bytes = decodeBase64Lenient(body);
    if (!bytes) break;
    blocks.push({ type, bytes });
    BEGIN.lastIndex = endIndex + end.length;
  }
  return blocks;
}

function decodeBase64Lenient(body: string): Buffer | undefined {
  const compact = body.replace(/[ \t\r\n]/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) return undefined;
  return Buffer.from(compact, "base64");
}

/**
 * Go base64.StdEncoding.DecodeString: standard alphabet, padding required,
 * "\r" and "\n" ignored. The error names the offset, never the data.
 */
export function decodeBase64Strict(text: string): Buffer {
  const compact = text.replace(/[\r\n]/g, "");
  const bad = compact.search(/[^A-Za-z0-9+/=]/);
  if (bad >= 0) throw conversionFailed(`illegal base64 data at input byte ${bad}`);
  const pad = compact.indexOf("=");
  if (pad >= 0 && !/^={1,2}$/.test(compact.slice(pad))) throw conversionFailed(`illegal base64 data at input byte ${pad}`);
  if (compact.length % 4 !== 0) throw conversionFailed(`illegal base64 data at input byte ${compact.length - (compact.length % 4)}`);
  if (pad >= 0 && compact.length - pad > 2) throw conversionFailed(`illegal base64 data at input byte ${pad}`);
  return Buffer.from(compact, "base64");
}

/**
 * Go hex.DecodeString. Unlike Go, the error does not quote the offending
 * character (it is part of a secret value).
 */
export function decodeHexStrict(text: string): Buffer {
  const bad = text.search(/[^0-9a-fA-F]/);
  if (bad >= 0) throw conversionFailed(`encoding/hex: invalid byte at offset ${bad}`);
  if (text.length % 2 !== 0) throw conversionFailed("encoding/hex: odd length hex string");
  return Buffer.from(text, "hex");
}
