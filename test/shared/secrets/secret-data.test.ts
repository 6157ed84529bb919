// Secret data built from provider files: pass-through for every type, and the
// kubernetes.io/tls derivation from PEM and from PKCS#12/PFX archives.
import { execFileSync } from "node:child_process";
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import forge from "node-forge";
import { beforeAll, describe, expect, it } from "vitest";
import { decodePemBlocks } from "../../../src/shared/crypto/pem.ts";
import type { SecretObject } from "../../../src/shared/kube/kube-types.ts";
import {
  SecretDataError,
  buildSecretData,
  certificatesPem,
  loadTlsSupport,
  privateKeyPem,
  tlsPart,
  validateSecretObject,
  type MountedFile,
} from "../../../src/shared/secrets/secret-data.ts";

// The driver loads the PKCS#12 reader before building its first TLS Secret.
beforeAll(loadTlsSupport);

// ---------------------------------------------------------------------------
// Fixtures: an RSA CA, an intermediate and a leaf (forge), keys of each kind.

interface Issued {
  cert: forge.pki.Certificate;
  pem: string;
  der: Buffer;
  key: forge.pki.rsa.PrivateKey;
}

function rsaKeyPair(): forge.pki.rsa.KeyPair {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs1", format: "pem" }) as string;
  const key = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  return { privateKey: key, publicKey: forge.pki.setRsaPublicKey(key.n, key.e) };
}

function issue(cn: string, issuer?: Issued): Issued {
  const keys = rsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  // A positive serial in canonical DER: a leading 01 byte. The random bytes
  // alone start with 00 one time in 256, a non-minimal INTEGER that a PKCS#12
  // round trip re-encodes without it, and the certificate compared no longer matched.
  cert.serialNumber = `01${randomBytes(8).toString("hex")}`;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.setSubject([{ name: "commonName", value: cn }]);
  cert.setIssuer([{ name: "commonName", value: issuer ? issuer.cert.subject.getField("CN").value : cn }]);
  cert.setExtensions([{ name: "basicConstraints", cA: !issuer || cn.includes("CA") }]);
  cert.sign(issuer ? issuer.key : keys.privateKey, forge.md.sha256.create());
  const pem = forge.pki.certificateToPem(cert).replace(/\r\n/g, "\n");
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), "binary");
  return { cert, pem, der, key: keys.privateKey };
}

const pkcs8Of = (key: forge.pki.rsa.PrivateKey): string =>
  createPrivateKey(forge.pki.privateKeyToPem(key)).export({ type: "pkcs8", format: "pem" }) as string;

function samePrivateKey(pem: Buffer | string, expected: KeyObject | string): boolean {
  const a = createPrivateKey(pem).export({ format: "jwk" });
  const b = (typeof expected === "string" ? createPrivateKey(expected) : expected).export({ format: "jwk" });
  return JSON.stringify(a) === JSON.stringify(b);
}

function pfxOf(key: forge.pki.rsa.PrivateKey | null, certs: forge.pki.Certificate[], password: string | null, algorithm?: "3des" | "aes256"): Buffer {
  const asn1 = forge.pkcs12.toPkcs12Asn1(key, certs, password, algorithm ? { algorithm } : {});
  return Buffer.from(forge.asn1.toDer(asn1).getBytes(), "binary");
}

function hasOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const files = (entries: Record<string, Buffer | string>): Map<string, MountedFile> =>
  new Map(Object.entries(entries).map(([path, c]) => [path, { path, contents: Buffer.isBuffer(c) ? c : Buffer.from(c) }]));

const tlsObject = (data: SecretObject["data"]): SecretObject => ({ secretName: "tls", type: "kubernetes.io/tls", data });

let ca: Issued;
let intermediate: Issued;
let leaf: Issued;

beforeAll(() => {
  ca = issue("Test Root CA");
  intermediate = issue("Test Intermediate CA", ca);
  leaf = issue("app.example.test", intermediate);
});

// ---------------------------------------------------------------------------

describe("validateSecretObject", () => {
  it("rejects what upstream rejects, with upstream's messages", () => {
    expect(() => validateSecretObject({ secretName: " ", type: "Opaque", data: [{ objectName: "a", key: "a" }] })).toThrow(/^secret name is empty$/);
    expect(() => validateSecretObject({ secretName: "s", type: "", data: [{ objectName: "a", key: "a" }] })).toThrow(/^secret type is empty$/);
    expect(() => validateSecretObject({ secretName: "s", type: "Opaque", data: [] })).toThrow(/^data is empty$/);
    expect(() => validateSecretObject({ secretName: "s", type: "Opaque" })).toThrow(/^data is empty$/);
    expect(() => validateSecretObject({ secretName: "s", type: "Opaque", data: [{ objectName: "a", key: "a" }] })).not.toThrow();
  });
});

