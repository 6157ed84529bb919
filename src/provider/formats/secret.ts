// objectType: secret. A plain secret is its value with objectEncoding
// applied. A certificate-backed secret (it has a `kid`) is converted by its
// contentType: PEM verbatim; PKCS#12 as the base64 PFX text (objectFormat pfx)
// or converted to PEM (keys as PKCS#8 first, then the certificates, as a
// leaf-to-root chain when --construct-pem-chain). With
// --write-cert-and-key-in-separate-files a certificate-backed secret also
// gives `<file>.crt` and `<file>.key`, which precede the main file.
import { constructChain } from "./chain.ts";
import { conversionFailed } from "../errors.ts";
import type { ObjectEncoding, ObjectFormat } from "../objects/objects.ts";
import { decodePemBlocks, encodePem } from "../../shared/crypto/pem.ts";
import { decodeBase64Strict, decodeHexStrict } from "./encodings.ts";
import { parsePkcs12, privateKeyToPkcs8Pem } from "./pkcs12.ts";

export interface FetchedSecret {
  value: string;
  contentType: string | undefined;
  /** Set for the secret of a Key Vault certificate. */
  kid: string | undefined;
  version: string;
  /** The object's tags (for objectTags). */
  tags?: Record<string, string>;
}

export interface SecretOptions {
  objectFormat: ObjectFormat;
  objectEncoding: ObjectEncoding;
  constructPemChain: boolean;
  writeCertAndKeyInSeparateFiles: boolean;
  /** Called when a chain could not be ordered (kept in PFX order). */
  onChainFallback?: (reason: string) => void;
}

/** A file of an object: `suffix` is appended to the object's file name. */
export interface ObjectFile {
  suffix: "" | ".crt" | ".key";
  contents: Buffer;
}

export const CONTENT_TYPE_PEM = "application/x-pem-file";
export const CONTENT_TYPE_PKCS12 = "application/x-pkcs12";

export function applyEncoding(text: string, encoding: ObjectEncoding): Buffer {
  switch (encoding) {
    case "base64":
      return decodeBase64Strict(text);
    case "hex":
      return decodeHexStrict(text);
    default:
      return Buffer.from(text, "utf8");
  }
}

/** PKCS#12 → PEM: every key as PKCS#8, then the certificates. */
export function pkcs12ToPem(pfxBase64: string, constructPemChain: boolean, onChainFallback?: (reason: string) => void): string {
  const pfx = decodeBase64Strict(pfxBase64);
  const { keys, certificates } = parsePkcs12(pfx);
  let certs = certificates;
  if (constructPemChain) {
    const chain = constructChain(certificates);
    if (!chain.ordered) onChainFallback?.(chain.reason);
    certs = chain.certificates;
  }
  return keys.map(privateKeyToPkcs8Pem).join("") + certs.map((der) => encodePem("CERTIFICATE", der)).join("");
}

/** The content of a certificate-backed secret before objectEncoding. */
export function certificateSecretContent(secret: FetchedSecret, options: SecretOptions): string {
  switch (secret.contentType) {
    case CONTENT_TYPE_PEM:
      return secret.value;
    case CONTENT_TYPE_PKCS12:
      if (options.objectFormat === "pfx") return secret.value;
      return pkcs12ToPem(secret.value, options.constructPemChain, options.onChainFallback);
    default:
      throw conversionFailed(`failed to get certificate. unknown content type '${secret.contentType ?? ""}'`);
  }
}

/** Splits PEM text into its certificates and everything else, each block re-encoded. */
export function splitCertAndKey(content: string): { crt: string; key: string } {
  let crt = "";
  let key = "";
  for (const block of decodePemBlocks(content)) {
    const pem = encodePem(block.type, block.bytes);
    if (block.type === "CERTIFICATE") crt += pem;
    else key += pem;
  }
  return { crt, key };
}

export function secretFiles(secret: FetchedSecret, options: SecretOptions): ObjectFile[] {
  if (!secret.kid) return [{ suffix: "", contents: applyEncoding(secret.value, options.objectEncoding) }];
  const content = certificateSecretContent(secret, options);
  const files: ObjectFile[] = [];
  if (options.writeCertAndKeyInSeparateFiles) {
    const { crt, key } = splitCertAndKey(content);
    files.push({ suffix: ".crt", contents: applyEncoding(crt, options.objectEncoding) });
    files.push({ suffix: ".key", contents: applyEncoding(key, options.objectEncoding) });
  }
  files.push({ suffix: "", contents: applyEncoding(content, options.objectEncoding) });
  return files;
}
