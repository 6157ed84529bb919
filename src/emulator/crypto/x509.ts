// X.509 certificates for the emulator's own TLS CA and for Key Vault
// certificates (self-signed, or a generated root -> intermediate -> leaf chain).
// node-forge lays out the TBSCertificate (names, validity, extensions); the
// public key and signature come from Node's crypto, so RSA and EC keys are
// both supported as subject and as issuer.
import { createHash, createPublicKey, randomBytes, sign, X509Certificate, type KeyObject } from "node:crypto";
import forge from "node-forge";
import { generatePrivateKey } from "./json-web-key.ts";

const { asn1 } = forge;

export interface CertificateRequest {
  /** Distinguished name such as "CN=web, O=Contoso". */
  subject: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  emails?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** Used when notAfter is absent (default 12). */
  validityMonths?: number;
  isCertificateAuthority?: boolean;
  pathLength?: number;
  /** Key usage names: digitalSignature, nonRepudiation, keyEncipherment, dataEncipherment, keyAgreement, keyCertSign, cRLSign. */
  keyUsage?: string[];
  /** Extended key usage OIDs. */
  extendedKeyUsage?: string[];
  /** The subject's public (or private) key. */
  publicKey: KeyObject;
  /** The issuer; absent means self-signed with `selfSigningKey`. */
  issuer?: CertificateIssuer;
  selfSigningKey?: KeyObject;
}

export interface CertificateIssuer {
  certificate: Buffer;
  privateKey: KeyObject;
}

/** A certificate together with its private key. */
export interface KeyedCertificate {
  certificate: Buffer;
  privateKey: KeyObject;
}

const SHORT_NAMES: Record<string, string> = {
  CN: "CN",
  O: "O",
  OU: "OU",
  C: "C",
  ST: "ST",
  S: "ST",
  L: "L",
  E: "E",
  EMAILADDRESS: "E",
};

const KEY_USAGE_NAMES = ["digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign"];

export const EKU_SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
export const EKU_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

/** Parses "CN=a, O=b" (commas inside values may be escaped with a backslash). */
export function parseDistinguishedName(dn: string): Array<{ shortName: string; value: string }> {
  const parts = dn.split(/(?<!\\),/).map((p) => p.trim()).filter((p) => p !== "");
  if (parts.length === 0) throw new Error(`invalid subject "${dn}": expected a distinguished name such as CN=example`);
  return parts.map((part) => {
    const eq = part.indexOf("=");
    const key = part.slice(0, eq).trim().toUpperCase();
    const shortName = SHORT_NAMES[key];
    if (eq <= 0 || !shortName) throw new Error(`invalid subject "${dn}": unsupported attribute "${part}"`);
    return { shortName, value: part.slice(eq + 1).trim().replace(/\\,/g, ",") };
  });
}

/** The public half of a key object (which may already be public). */
export function publicKeyOf(key: KeyObject): KeyObject {
  return key.type === "public" ? key : createPublicKey(key);
}

/** RFC 5280 method 1 key identifier: SHA-1 of the subjectPublicKey bits. */
export function subjectKeyIdentifier(key: KeyObject): Buffer {
  const publicKey = publicKeyOf(key);
  let bits: Buffer;
  if (publicKey.asymmetricKeyType === "rsa") {
    bits = publicKey.export({ type: "pkcs1", format: "der" });
  } else {
    const spki = asn1.fromDer(publicKey.export({ type: "spki", format: "der" }).toString("binary"));
    const bitString = (spki.value as forge.asn1.Asn1[])[1]!;
    const raw = (bitString as unknown as { bitStringContents?: string }).bitStringContents ?? (bitString.value as string);
    bits = Buffer.from(raw, "binary").subarray(1);
  }
  return createHash("sha1").update(bits).digest();
}

function signatureAlgorithm(key: KeyObject): { oid: string; hash: string; nullParams: boolean } {
  if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === "secp384r1") return { oid: "1.2.840.10045.4.3.3", hash: "sha384", nullParams: false };
    if (curve === "secp521r1") return { oid: "1.2.840.10045.4.3.4", hash: "sha512", nullParams: false };
    return { oid: "1.2.840.10045.4.3.2", hash: "sha256", nullParams: false };
  }
  return { oid: "1.2.840.113549.1.1.11", hash: "sha256", nullParams: true };
}

function algorithmIdentifier(oid: string, nullParams: boolean): forge.asn1.Asn1 {
  const parts = [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(oid).getBytes())];
  if (nullParams) parts.push(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ""));
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, parts);
}

