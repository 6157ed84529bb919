// Certificates through the unmodified CertificateClient, and the key and
// secret Key Vault couples to every certificate version.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPublicKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import forge from "node-forge";
import { CertificateClient, WellKnownIssuer } from "@azure/keyvault-certificates";
import { KeyClient } from "@azure/keyvault-keys";
import { SecretClient } from "@azure/keyvault-secrets";
import { RestError } from "@azure/core-rest-pipeline";
import { startEmulator, type Emulator } from "../../src/emulator/index.ts";
import { APP_OFFICER, clientOptions, secretCredential } from "./helpers.ts";

let emulator: Emulator;
let certificates: CertificateClient;
let secrets: SecretClient;
let keys: KeyClient;

const PBE_3DES_OID_DER = Buffer.from("060a2a864886f70d010c0103", "hex"); // 1.2.840.113549.1.12.1.3
const PBES2_OID_DER = Buffer.from("06092a864886f70d01050d", "hex"); // 1.2.840.113549.1.5.13

beforeAll(async () => {
  emulator = await startEmulator({
    seed: {
      vaults: [
        {
          name: "kv1",
          certificates: [{ name: "seeded-chain", issuer: "chain", subject: "CN=chain.example.com", dnsNames: ["chain.example.com"] }],
        },
      ],
      applications: [{ clientId: APP_OFFICER.clientId, clientSecret: APP_OFFICER.secret, roleAssignments: [{ vault: "kv1", role: "Key Vault Administrator" }] }],
    },
  });
  const credential = secretCredential(emulator, APP_OFFICER);
  certificates = new CertificateClient(emulator.vaultUrl("kv1"), credential, clientOptions(emulator));
  secrets = new SecretClient(emulator.vaultUrl("kv1"), credential, clientOptions(emulator));
  keys = new KeyClient(emulator.vaultUrl("kv1"), credential, clientOptions(emulator));
});

afterAll(async () => {
  await emulator.close();
});

interface TestChain {
  leafKey: forge.pki.rsa.PrivateKey;
  leaf: forge.pki.Certificate;
  root: forge.pki.Certificate;
}

/** root CA -> leaf, made with node-forge (keys from Node for speed). */
function makeChain(cn: string): TestChain {
  const forgeKey = () => forge.pki.privateKeyFromPem(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }) as string) as forge.pki.rsa.PrivateKey;
  const rootKey = forgeKey();
  const leafKey = forgeKey();
  const make = (subject: string, issuer: forge.pki.Certificate | undefined, key: forge.pki.rsa.PrivateKey, signer: forge.pki.rsa.PrivateKey, ca: boolean, serial: string) => {
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
    cert.serialNumber = serial;
    cert.validity.notBefore = new Date(Date.now() - 60_000);
    cert.validity.notAfter = new Date(Date.now() + 86_400_000 * 30);
    cert.setSubject([{ shortName: "CN", value: subject }]);
    cert.setIssuer(issuer ? issuer.subject.attributes : [{ shortName: "CN", value: subject }]);
    cert.setExtensions([{ name: "basicConstraints", cA: ca }]);
    cert.sign(signer, forge.md.sha256.create());
    return cert;
  };
  const root = make(`${cn} test root`, undefined, rootKey, rootKey, true, "01");
  const leaf = make(cn, root, leafKey, rootKey, false, "02");
  return { leafKey, leaf, root };
}

function derOf(cert: forge.pki.Certificate): Buffer {
  return Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), "binary");
}

/** Parses a PFX with node-forge using the empty password; returns key count and certificates in bag order. */
function readPfx(base64: string): { keys: number; certificates: X509Certificate[]; der: Buffer } {
  const der = Buffer.from(base64, "base64");
  const p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(der.toString("binary")), "");
  const keyBagType = forge.pki.oids.pkcs8ShroudedKeyBag!;
  const certBagType = forge.pki.oids.certBag!;
  const keyBags = p12.getBags({ bagType: keyBagType })[keyBagType] ?? [];
  const certBags = p12.getBags({ bagType: certBagType })[certBagType] ?? [];
  return { keys: keyBags.length, certificates: certBags.map((b: forge.pkcs12.Bag) => new X509Certificate(derOf(b.cert!))), der };
}

