// Builds the data of a synced Secret from the files a provider returned
// (reference driver-spec §6.1 steps 5-6 and §6.2). Every Secret type is passed
// through as is; kubernetes.io/tls keeps only the certificates (tls.crt) and
// the private key re-encoded as PKCS#1 or SEC1 (tls.key), from PEM or, when
// the file holds no PEM, from a PKCS#12/PFX archive with an empty password.
// Errors name files, keys and what is wrong, never any content.
import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { join } from "node:path";
import { decodePemBlocks, encodePem } from "../crypto/pem.ts";
import { loadPkcs12Reader, pkcs12Reader } from "../crypto/pkcs12-loader.ts";
import type { SecretObject } from "../kube/kube-types.ts";

export const TLS_SECRET_TYPE = "kubernetes.io/tls";
export const TLS_CERT_KEY = "tls.crt";
export const TLS_PRIVATE_KEY_KEY = "tls.key";

const CERTIFICATE_BLOCK = "CERTIFICATE";

/** A mounted file, keyed by its path relative to the mount (an object name or alias, e.g. `name/0`). */
export interface MountedFile {
  path: string;
  contents: Buffer;
}

/** A secretObject that cannot be turned into a Secret; the message is safe to show (no content). */
export class SecretDataError extends Error {
  override readonly name = "SecretDataError";
}

// ---------------------------------------------------------------------------
// Validation and data

/** Upstream's validation of a secretObject (the messages are upstream's). */
export function validateSecretObject(obj: SecretObject): void {
  if (!obj.secretName?.trim()) throw new SecretDataError("secret name is empty");
  if (!obj.type) throw new SecretDataError("secret type is empty");
  if (!obj.data || obj.data.length === 0) throw new SecretDataError("data is empty");
}

/**
 * The Secret data of one secretObject: data key -> bytes. For
 * kubernetes.io/tls each value is derived with tlsPart(). A key whose file
 * the provider reported missing (`missing`: an optional object it did not
 * find) is left out, not filled with an empty value.
 */
export function buildSecretData(
  obj: SecretObject,
  files: ReadonlyMap<string, MountedFile>,
  targetPath = "",
  missing: (path: string) => boolean = () => false,
): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const item of obj.data ?? []) {
    const objectName = (item.objectName ?? "").trim();
    const key = (item.key ?? "").trim();
    if (!objectName) throw new SecretDataError("object name in secretObjects.data is empty");
    if (!key) throw new SecretDataError("key in secretObjects.data is empty");
    const file = files.get(objectName);
    if (!file && missing(objectName)) continue;
    if (!file) throw new SecretDataError(`file matching objectName ${objectName} not found in the pod`);
    if (obj.type === TLS_SECRET_TYPE) {
      try {
        out[key] = tlsPart(file.contents, key);
      } catch (err) {
        const where = targetPath ? join(targetPath, objectName) : objectName;
        throw new SecretDataError(`failed to get cert data from file ${where}, err: ${(err as Error).message}`);
      }
    } else {
      out[key] = Buffer.from(file.contents);
    }
  }
  return out;
}

/** The tls.crt or tls.key value derived from a mounted file. */
export function tlsPart(contents: Buffer, key: string): Buffer {
  if (key === TLS_PRIVATE_KEY_KEY) return privateKeyPem(contents);
  if (key === TLS_CERT_KEY) return certificatesPem(contents);
  throw new SecretDataError(`key '${key}' is not supported. Only 'tls.key' and 'tls.crt' are supported`);
}

// ---------------------------------------------------------------------------
// PKCS#12 / PFX

interface PfxContents {
  certificates: Buffer[];
  /** The last key in the archive, as a node:crypto key. */
  key?: KeyObject;
}

/** Loads what kubernetes.io/tls Secrets may need (the PKCS#12 reader); most drivers never build one. */
export const loadTlsSupport = loadPkcs12Reader;

/** Parses a PKCS#12/PFX archive protected by an empty password. */
function parsePfx(data: Buffer): PfxContents {
  let archive;
  try {
    archive = pkcs12Reader()(data);
  } catch (err) {
    throw new SecretDataError(`failed to decode PKCS#12/PFX data with an empty password: ${(err as Error).message}`);
  }
  const last = archive.keys.at(-1);
  if (last === undefined) return { certificates: archive.certificates };
  try {
    return { certificates: archive.certificates, key: createPrivateKey({ key: last, format: "der", type: "pkcs8" }) };
  } catch (err) {
    throw new SecretDataError(`failed to parse the private key in the PKCS#12/PFX archive: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------
// tls.crt and tls.key

/** tls.crt: every PEM CERTIFICATE block in order, else the certificates of a PFX archive. */
export function certificatesPem(contents: Buffer): Buffer {
  const blocks = decodePemBlocks(contents);
  const certs = blocks.filter((b) => b.type === CERTIFICATE_BLOCK);
  if (certs.length > 0) return Buffer.from(certs.map((b) => encodePem(CERTIFICATE_BLOCK, b.bytes)).join(""), "latin1");
  if (blocks.length > 0) throw new SecretDataError("no PEM CERTIFICATE block found in the file");
  const pfx = parsePfx(contents);
  if (pfx.certificates.length === 0) throw new SecretDataError("no certificate found in the PKCS#12/PFX archive");
  for (const der of pfx.certificates) {
    try {
      new X509Certificate(der);
    } catch (err) {
      throw new SecretDataError(`invalid certificate in the PKCS#12/PFX archive: ${(err as Error).message}`);
    }
  }
  return Buffer.from(pfx.certificates.map((der) => encodePem(CERTIFICATE_BLOCK, der)).join(""), "latin1");
}

function exportKey(key: KeyObject): Buffer {
  switch (key.asymmetricKeyType) {
    case "rsa":
      return Buffer.from(key.export({ type: "pkcs1", format: "pem" }) as string, "latin1");
    case "ec":
      return Buffer.from(key.export({ type: "sec1", format: "pem" }) as string, "latin1");
    default:
      throw new SecretDataError("unknown private key type found while getting key. Only rsa and ecdsa are supported");
  }
}

/** Parses DER as PKCS#1, then PKCS#8, then SEC1, as upstream does. */
function parseKeyDer(der: Buffer): KeyObject {
  for (const type of ["pkcs1", "pkcs8", "sec1"] as const) {
    try {
      return createPrivateKey({ key: der, format: "der", type });
    } catch {
      // try the next encoding
    }
  }
  throw new SecretDataError("failed to parse private key: it is not an unencrypted PKCS#1, PKCS#8 or SEC1 key");
}

/**
 * tls.key: the last non-CERTIFICATE PEM block (else the key of a PFX archive),
 * re-encoded as `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC1).
 */
export function privateKeyPem(contents: Buffer): Buffer {
  const all = decodePemBlocks(contents);
  const last = all.filter((b) => b.type !== CERTIFICATE_BLOCK).at(-1);
  if (last) {
    if (last.type === "ENCRYPTED PRIVATE KEY" || /ENCRYPTED/i.test(last.headers["Proc-Type"] ?? "")) {
      throw new SecretDataError("failed to parse private key: encrypted private keys are not supported");
    }
    return exportKey(parseKeyDer(last.bytes));
  }
  if (all.length > 0) throw new SecretDataError("no PEM private key block found in the file");
  const pfx = parsePfx(contents);
  if (!pfx.key) throw new SecretDataError("no private key found in the PKCS#12/PFX archive");
  return exportKey(pfx.key);
}