function octetString(bytes: Buffer): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes.toString("binary"));
}

/** The TBSCertificate children: 0 version, 1 serial, 2 signature, 3 issuer, 4 validity, 5 subject, 6 spki, 7 extensions. */
function tbsOf(certificateDer: Buffer): forge.asn1.Asn1[] {
  const cert = asn1.fromDer(certificateDer.toString("binary"));
  return ((cert.value as forge.asn1.Asn1[])[0]!.value as forge.asn1.Asn1[]);
}

/** Builds and signs a certificate; returns its DER. */
export function createCertificate(request: CertificateRequest): Buffer {
  const signingKey = request.issuer?.privateKey ?? request.selfSigningKey;
  if (!signingKey) throw new Error("a self-signed certificate needs selfSigningKey");
  const subjectPublicKey = publicKeyOf(request.publicKey);
  const notBefore = request.notBefore ?? new Date(Date.now() - 5 * 60_000);
  const notAfter = request.notAfter ?? addMonths(notBefore, request.validityMonths ?? 12);

  const cert = forge.pki.createCertificate();
  // Placeholder key: forge only encodes RSA keys; the real SPKI replaces it below.
  cert.publicKey = forge.pki.setRsaPublicKey(new forge.jsbn.BigInteger("3"), new forge.jsbn.BigInteger("65537"));
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  cert.serialNumber = serial.toString("hex");
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  const subject = parseDistinguishedName(request.subject);
  cert.setSubject(subject);
  cert.setIssuer(subject);

  const extensions: unknown[] = [];
  if (request.isCertificateAuthority) {
    const basic: Record<string, unknown> = { name: "basicConstraints", cA: true, critical: true };
    if (request.pathLength !== undefined) basic.pathLenConstraint = request.pathLength;
    extensions.push(basic);
  } else {
    extensions.push({ name: "basicConstraints", cA: false });
  }
  const usages = request.keyUsage ?? (request.isCertificateAuthority ? ["keyCertSign", "cRLSign", "digitalSignature"] : ["digitalSignature", "keyEncipherment"]);
  const keyUsage: Record<string, unknown> = { name: "keyUsage", critical: true };
  for (const usage of usages) {
    if (!KEY_USAGE_NAMES.includes(usage)) throw new Error(`unknown key usage "${usage}"`);
    keyUsage[usage] = true;
  }
  extensions.push(keyUsage);
  if (request.extendedKeyUsage && request.extendedKeyUsage.length > 0) {
    extensions.push({
      id: "2.5.29.37",
      value: asn1.create(
        asn1.Class.UNIVERSAL,
        asn1.Type.SEQUENCE,
        true,
        request.extendedKeyUsage.map((oid) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(oid).getBytes())),
      ),
    });
  }
  const altNames = [
    ...(request.dnsNames ?? []).map((value) => ({ type: 2, value })),
    ...(request.emails ?? []).map((value) => ({ type: 1, value })),
    ...(request.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
  ];
  if (altNames.length > 0) extensions.push({ name: "subjectAltName", altNames });
  extensions.push({ id: "2.5.29.14", value: octetString(subjectKeyIdentifier(subjectPublicKey)) });
  const authorityKeyId = subjectKeyIdentifier(request.issuer ? new X509Certificate(request.issuer.certificate).publicKey : subjectPublicKey);
  extensions.push({
    id: "2.5.29.35",
    value: asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, false, authorityKeyId.toString("binary")),
    ]),
  });
  cert.setExtensions(extensions as never[]);

  const algorithm = signatureAlgorithm(signingKey);
  cert.siginfo.algorithmOid = forge.pki.oids.sha256WithRSAEncryption!;
  const tbs = (forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(cert);
  const fields = tbs.value as forge.asn1.Asn1[];
  fields[2] = algorithmIdentifier(algorithm.oid, algorithm.nullParams);
  if (request.issuer) fields[3] = tbsOf(request.issuer.certificate)[5]!;
  fields[6] = asn1.fromDer(subjectPublicKey.export({ type: "spki", format: "der" }).toString("binary"));

  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), "binary");
  const signature = sign(algorithm.hash, tbsDer, signingKey);
  const certificate = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    algorithmIdentifier(algorithm.oid, algorithm.nullParams),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, "\u0000" + signature.toString("binary")),
  ]);
  return Buffer.from(asn1.toDer(certificate).getBytes(), "binary");
}

