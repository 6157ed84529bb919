// PKCS#12 (PFX) files. Written the way Key Vault hands them out: empty
// password, legacy password-based encryption (pbeWithSHAAnd3-KeyTripleDES-CBC
// for both the key bag and the certificate bags) and a SHA-1 HMAC, which every
// PKCS#12 reader (Go x/crypto/pkcs12, OpenSSL, node-forge) accepts. Read with
// node-forge, which also understands the modern PBES2/AES files.
import { createCipheriv, createHash, createHmac, createPrivateKey, randomBytes, type KeyObject } from "node:crypto";
import forge from "node-forge";
import { readPkcs12 } from "../../shared/crypto/pkcs12.ts";

const { asn1 } = forge;
type Asn1 = forge.asn1.Asn1;

const OID = {
  data: "1.2.840.113549.1.7.1",
  encryptedData: "1.2.840.113549.1.7.6",
  certBag: "1.2.840.113549.1.12.10.1.3",
  pkcs8ShroudedKeyBag: "1.2.840.113549.1.12.10.1.2",
  x509Certificate: "1.2.840.113549.1.9.22.1",
  localKeyId: "1.2.840.113549.1.9.21",
  friendlyName: "1.2.840.113549.1.9.20",
  pbeWithSha1And3KeyTripleDesCbc: "1.2.840.113549.1.12.1.3",
  sha1: "1.3.14.3.2.26",
};

const ITERATIONS = 2048;

function seq(children: Asn1[]): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, children);
}
function set(children: Asn1[]): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, children);
}
function oid(value: string): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(value).getBytes());
}
function octets(bytes: Buffer): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes.toString("binary"));
}
function integer(value: number): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(value).getBytes());
}
function explicit(tag: number, child: Asn1): Asn1 {
  return asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag, true, [child]);
}
function der(node: Asn1): Buffer {
  return Buffer.from(asn1.toDer(node).getBytes(), "binary");
}
function parse(bytes: Buffer): Asn1 {
  return asn1.fromDer(bytes.toString("binary"));
}

/** PKCS#12 key derivation (RFC 7292 appendix B) with SHA-1. */
function deriveKey(password: string, salt: Buffer, purpose: 1 | 2 | 3, length: number): Buffer {
  const key = forge.pkcs12.generateKey(password, new forge.util.ByteStringBuffer(salt.toString("binary")), purpose, ITERATIONS, length);
  return Buffer.from(key.getBytes(), "binary");
}

/** Encrypts with pbeWithSHAAnd3-KeyTripleDES-CBC; returns the AlgorithmIdentifier and the ciphertext. */
function pbeEncrypt(plain: Buffer, password: string): { algorithm: Asn1; ciphertext: Buffer } {
  const salt = randomBytes(8);
  const cipher = createCipheriv("des-ede3-cbc", deriveKey(password, salt, 1, 24), deriveKey(password, salt, 2, 8));
  const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
  const algorithm = seq([oid(OID.pbeWithSha1And3KeyTripleDesCbc), seq([octets(salt), integer(ITERATIONS)])]);
  return { algorithm, ciphertext };
}

function bagAttributes(localKeyId: Buffer, friendlyName?: string): Asn1 {
  const attributes = [seq([oid(OID.localKeyId), set([octets(localKeyId)])])];
  if (friendlyName) {
    const bmp = Buffer.alloc(friendlyName.length * 2);
    for (let i = 0; i < friendlyName.length; i++) bmp.writeUInt16BE(friendlyName.charCodeAt(i), i * 2);
    attributes.push(seq([oid(OID.friendlyName), set([asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BMPSTRING, false, bmp.toString("binary"))])]));
  }
  return set(attributes);
}

export interface PfxContents {
  privateKey: KeyObject;
  /** Certificates as DER, the one matching the key first. */
  certificates: Buffer[];
  friendlyName?: string;
}

/** Writes a PFX (DER bytes) with the given password (Key Vault uses ""). */
export function writePfx(contents: PfxContents, password = ""): Buffer {
  if (contents.certificates.length === 0) throw new Error("a PFX needs at least one certificate");
  const localKeyId = createHash("sha1").update(contents.certificates[0]!).digest();

  const certBags = contents.certificates.map((certificate, index) => {
    const bag = [oid(OID.certBag), explicit(0, seq([oid(OID.x509Certificate), explicit(0, octets(certificate))]))];
    if (index === 0) bag.push(bagAttributes(localKeyId, contents.friendlyName));
    return seq(bag);
  });
  const encryptedCerts = pbeEncrypt(der(seq(certBags)), password);
  const certsInfo = seq([
    oid(OID.encryptedData),
    explicit(
      0,
      seq([
        integer(0),
        seq([
          oid(OID.data),
          encryptedCerts.algorithm,
          asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, false, encryptedCerts.ciphertext.toString("binary")),
        ]),
      ]),
    ),
  ]);

  const pkcs8 = contents.privateKey.export({ type: "pkcs8", format: "der" });
  const encryptedKey = pbeEncrypt(pkcs8, password);
  const keyBag = seq([
    oid(OID.pkcs8ShroudedKeyBag),
    explicit(0, seq([encryptedKey.algorithm, octets(encryptedKey.ciphertext)])),
    bagAttributes(localKeyId, contents.friendlyName),
  ]);
  const keyInfo = seq([oid(OID.data), explicit(0, octets(der(seq([keyBag]))))]);

  const authenticatedSafe = der(seq([certsInfo, keyInfo]));
  const macSalt = randomBytes(8);
  const mac = createHmac("sha1", deriveKey(password, macSalt, 3, 20)).update(authenticatedSafe).digest();
  const macData = seq([
    seq([seq([oid(OID.sha1), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, "")]), octets(mac)]),
    octets(macSalt),
    integer(ITERATIONS),
  ]);
  return der(seq([integer(3), seq([oid(OID.data), explicit(0, octets(authenticatedSafe))]), macData]));
}

export interface ParsedPfx {
  privateKeys: KeyObject[];
  /** Certificates as DER in file order. */
  certificates: Buffer[];
}

/** Reads a PFX; throws an Error with a readable message on a bad file or password. */
export function readPfx(bytes: Buffer, password = ""): ParsedPfx {
  let contents;
  try {
    contents = readPkcs12(bytes, password);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`the PKCS#12 content could not be read (wrong password or not a PFX file): ${reason}`, { cause: err });
  }
  return {
    privateKeys: contents.keys.map((key) => createPrivateKey({ key, format: "der", type: "pkcs8" })),
    certificates: contents.certificates,
  };
}

/** True if the bytes parse as a DER SEQUENCE starting like a PFX (version 3). */
export function looksLikePfx(bytes: Buffer): boolean {
  try {
    const root = parse(bytes);
    const version = (root.value as Asn1[])[0];
    return version !== undefined && version.type === asn1.Type.INTEGER && asn1.derToInteger(version.value as string) === 3;
  } catch {
    return false;
  }
}
