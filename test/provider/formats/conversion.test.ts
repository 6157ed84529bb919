// Unit tests of the conversions: PEM encoding, base64/hex decoding, PKCS#12 →
// PEM (keys first, chain order), public keys from JWKs, certificates. The
// expectations are computed by openssl / node:crypto from the same material.
import { generateKeyPairSync, createPublicKey } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { constructChain, readKeyIds } from "../../../src/provider/formats/chain.ts";
import { certificatePem } from "../../../src/provider/formats/cert.ts";
import { publicKeyPem } from "../../../src/provider/formats/key.ts";
import { decodeBase64Strict, decodeHexStrict } from "../../../src/provider/formats/encodings.ts";
import { decodePemBlocks, encodePem } from "../../../src/shared/crypto/pem.ts";
import { parsePkcs12 } from "../../../src/provider/formats/pkcs12.ts";
import { loadPkcs12Reader } from "../../../src/shared/crypto/pkcs12-loader.ts";
import { pkcs12ToPem, secretFiles, splitCertAndKey } from "../../../src/provider/formats/secret.ts";
import { makePki, type TestPki } from "../pki.ts";

let pki: TestPki;
beforeAll(async () => {
  pki = makePki();
  // The provider loads the PKCS#12 reader before converting a PFX-backed secret.
  await loadPkcs12Reader();
});

function derOf(pem: string): Buffer {
  return decodePemBlocks(pem)[0]!.bytes;
}

describe("PEM encoding", () => {
  it("writes 64-character lines, \\n endings and a trailing newline like Go", () => {
    const bytes = Buffer.alloc(100, 7);
    const pem = encodePem("TEST", bytes);
    const body = bytes.toString("base64");
    expect(pem).toBe(`-----BEGIN TEST-----\n${body.slice(0, 64)}\n${body.slice(64, 128)}\n${body.slice(128)}\n-----END TEST-----\n`);
    expect(encodePem("X", Buffer.alloc(48, 1)).split("\n")[1]).toHaveLength(64);
    expect(encodePem("E", Buffer.alloc(0))).toBe("-----BEGIN E-----\n-----END E-----\n");
  });

  it("re-encodes an openssl certificate byte for byte", () => {
    expect(encodePem("CERTIFICATE", pki.leafDer)).toBe(pki.leafPem);
  });
});

describe("Go-compatible decoders", () => {
  it("base64: padding required, CR/LF ignored, errors name only the offset", () => {
    expect(decodeBase64Strict("aGVs\r\nbG8=").toString()).toBe("hello");
    expect(() => decodeBase64Strict("aGVsbG8")).toThrow("illegal base64 data at input byte 4");
    expect(() => decodeBase64Strict("-----BEGIN")).toThrow("illegal base64 data at input byte 0");
    expect(() => decodeBase64Strict("aGV_bG8=")).toThrow("illegal base64 data at input byte 3");
  });
  it("hex: strict, without quoting the secret's characters", () => {
    expect(decodeHexStrict("48656c6c6f").toString()).toBe("Hello");
    expect(() => decodeHexStrict("4g")).toThrow("encoding/hex: invalid byte at offset 1");
    expect(() => decodeHexStrict("abc")).toThrow("encoding/hex: odd length hex string");
  });
});