function addMonths(date: Date, months: number): Date {
  const result = new Date(date.getTime());
  result.setUTCMonth(result.getUTCMonth() + months);
  return result;
}

export interface GeneratedChainOptions {
  subject: string;
  dnsNames?: string[];
  validityMonths?: number;
  /** "RSA" (default) or "EC". */
  keyType?: "RSA" | "EC";
  keySize?: number;
  curve?: "P-256" | "P-384" | "P-521";
  keyUsage?: string[];
  /** Extended key usage OIDs of the leaf (default serverAuth + clientAuth). */
  extendedKeyUsage?: string[];
}

/** A self-signed leaf certificate and its key. */
export async function generateSelfSignedCertificate(options: GeneratedChainOptions): Promise<KeyedCertificate> {
  const privateKey = await leafKey(options);
  const certificate = createCertificate({
    subject: options.subject,
    dnsNames: options.dnsNames,
    validityMonths: options.validityMonths,
    publicKey: privateKey,
    selfSigningKey: privateKey,
    keyUsage: options.keyUsage,
    extendedKeyUsage: options.extendedKeyUsage ?? [EKU_SERVER_AUTH, EKU_CLIENT_AUTH],
  });
  return { certificate, privateKey };
}

/**
 * A leaf issued by a generated intermediate issued by a generated root;
 * returns the leaf key and the chain leaf first.
 */
export async function generateCertificateChain(options: GeneratedChainOptions): Promise<{ privateKey: KeyObject; chain: Buffer[] }> {
  const common = leafCommonName(options.subject);
  const rootKey = await generatePrivateKey({ kty: "RSA", keySize: 2048 });
  const root = createCertificate({
    subject: `CN=${common} Root CA`,
    validityMonths: 120,
    isCertificateAuthority: true,
    publicKey: rootKey,
    selfSigningKey: rootKey,
  });
  const intermediateKey = await generatePrivateKey({ kty: "RSA", keySize: 2048 });
  const intermediate = createCertificate({
    subject: `CN=${common} Intermediate CA`,
    validityMonths: 60,
    isCertificateAuthority: true,
    pathLength: 0,
    publicKey: intermediateKey,
    issuer: { certificate: root, privateKey: rootKey },
  });
  const privateKey = await leafKey(options);
  const leaf = createCertificate({
    subject: options.subject,
    dnsNames: options.dnsNames,
    validityMonths: options.validityMonths,
    publicKey: privateKey,
    issuer: { certificate: intermediate, privateKey: intermediateKey },
    keyUsage: options.keyUsage,
    extendedKeyUsage: options.extendedKeyUsage ?? [EKU_SERVER_AUTH, EKU_CLIENT_AUTH],
  });
  return { privateKey, chain: [leaf, intermediate, root] };
}

async function leafKey(options: GeneratedChainOptions): Promise<KeyObject> {
  if (options.keyType === "EC") return generatePrivateKey({ kty: "EC", curve: options.curve ?? "P-256" });
  return generatePrivateKey({ kty: "RSA", keySize: options.keySize ?? 2048 });
}

function leafCommonName(subject: string): string {
  try {
    return parseDistinguishedName(subject).find((a) => a.shortName === "CN")?.value ?? "Emulator";
  } catch {
    return "Emulator";
  }
}

/** What Key Vault reports about a certificate. */
export interface CertificateFacts {
  subject: string;
  issuer: string;
  notBefore: number;
  notAfter: number;
  dnsNames: string[];
  /** base64url SHA-1 of the DER, no padding (Key Vault x5t). */
  x5t: string;
  selfSigned: boolean;
}

export function describeCertificate(der: Buffer): CertificateFacts {
  const cert = new X509Certificate(der);
  const dnsNames = (cert.subjectAltName ?? "")
    .split(/,\s*/)
    .filter((entry) => entry.startsWith("DNS:"))
    .map((entry) => entry.slice(4));
  return {
    subject: formatName(cert.subject),
    issuer: formatName(cert.issuer),
    notBefore: Math.floor(new Date(cert.validFrom).getTime() / 1000),
    notAfter: Math.floor(new Date(cert.validTo).getTime() / 1000),
    dnsNames,
    x5t: createHash("sha1").update(der).digest("base64url"),
    selfSigned: cert.subject === cert.issuer,
  };
}

/** Node prints names one attribute per line, most significant first; Key Vault prints "CN=…, O=…". */
function formatName(name: string): string {
  return name
    .split("\n")
    .filter((line) => line !== "")
    .reverse()
    .join(", ");
}
