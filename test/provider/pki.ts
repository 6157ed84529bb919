// Test PKI made with the openssl CLI (independent of the provider's code):
// root → intermediate → leaf certificates with SKI/AKI, RSA and EC keys, and
// PFX files in legacy (3DES, SHA-1 MAC) and modern (AES, SHA-256 MAC) form.
// Expected PEM outputs come from openssl too.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestPki {
  /** PEM text of each certificate as openssl prints it. */
  rootPem: string;
  intermediatePem: string;
  leafPem: string;
  ecLeafPem: string;
  /** PKCS#8 PEM of the leaf keys as openssl prints them. */
  leafKeyPkcs8: string;
  ecLeafKeyPkcs8: string;
  /** PFX (binary) of leaf key + leaf + intermediate + root, certs stored root, leaf, intermediate (scrambled). */
  pfxLegacy: Buffer;
  pfxModern: Buffer;
  /** PFX of the EC leaf with its chain, legacy encryption. */
  ecPfx: Buffer;
  /** PFX with a certificate without AKI/SKI links (unrelated self-signed), for the fallback order. */
  pfxUnrelated: Buffer;
  unrelatedPem: string;
  /** Raw DER. */
  leafDer: Buffer;
  ecLeafDer: Buffer;
}

function ossl(args: string[], cwd: string, input?: string): string {
  return execFileSync("openssl", args, { cwd, input, stdio: ["pipe", "pipe", "pipe"] }).toString();
}

export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "provider-pki-"));
  const ext = (name: string, text: string) => writeFileSync(join(dir, name), text);
  ext("ca.ext", "basicConstraints=critical,CA:TRUE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\nkeyUsage=critical,keyCertSign,cRLSign\n");
  ext("leaf.ext", "basicConstraints=CA:FALSE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\nsubjectAltName=DNS:leaf.example.com\n");
  ossl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "root.key", "-out", "root.crt", "-subj", "/CN=Test Root", "-days", "3650", "-addext", "subjectKeyIdentifier=hash", "-addext", "basicConstraints=critical,CA:TRUE"], dir);
  ossl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "int.key", "-out", "int.csr", "-subj", "/CN=Test Intermediate"], dir);
  ossl(["x509", "-req", "-in", "int.csr", "-CA", "root.crt", "-CAkey", "root.key", "-CAcreateserial", "-out", "int.crt", "-days", "3650", "-extfile", "ca.ext"], dir);
  ossl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=leaf.example.com"], dir);
  ossl(["x509", "-req", "-in", "leaf.csr", "-CA", "int.crt", "-CAkey", "int.key", "-CAcreateserial", "-out", "leaf.crt", "-days", "365", "-extfile", "leaf.ext"], dir);
  ossl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ecleaf.key"], dir);
  ossl(["req", "-new", "-key", "ecleaf.key", "-out", "ecleaf.csr", "-subj", "/CN=ec.example.com"], dir);
  ossl(["x509", "-req", "-in", "ecleaf.csr", "-CA", "int.crt", "-CAkey", "int.key", "-CAcreateserial", "-out", "ecleaf.crt", "-days", "365", "-extfile", "leaf.ext"], dir);
  ossl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.crt", "-subj", "/CN=Unrelated", "-days", "30", "-addext", "subjectKeyIdentifier=none"], dir);

  const pem = (name: string) => ossl(["x509", "-in", name], dir);
  const rootPem = pem("root.crt");
  const intermediatePem = pem("int.crt");
  const leafPem = pem("leaf.crt");
  const ecLeafPem = pem("ecleaf.crt");
  const unrelatedPem = pem("other.crt");
  // scrambled order in the PFX: root, then intermediate (leaf comes first via -in)
  writeFileSync(join(dir, "extra.pem"), rootPem + intermediatePem);
  const legacy = ["-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1"];
  ossl(["pkcs12", "-export", "-inkey", "leaf.key", "-in", "leaf.crt", "-certfile", "extra.pem", "-passout", "pass:", "-out", "legacy.pfx", ...legacy], dir);
  ossl(["pkcs12", "-export", "-inkey", "leaf.key", "-in", "leaf.crt", "-certfile", "extra.pem", "-passout", "pass:", "-out", "modern.pfx"], dir);
  ossl(["pkcs12", "-export", "-inkey", "ecleaf.key", "-in", "ecleaf.crt", "-certfile", "extra.pem", "-passout", "pass:", "-out", "ec.pfx", ...legacy], dir);
  writeFileSync(join(dir, "unrelated.pem"), unrelatedPem + intermediatePem);
  ossl(["pkcs12", "-export", "-inkey", "leaf.key", "-in", "leaf.crt", "-certfile", "unrelated.pem", "-passout", "pass:", "-out", "unrelated.pfx", ...legacy], dir);
  const der = (name: string) => {
    ossl(["x509", "-in", name, "-outform", "DER", "-out", `${name}.der`], dir);
    return readFileSync(join(dir, `${name}.der`));
  };
  const pki: TestPki = {
    rootPem,
    intermediatePem,
    leafPem,
    ecLeafPem,
    unrelatedPem,
    leafKeyPkcs8: ossl(["pkey", "-in", "leaf.key"], dir),
    ecLeafKeyPkcs8: ossl(["pkey", "-in", "ecleaf.key"], dir),
    pfxLegacy: readFileSync(join(dir, "legacy.pfx")),
    pfxModern: readFileSync(join(dir, "modern.pfx")),
    ecPfx: readFileSync(join(dir, "ec.pfx")),
    pfxUnrelated: readFileSync(join(dir, "unrelated.pfx")),
    leafDer: der("leaf.crt"),
    ecLeafDer: der("ecleaf.crt"),
  };
  // Everything is read into memory: the working files go now.
  rmSync(dir, { recursive: true, force: true });
  return pki;
}