describe("PKCS#12", () => {
  it("reads legacy (3DES, SHA-1 MAC) and modern (AES, SHA-256 MAC) PFX with the empty password", () => {
    for (const pfx of [pki.pfxLegacy, pki.pfxModern]) {
      const { keys, certificates } = parsePkcs12(pfx);
      expect(keys).toHaveLength(1);
      expect(certificates.map((c) => encodePem("CERTIFICATE", c)).sort()).toEqual([pki.leafPem, pki.intermediatePem, pki.rootPem].sort());
    }
  });

  it("converts to PEM: PKCS#8 key first, then the chain leaf → intermediate → root", () => {
    const expected = pki.leafKeyPkcs8 + pki.leafPem + pki.intermediatePem + pki.rootPem;
    expect(pkcs12ToPem(pki.pfxLegacy.toString("base64"), true)).toBe(expected);
    expect(pkcs12ToPem(pki.pfxModern.toString("base64"), true)).toBe(expected);
  });

  it("keeps the PFX order without --construct-pem-chain", () => {
    const inPfx = parsePkcs12(pki.pfxLegacy).certificates.map((c) => encodePem("CERTIFICATE", c)).join("");
    expect(pkcs12ToPem(pki.pfxLegacy.toString("base64"), false)).toBe(pki.leafKeyPkcs8 + inPfx);
  });

  it("converts EC keys to PKCS#8 as openssl does", () => {
    expect(pkcs12ToPem(pki.ecPfx.toString("base64"), true)).toBe(pki.ecLeafKeyPkcs8 + pki.ecLeafPem + pki.intermediatePem + pki.rootPem);
  });

  it("falls back to the original order when the chain does not cover every certificate", () => {
    const reasons: string[] = [];
    const inPfx = parsePkcs12(pki.pfxUnrelated).certificates.map((c) => encodePem("CERTIFICATE", c)).join("");
    expect(pkcs12ToPem(pki.pfxUnrelated.toString("base64"), true, (r) => reasons.push(r))).toBe(pki.leafKeyPkcs8 + inPfx);
    expect(reasons).toHaveLength(1);
  });

  it("refuses what is not a PFX", () => {
    expect(() => pkcs12ToPem(Buffer.from("not a pfx").toString("base64"), true)).toThrow(/failed to decode PKCS#12/);
  });
});

describe("chain construction", () => {
  it("reads SKI and AKI", () => {
    const root = readKeyIds(derOf(pki.rootPem));
    const int = readKeyIds(derOf(pki.intermediatePem));
    const leaf = readKeyIds(derOf(pki.leafPem));
    expect(int.authorityKeyId).toBe(root.subjectKeyId);
    expect(leaf.authorityKeyId).toBe(int.subjectKeyId);
  });
  it("orders any permutation leaf first", () => {
    const [root, int, leaf] = [derOf(pki.rootPem), derOf(pki.intermediatePem), derOf(pki.leafPem)];
    for (const order of [[root, int, leaf], [int, root, leaf], [leaf, root, int]]) {
      const result = constructChain(order);
      expect(result.ordered).toBe(true);
      expect(result.certificates).toEqual([leaf, int, root]);
    }
  });
  it("keeps a single certificate and reports a missing intermediate", () => {
    const leaf = derOf(pki.leafPem);
    expect(constructChain([leaf]).certificates).toEqual([leaf]);
    const root = derOf(pki.rootPem);
    const partial = constructChain([root, leaf]);
    expect(partial.ordered).toBe(false);
    expect(partial.certificates).toEqual([root, leaf]);
  });
});

describe("certificate-backed secrets", () => {
  const opts = { objectFormat: "pem" as const, objectEncoding: "utf-8" as const, constructPemChain: true, writeCertAndKeyInSeparateFiles: false };
  it("PFX as base64 text with objectFormat pfx, binary with objectEncoding base64", () => {
    const b64 = pki.pfxLegacy.toString("base64");
    const secret = { value: b64, contentType: "application/x-pkcs12", kid: "https://v/keys/c/1", version: "1" };
    expect(secretFiles(secret, { ...opts, objectFormat: "pfx" })[0]!.contents.toString()).toBe(b64);
    expect(secretFiles(secret, { ...opts, objectFormat: "pfx", objectEncoding: "base64" })[0]!.contents.equals(pki.pfxLegacy)).toBe(true);
  });
  it("PEM content type verbatim", () => {
    const value = pki.leafKeyPkcs8 + pki.leafPem;
    const files = secretFiles({ value, contentType: "application/x-pem-file", kid: "k", version: "1" }, opts);
    expect(files).toEqual([{ suffix: "", contents: Buffer.from(value) }]);
  });
  it("separate files: .crt and .key precede the main file; empty for PFX", () => {
    const secret = { value: pki.pfxLegacy.toString("base64"), contentType: "application/x-pkcs12", kid: "k", version: "1" };
    const files = secretFiles(secret, { ...opts, writeCertAndKeyInSeparateFiles: true });
    expect(files.map((f) => f.suffix)).toEqual([".crt", ".key", ""]);
    expect(files[0]!.contents.toString()).toBe(pki.leafPem + pki.intermediatePem + pki.rootPem);
    expect(files[1]!.contents.toString()).toBe(pki.leafKeyPkcs8);
    const pfx = secretFiles(secret, { ...opts, objectFormat: "pfx", writeCertAndKeyInSeparateFiles: true });
    expect(pfx.map((f) => f.contents.length)).toEqual([0, 0, secret.value.length]);
  });
  it("split keeps non-certificate blocks in .key", () => {
    const { crt, key } = splitCertAndKey(pki.leafPem + pki.ecLeafKeyPkcs8);
    expect(crt).toBe(pki.leafPem);
    expect(key).toBe(pki.ecLeafKeyPkcs8);
  });
  it("unknown content type is refused with upstream's message", () => {
    expect(() => secretFiles({ value: "x", contentType: "text/plain", kid: "k", version: "1" }, opts)).toThrow("failed to get certificate. unknown content type 'text/plain'");
    expect(() => secretFiles({ value: "x", contentType: undefined, kid: "k", version: "1" }, opts)).toThrow("failed to get certificate. unknown content type ''");
  });
  it("a PEM certificate cannot become binary PFX (upstream #1945)", () => {
    expect(() => secretFiles({ value: pki.leafPem, contentType: "application/x-pem-file", kid: "k", version: "1" }, { ...opts, objectFormat: "pfx", objectEncoding: "base64" })).toThrow(
      "illegal base64 data at input byte 0",
    );
  });
});

describe("keys", () => {
  const jwkBytes = (s: string | undefined) => Buffer.from(s!, "base64url");
  for (const spec of [
    { name: "RSA", kty: "RSA", gen: () => generateKeyPairSync("rsa", { modulusLength: 2048 }) },
    { name: "RSA-HSM", kty: "RSA-HSM", gen: () => generateKeyPairSync("rsa", { modulusLength: 3072 }) },
    { name: "P-256", kty: "EC", gen: () => generateKeyPairSync("ec", { namedCurve: "P-256" }) },
    { name: "P-384", kty: "EC-HSM", gen: () => generateKeyPairSync("ec", { namedCurve: "P-384" }) },
    { name: "P-521", kty: "EC", gen: () => generateKeyPairSync("ec", { namedCurve: "P-521" }) },
  ]) {
    it(`${spec.name} → PUBLIC KEY PEM identical to node:crypto's SPKI export`, () => {
      const { publicKey } = spec.gen();
      const jwk = publicKey.export({ format: "jwk" });
      const expected = publicKey.export({ type: "spki", format: "pem" }).toString();
      const got = publicKeyPem({ kty: spec.kty, crv: jwk.crv, n: jwk.n ? jwkBytes(jwk.n) : undefined, e: jwk.e ? jwkBytes(jwk.e) : undefined, x: jwk.x ? jwkBytes(jwk.x) : undefined, y: jwk.y ? jwkBytes(jwk.y) : undefined, kid: "https://v/keys/k/1", version: "1" });
      expect(got).toBe(expected);
      expect(createPublicKey(got).asymmetricKeyType).toBe(spec.kty.startsWith("RSA") ? "rsa" : "ec");
    });
  }
  it("refuses P-256K and symmetric keys with upstream's messages", () => {
    expect(() => publicKeyPem({ kty: "EC", crv: "P-256K", x: Buffer.alloc(32, 1), y: Buffer.alloc(32, 2), kid: "k", version: "1" })).toThrow("curve P-256K is not supported");
    expect(() => publicKeyPem({ kty: "oct", crv: undefined, kid: "k", version: "1" })).toThrow("failed to get key. key type 'oct' currently not supported");
    expect(() => publicKeyPem({ kty: "oct-HSM", crv: undefined, kid: "k", version: "1" })).toThrow("failed to get key. key type 'oct-HSM' currently not supported");
    expect(() => publicKeyPem({ kty: "RSA", crv: undefined, kid: "k", version: "1" })).toThrow("key value is nil");
    expect(() => publicKeyPem({ kty: "RSA", crv: undefined, kid: undefined, version: "1" })).toThrow("key id is nil");
  });
});

describe("certificates", () => {
  it("the leaf's DER as one CERTIFICATE block", () => {
    expect(certificatePem({ cer: pki.ecLeafDer, id: "https://v/certificates/c/1", version: "1" })).toBe(pki.ecLeafPem);
    expect(() => certificatePem({ cer: undefined, id: "x", version: "1" })).toThrow("certificate value is nil");
    expect(() => certificatePem({ cer: pki.leafDer, id: undefined, version: "1" })).toThrow("certificate id is nil");
  });
});