describe("buildSecretData", () => {
  it("passes binary content of any type through byte for byte, by object name, alias or nested path", () => {
    const binary = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3]), randomBytes(4096)]);
    const mounted = files({ blob: binary, alias: "plain text\n", "multi/0": "first", "multi/1": "second" });
    for (const type of ["Opaque", "kubernetes.io/basic-auth", "kubernetes.io/dockerconfigjson", "example.com/custom"]) {
      const data = buildSecretData(
        {
          secretName: "s",
          type,
          data: [
            { objectName: " blob ", key: " bin " },
            { objectName: "alias", key: "text" },
            { objectName: "multi/1", key: "second" },
          ],
        },
        mounted,
      );
      expect(Object.keys(data).sort()).toEqual(["bin", "second", "text"]);
      expect(data.bin!.equals(binary)).toBe(true);
      expect(data.text!.toString()).toBe("plain text\n");
      expect(data.second!.toString()).toBe("second");
    }
  });

  it("names the missing object or empty field", () => {
    const mounted = files({ a: "x" });
    expect(() => buildSecretData({ secretName: "s", type: "Opaque", data: [{ objectName: "nope", key: "k" }] }, mounted)).toThrow(
      /^file matching objectName nope not found in the pod$/,
    );
    expect(() => buildSecretData({ secretName: "s", type: "Opaque", data: [{ objectName: "a", key: "  " }] }, mounted)).toThrow(
      /^key in secretObjects.data is empty$/,
    );
    expect(() => buildSecretData({ secretName: "s", type: "Opaque", data: [{ objectName: "", key: "k" }] }, mounted)).toThrow(
      /^object name in secretObjects.data is empty$/,
    );
  });

  it("allows only tls.crt and tls.key for kubernetes.io/tls", () => {
    const mounted = files({ cert: leaf.pem + pkcs8Of(leaf.key) });
    expect(() => buildSecretData(tlsObject([{ objectName: "cert", key: "ca.crt" }]), mounted, "/mnt/target")).toThrow(
      "failed to get cert data from file /mnt/target/cert, err: key 'ca.crt' is not supported. Only 'tls.key' and 'tls.crt' are supported",
    );
  });
});

describe("kubernetes.io/tls from PEM", () => {
  it("keeps every certificate in order and re-encodes a PKCS#8 RSA key as RSA PRIVATE KEY", () => {
    // Text around the blocks, CRLF line ends and the key between certificates.
    const bundle = `subject=app\r\n${leaf.pem.replace(/\n/g, "\r\n")}${pkcs8Of(leaf.key)}junk\n${intermediate.pem}`;
    const mounted = files({ bundle });
    const data = buildSecretData(
      tlsObject([
        { objectName: "bundle", key: "tls.crt" },
        { objectName: "bundle", key: "tls.key" },
      ]),
      mounted,
    );
    expect(data["tls.crt"]!.toString()).toBe(leaf.pem + intermediate.pem);
    const crt = data["tls.crt"]!.toString();
    expect(new X509Certificate(crt).subject).toBe("CN=app.example.test");
    const key = data["tls.key"]!.toString();
    expect(key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    expect(key).toMatch(/\n-----END RSA PRIVATE KEY-----\n$/);
    expect(key.split("\n").every((line) => line.length <= 64)).toBe(true);
    expect(samePrivateKey(key, forge.pki.privateKeyToPem(leaf.key))).toBe(true);
    // The key really matches the certificate.
    expect(new X509Certificate(crt).checkPrivateKey(createPrivateKey(key))).toBe(true);
  });

  it("keeps a PKCS#1 key as RSA PRIVATE KEY", () => {
    const pkcs1 = forge.pki.privateKeyToPem(leaf.key);
    const out = privateKeyPem(Buffer.from(pkcs1)).toString();
    expect(out).toBe(createPrivateKey(pkcs1).export({ type: "pkcs1", format: "pem" }));
  });

  it("re-encodes PKCS#8 and SEC1 EC keys as EC PRIVATE KEY", () => {
    for (const namedCurve of ["P-256", "P-384", "P-521"]) {
      const { privateKey } = generateKeyPairSync("ec", { namedCurve });
      const pkcs8 = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
      const out = privateKeyPem(Buffer.from(pkcs8)).toString();
      expect(out).toMatch(/^-----BEGIN EC PRIVATE KEY-----\n[\s\S]+\n-----END EC PRIVATE KEY-----\n$/);
      expect(out).toBe(privateKey.export({ type: "sec1", format: "pem" }));
      expect(samePrivateKey(out, privateKey)).toBe(true);
      // `openssl ecparam -genkey` writes an EC PARAMETERS block first: the last block is the key.
      const sec1 = privateKey.export({ type: "sec1", format: "pem" }) as string;
      const withParams = `-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n${sec1}`;
      expect(privateKeyPem(Buffer.from(withParams)).toString()).toBe(sec1);
    }
  });

  it("refuses key types other than RSA and ECDSA with upstream's message", () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    expect(() => tlsPart(Buffer.from(pem), "tls.key")).toThrow(/^unknown private key type found while getting key\. Only rsa and ecdsa are supported$/);
  });

  it("refuses encrypted, malformed and absent keys without echoing content", () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const encrypted = privateKey.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "pw" }) as string;
    expect(() => privateKeyPem(Buffer.from(encrypted))).toThrow(/encrypted private keys are not supported/);

    const garbageBody = randomBytes(300).toString("base64");
    const garbage = `-----BEGIN PRIVATE KEY-----\n${garbageBody}\n-----END PRIVATE KEY-----\n`;
    let message = "";
    try {
      privateKeyPem(Buffer.from(garbage));
    } catch (err) {
      expect(err).toBeInstanceOf(SecretDataError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/failed to parse private key/);
    expect(message).not.toContain(garbageBody.slice(0, 16));

    expect(() => privateKeyPem(Buffer.from(leaf.pem))).toThrow(/no PEM private key block/);
    const pkcs8 = pkcs8Of(leaf.key);
    expect(() => certificatesPem(Buffer.from(pkcs8))).toThrow(/no PEM CERTIFICATE block/);
    // Neither PEM nor PFX.
    const secretText = "this-is-not-a-certificate-but-a-secret-value";
    try {
      certificatesPem(Buffer.from(secretText));
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toMatch(/PKCS#12/);
      expect((err as Error).message).not.toContain(secretText);
    }
  });
});

