// Builds the data of a synced Secret from the files mounted in a pod's volume
// (reference driver-spec §6.1 steps 5-6 and §6.2). Every Secret type is passed
// through as is; kubernetes.io/tls keeps only the certificates (tls.crt) and
// the private key re-encoded as PKCS#1 or SEC1 (tls.key), from PEM or, when
// the file holds no PEM, from a PKCS#12/PFX archive with an empty password.
// Errors name files, keys and what is wrong, never any content.
import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { lstat, readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import forge from "node-forge";
import { DATA_DIR_NAME, readVolumeFiles } from "./atomic-writer.ts";
import type { SecretObject } from "./kube-types.ts";

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
// Mounted files

async function walkPlain(dir: string, prefix: string, out: Map<string, MountedFile>): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    // Only top-level entries starting with ".." belong to the atomic writer.
    if (prefix === "" && entry.name.startsWith("..")) continue;
    const full = join(dir, entry.name);
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    // Top-level symlinks are followed, as upstream does.
    const st = entry.isSymbolicLink() && prefix === "" ? await stat(full) : await lstat(full);
    if (st.isDirectory()) await walkPlain(full, rel, out);
    else if (st.isFile()) out.set(rel, { path: rel, contents: await readFile(full) });
  }
}

/**
 * Reads the files visible in a mounted volume. The driver's own volumes use
 * the atomic-writer layout (<target>/..data); a volume written some other way
 * is read as a plain tree, skipping top-level `..` entries.
 */
export async function readMountedFiles(targetPath: string): Promise<Map<string, MountedFile>> {
  let hasDataDir = false;
  try {
    hasDataDir = (await lstat(join(targetPath, DATA_DIR_NAME))).isSymbolicLink();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const out = new Map<string, MountedFile>();
  if (hasDataDir) {
    for (const [path, file] of await readVolumeFiles(targetPath)) out.set(path, { path, contents: file.contents });
    return out;
  }
  await walkPlain(targetPath, "", out);
  return out;
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
 * kubernetes.io/tls each value is derived with tlsPart().
 */
export function buildSecretData(
  obj: SecretObject,
  files: ReadonlyMap<string, MountedFile>,
  targetPath = "",
): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const item of obj.data ?? []) {
    const objectName = (item.objectName ?? "").trim();
    const key = (item.key ?? "").trim();
    if (!objectName) throw new SecretDataError("object name in secretObjects.data is empty");
    if (!key) throw new SecretDataError("key in secretObjects.data is empty");
    const file = files.get(objectName);
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
// PEM

export interface PemBlock {
  type: string;
  headers: Record<string, string>;
  bytes: Buffer;
}

const PEM_BLOCK = /-----BEGIN ([^\r\n-]*)-----\r?\n([\s\S]*?)-----END \1-----/g;
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

/** Every well-formed PEM block in the data, in order. Malformed blocks are skipped. */
export function decodePemBlocks(data: Buffer): PemBlock[] {
  const text = data.toString("latin1");
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    const type = match[1] ?? "";
    const lines = (match[2] ?? "").split(/\r?\n/);
    const headers: Record<string, string> = {};
    let i = 0;
    while (i < lines.length && lines[i]!.includes(":")) {
      const line = lines[i]!;
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
      i++;
    }
    const body = lines.slice(i).join("").replace(/[\s]/g, "");
    if (!BASE64_BODY.test(body) || body.length % 4 === 1) continue;
    blocks.push({ type, headers, bytes: Buffer.from(body, "base64") });
  }
  return blocks;
}

/** One PEM block with 64-character lines and no headers. */
export function encodePem(type: string, bytes: Buffer): string {
  const b64 = bytes.toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${type}-----\n${lines.join("\n")}${lines.length ? "\n" : ""}-----END ${type}-----\n`;
}

// ---------------------------------------------------------------------------
// PKCS#12 / PFX

interface PfxContents {
  certificates: Buffer[];
  /** The last key in the archive, as a node:crypto key. */
  key?: KeyObject;
}

const bytesOf = (binary: string): Buffer => Buffer.from(binary, "binary");

/**
 * The DER of a certificate bag. forge keeps the signed TBSCertificate exactly as
 * read; the outer signature algorithm must equal the TBSCertificate's own
 * (RFC 5280 4.1.1.2), so that copy is used rather than forge's re-encoding.
 */
function certificateDer(bag: forge.pkcs12.Bag): Buffer {
  const { asn1 } = forge;
  if (!bag.cert) return bytesOf(asn1.toDer(bag.asn1).getBytes());
  const cert = bag.cert as forge.pki.Certificate & { tbsCertificate?: forge.asn1.Asn1; signature: string };
  const tbs = cert.tbsCertificate;
  const fields = tbs && Array.isArray(tbs.value) ? (tbs.value as forge.asn1.Asn1[]) : [];
  const algorithm = fields.find((f) => f.tagClass === asn1.Class.UNIVERSAL && f.type === asn1.Type.SEQUENCE);
  if (!tbs || !algorithm) return bytesOf(asn1.toDer(forge.pki.certificateToAsn1(bag.cert)).getBytes());
  const der = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    algorithm,
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, String.fromCharCode(0) + cert.signature),
  ]);
  return bytesOf(asn1.toDer(der).getBytes());
}

function keyOfBag(bag: forge.pkcs12.Bag): KeyObject {
  if (bag.key) {
    const der = bytesOf(forge.asn1.toDer(forge.pki.privateKeyToAsn1(bag.key)).getBytes());
    return createPrivateKey({ key: der, format: "der", type: "pkcs1" });
  }
  // forge only models RSA keys; others (EC) come as the PrivateKeyInfo ASN.1.
  const der = bytesOf(forge.asn1.toDer(bag.asn1).getBytes());
  return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
}

/** Parses a PKCS#12/PFX archive protected by an empty password. */
export function parsePfx(data: Buffer): PfxContents {
  let parsed: forge.asn1.Asn1;
  try {
    parsed = forge.asn1.fromDer(forge.util.createBuffer(data.toString("binary")), false);
  } catch (err) {
    throw new SecretDataError(`not a PKCS#12/PFX archive: ${(err as Error).message}`);
  }
  let pfx: forge.pkcs12.Pkcs12Pfx | undefined;
  let lastError: unknown;
  // An empty password is encoded either as a lone terminator (what Go and
  // forge send) or as nothing at all (some writers); try both.
  for (const password of ["", null]) {
    try {
      pfx = forge.pkcs12.pkcs12FromAsn1(parsed, false, password as string);
      break;
    } catch (err) {
      lastError = err;
    }
  }
  if (!pfx) throw new SecretDataError(`failed to decode PKCS#12/PFX data with an empty password: ${(lastError as Error).message}`);
  const contents: PfxContents = { certificates: [] };
  for (const safe of pfx.safeContents) {
    for (const bag of safe.safeBags) {
      if (bag.type === forge.pki.oids.certBag) contents.certificates.push(certificateDer(bag));
      else if (bag.type === forge.pki.oids.keyBag || bag.type === forge.pki.oids.pkcs8ShroudedKeyBag) {
        try {
          contents.key = keyOfBag(bag);
        } catch (err) {
          throw new SecretDataError(`failed to parse the private key in the PKCS#12/PFX archive: ${(err as Error).message}`);
        }
      }
    }
  }
  return contents;
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