describe("certificate import", () => {
  it("imports PEM with a chain and couples a key and a PEM secret of the same version", async () => {
    const chain = makeChain("pem.example.com");
    const pem = forge.pki.privateKeyToPem(chain.leafKey) + forge.pki.certificateToPem(chain.root) + forge.pki.certificateToPem(chain.leaf);
    const imported = await certificates.importCertificate("pem-cert", new TextEncoder().encode(pem), { policy: { contentType: "application/x-pem-file" } });
    const version = imported.properties.version!;
    expect(version).toMatch(/^[0-9a-f]{32}$/);
    expect(Buffer.from(imported.cer!)).toEqual(derOf(chain.leaf));
    expect(imported.keyId).toBe(`${emulator.vaultUrl("kv1")}keys/pem-cert/${version}`);
    expect(imported.secretId).toBe(`${emulator.vaultUrl("kv1")}secrets/pem-cert/${version}`);

    const secret = await secrets.getSecret("pem-cert");
    expect(secret.properties.version).toBe(version);
    expect(secret.properties.contentType).toBe("application/x-pem-file");
    expect(secret.properties.managed).toBe(true);
    expect(secret.properties.certificateKeyId).toBe(imported.keyId);
    const blocks = [...secret.value!.matchAll(/-----BEGIN ([A-Z ]+)-----/g)].map((m) => m[1]);
    expect(blocks).toEqual(["PRIVATE KEY", "CERTIFICATE", "CERTIFICATE"]);
    const certsInSecret = [...secret.value!.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map((m) => new X509Certificate(m[0]));
    expect(certsInSecret[0]!.subject).toBe("CN=pem.example.com");
    expect(certsInSecret[1]!.subject).toBe("CN=pem.example.com test root");

    const key = await keys.getKey("pem-cert");
    expect(key.properties.version).toBe(version);
    expect(key.properties.managed).toBe(true);
    expect(Buffer.from(key.key!.n!).toString("base64url")).toBe(createPublicKey(forge.pki.publicKeyToPem(chain.leaf.publicKey)).export({ format: "jwk" }).n);
  });

  it("imports a password-protected PFX and serves a legacy-encrypted PFX with an empty password, leaf first", async () => {
    const chain = makeChain("pfx.example.com");
    const asn1 = forge.pkcs12.toPkcs12Asn1(chain.leafKey, [chain.root, chain.leaf], "import-pw", { algorithm: "aes256" });
    const pfxBytes = Buffer.from(forge.asn1.toDer(asn1).getBytes(), "binary");
    const imported = await certificates.importCertificate("pfx-cert", new Uint8Array(pfxBytes), { password: "import-pw" });
    const secret = await secrets.getSecret("pfx-cert");
    expect(secret.properties.version).toBe(imported.properties.version);
    expect(secret.properties.contentType).toBe("application/x-pkcs12");
    expect(secret.properties.certificateKeyId).toBe(imported.keyId);

    const pfx = readPfx(secret.value!);
    expect(pfx.keys).toBe(1);
    expect(pfx.certificates.map((c) => c.subject)).toEqual(["CN=pfx.example.com", "CN=pfx.example.com test root"]);
    expect(pfx.der.includes(PBE_3DES_OID_DER)).toBe(true);
    expect(pfx.der.includes(PBES2_OID_DER)).toBe(false);
    expect(() => forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(pfx.der.toString("binary")), "wrong")).toThrow();
  });

  it("rejects PEM without a private key", async () => {
    const chain = makeChain("nokey.example.com");
    const error = (await certificates
      .importCertificate("nokey", new TextEncoder().encode(forge.pki.certificateToPem(chain.leaf)), { policy: { contentType: "application/x-pem-file" } })
      .catch((e: unknown) => e)) as RestError;
    expect(error).toBeInstanceOf(RestError);
    expect(error.statusCode).toBe(400);
    expect(error.message).toContain("Private key is not specified");
  });
});

