// The objectEncoding decoders with Go's exact input rules: base64 as Go's
// StdEncoding (padding required, CR/LF ignored) and strict hex. PEM armour is
// in src/shared/crypto/pem.ts.
import { conversionFailed } from "../errors.ts";

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