describe("kubernetes.io/tls from PKCS#12/PFX", () => {
  it("reads certificates and key from a PFX with an empty password (3DES and AES)", () => {
    for (const algorithm of ["3des", "aes256"] as const) {
      const pfx = pfxOf(leaf.key, [leaf.cert, intermediate.cert], "", algorithm);
      const mounted = files({ pfx });
      const data = buildSecretData(
        tlsObject([
          { objectName: "pfx", key: "tls.crt" },
          { objectName: "pfx", key: "tls.key" },
        ]),
        mounted,
      );
      expect(data["tls.crt"]!.toString()).toBe(leaf.pem + intermediate.pem);
      const blocks = decodePemBlocks(data["tls.crt"]!);
      expect(blocks.map((b) => b.bytes.equals(b === blocks[0] ? leaf.der : intermediate.der))).toEqual([true, true]);
      const key = data["tls.key"]!.toString();
      expect(key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
      expect(samePrivateKey(key, forge.pki.privateKeyToPem(leaf.key))).toBe(true);
    }
  });

  it("refuses a PFX protected by a real password, naming the cause only", () => {
    const pfx = pfxOf(leaf.key, [leaf.cert], "s3cret-password");
    expect(() => certificatesPem(pfx)).toThrow(/empty password/);
    expect(() => privateKeyPem(pfx)).toThrow(/empty password/);
  });

  it.runIf(hasOpenssl())("reads an OpenSSL 3 default PFX (PBES2/AES-256, SHA-256 MAC) with an EC key and chain", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pfx-"));
    try {
      const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
      run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key");
      run("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=EC Root", "-days", "2", "-out", "ca.crt");
      run("ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "leaf.key");
      run("req", "-new", "-key", "leaf.key", "-subj", "/CN=ec.example.test", "-out", "leaf.csr");
      run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-out", "leaf.crt");
      run("pkcs12", "-export", "-inkey", "leaf.key", "-in", "leaf.crt", "-certfile", "ca.crt", "-passout", "pass:", "-out", "bundle.pfx");
      const pfx = await readFile(join(dir, "bundle.pfx"));
      const leafPem = await readFile(join(dir, "leaf.crt"), "utf8");
      const caPem = await readFile(join(dir, "ca.crt"), "utf8");
      const leafKey = await readFile(join(dir, "leaf.key"), "utf8");

      const crt = certificatesPem(pfx).toString();
      const blocks = decodePemBlocks(Buffer.from(crt));
      expect(blocks).toHaveLength(2);
      expect(blocks[0]!.bytes.equals(decodePemBlocks(Buffer.from(leafPem))[0]!.bytes)).toBe(true);
      expect(blocks[1]!.bytes.equals(decodePemBlocks(Buffer.from(caPem))[0]!.bytes)).toBe(true);
      const key = privateKeyPem(pfx).toString();
      expect(key).toMatch(/^-----BEGIN EC PRIVATE KEY-----\n/);
      expect(samePrivateKey(key, leafKey)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