describe("generated certificates", () => {
  it("seeds a root -> intermediate -> leaf chain whose PFX secret verifies leaf first", async () => {
    const certificate = await certificates.getCertificate("seeded-chain");
    expect(certificate.policy?.subject).toBe("CN=chain.example.com");
    const secret = await secrets.getSecret("seeded-chain");
    const pfx = readPfx(secret.value!);
    const [leaf, intermediate, root] = pfx.certificates;
    expect(pfx.certificates).toHaveLength(3);
    expect(leaf!.subject).toBe("CN=chain.example.com");
    expect(leaf!.verify(intermediate!.publicKey)).toBe(true);
    expect(intermediate!.verify(root!.publicKey)).toBe(true);
    expect(root!.verify(root!.publicKey)).toBe(true);
    expect(Buffer.from(certificate.cer!)).toEqual(leaf!.raw);
    expect(certificate.properties.x509Thumbprint && Buffer.from(certificate.properties.x509Thumbprint).toString("hex")).toBe(leaf!.fingerprint.replace(/:/g, "").toLowerCase());
  });

  it("creates a self-signed certificate through the 202 + pending operation", async () => {
    emulator.resetCounters();
    const poller = await certificates.beginCreateCertificate("created", {
      issuerName: WellKnownIssuer.Self,
      subject: "CN=created.example.com",
      subjectAlternativeNames: { dnsNames: ["created.example.com"] },
      keyType: "EC",
      keyCurveName: "P-256",
      contentType: "application/x-pem-file",
    });
    const created = await poller.pollUntilDone();
    expect(created.properties.version).toMatch(/^[0-9a-f]{32}$/);
    const x509 = new X509Certificate(Buffer.from(created.cer!));
    expect(x509.subject).toBe("CN=created.example.com");
    expect(x509.subjectAltName).toBe("DNS:created.example.com");
    expect(x509.verify(x509.publicKey)).toBe(true);
    expect((await keys.getKey("created")).keyType).toBe("EC");
    const secret = await secrets.getSecret("created");
    expect(secret.value).toContain("-----BEGIN PRIVATE KEY-----");
    expect(emulator.counters()).toMatchObject({ createCertificate: 1 });
    expect(emulator.counters().getCertificateOperation).toBeGreaterThanOrEqual(1);
  });

  it("answers 404 CertificateNotFound", async () => {
    const error = (await certificates.getCertificate("missing").catch((e: unknown) => e)) as RestError;
    expect(error.statusCode).toBe(404);
    expect(error.code).toBe("CertificateNotFound");
  });
});

describe("lists, as patterns and objectTags read them", () => {
  it("describe every object without its value: tags, contentType, enabled, and managed for a certificate's secret and key", async () => {
    await secrets.setSecret("listed-plain", "v", { tags: { env: "prod" }, contentType: "text/plain" });
    const off = await secrets.setSecret("listed-off", "v");
    await secrets.updateSecretProperties("listed-off", off.properties.version!, { enabled: false });
    await keys.createRsaKey("listed-key", { tags: { env: "dev" } });
    const poller = await certificates.beginCreateCertificate("listed-cert", { issuerName: WellKnownIssuer.Self, subject: "CN=listed.example" }, { tags: { env: "prod" } });
    await poller.pollUntilDone();

    const listedSecrets = new Map<string, { tags?: Record<string, string>; contentType?: string; enabled?: boolean; managed?: boolean }>();
    for await (const p of secrets.listPropertiesOfSecrets()) listedSecrets.set(p.name, p);
    expect(listedSecrets.get("listed-plain")).toMatchObject({ tags: { env: "prod" }, contentType: "text/plain", enabled: true });
    expect(listedSecrets.get("listed-plain")!.managed).toBeFalsy();
    expect(listedSecrets.get("listed-off")).toMatchObject({ enabled: false });
    expect(listedSecrets.get("listed-cert")).toMatchObject({ managed: true, contentType: "application/x-pkcs12", enabled: true });
    expect("value" in listedSecrets.get("listed-plain")!).toBe(false);

    const listedKeys = new Map<string, { tags?: Record<string, string>; managed?: boolean }>();
    for await (const p of keys.listPropertiesOfKeys()) listedKeys.set(p.name, p);
    expect(listedKeys.get("listed-key")).toMatchObject({ tags: { env: "dev" } });
    expect(listedKeys.get("listed-key")!.managed).toBeFalsy();
    expect(listedKeys.get("listed-cert")).toMatchObject({ managed: true });

    const listedCerts = new Map<string, { tags?: Record<string, string>; enabled?: boolean }>();
    for await (const p of certificates.listPropertiesOfCertificates()) listedCerts.set(p.name!, p);
    expect(listedCerts.get("listed-cert")).toMatchObject({ tags: { env: "prod" }, enabled: true });
  });

  it("a disabled certificate is still answered for, with enabled false, and listed so; its secret is refused as disabled", async () => {
    const poller = await certificates.beginCreateCertificate("off-cert", { issuerName: WellKnownIssuer.Self, subject: "CN=off.example" });
    const created = await poller.pollUntilDone();
    await certificates.updateCertificateProperties("off-cert", created.properties.version!, { enabled: false });
    expect((await certificates.getCertificate("off-cert")).properties.enabled).toBe(false);
    for await (const p of certificates.listPropertiesOfCertificates()) if (p.name === "off-cert") expect(p.enabled).toBe(false);
    const error = await secrets.getSecret("off-cert").then(
      () => undefined,
      (err: unknown) => err as RestError,
    );
    expect(error?.statusCode).toBe(403);
    expect(JSON.stringify(error?.details)).toContain("SecretDisabled");
  });
});
