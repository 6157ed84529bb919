// The seeded world of the integration tests: vaults, objects made from the
// openssl test PKI and node:crypto keys, and one principal per identity mode.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { EMULATOR_SERVICE_ACCOUNT_ISSUER, type SeedDocument } from "../../src/emulator/index.ts";
import type { TestPki } from "./pki.ts";

export const SP = { clientId: "11111111-1111-4111-8111-111111111111", clientSecret: "sp-secret-value-1" };
export const SP2 = { clientId: "22222222-2222-4222-8222-222222222222", clientSecret: "sp-secret-value-2" };
export const NO_ACCESS = { clientId: "33333333-3333-4333-8333-333333333333", clientSecret: "no-access-secret" };
export const WI_APP = "44444444-4444-4444-8444-444444444444";
export const UAMI = "55555555-5555-4555-8555-555555555555";
export const SYSTEM_MI = "66666666-6666-4666-8666-666666666666";

export interface Material {
  seed: SeedDocument;
  utf8: string;
  hexBytes: Buffer;
  b64Bytes: Buffer;
  keys: Record<string, string>;
  pemBundle: string;
  multiValues: string[];
}

export function makeMaterial(pki: TestPki): Material {
  const utf8 = "héllo wörld\nline two";
  const hexBytes = randomBytes(48);
  const b64Bytes = randomBytes(300);
  const keys: Record<string, string> = {
    "key-rsa": generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    "key-rsa-hsm": generateKeyPairSync("rsa", { modulusLength: 3072 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    "key-p256": generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    "key-p384": generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    "key-p521": generateKeyPairSync("ec", { namedCurve: "P-521" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  };
  const pemBundle = pki.leafKeyPkcs8 + pki.leafPem + pki.intermediatePem + pki.rootPem;
  const multiValues = ["one", "two", "three", "four", "five"];
  const base = Math.floor(Date.now() / 1000) - 3600;
  const all = [{ vault: "*", permissions: ["all"] }];
  const seed: SeedDocument = {
    vaults: [
      {
        name: "kv-main",
        secrets: [
          { name: "s-utf8", value: utf8 },
          { name: "s-hex", value: hexBytes.toString("hex") },
          { name: "s-b64", value: b64Bytes.toString("base64") },
          {
            name: "s-multi",
            versions: multiValues.map((value, i) => ({ value, created: base + i * 10, enabled: i !== 3 })),
          },
        ],
        keys: [
          { name: "key-rsa", kty: "RSA", pem: keys["key-rsa"] },
          { name: "key-rsa-hsm", kty: "RSA-HSM", pem: keys["key-rsa-hsm"] },
          { name: "key-p256", kty: "EC", pem: keys["key-p256"] },
          { name: "key-p384", kty: "EC-HSM", pem: keys["key-p384"] },
          { name: "key-p521", kty: "EC", pem: keys["key-p521"] },
        ],
        certificates: [
          { name: "cert-pfx", pfx: pki.pfxLegacy.toString("base64"), contentType: "application/x-pkcs12" },
          { name: "cert-ec", pfx: pki.ecPfx.toString("base64"), contentType: "application/x-pkcs12" },
          { name: "cert-pem", pem: pemBundle, contentType: "application/x-pem-file" },
        ],
      },
      { name: "kv-cost", secrets: Array.from({ length: 10 }, (_, i) => ({ name: `obj-${i}`, value: `value-${i}` })) },
      { name: "kv-throttle", secrets: Array.from({ length: 5 }, (_, i) => ({ name: `t-${i}`, value: `throttled-${i}` })) },
    ],
    applications: [
      { name: "sp", clientId: SP.clientId, clientSecret: SP.clientSecret, roleAssignments: all },
      { name: "sp2", clientId: SP2.clientId, clientSecret: SP2.clientSecret, roleAssignments: all },
      { name: "no-access", clientId: NO_ACCESS.clientId, clientSecret: NO_ACCESS.clientSecret },
      {
        name: "wi",
        clientId: WI_APP,
        federatedCredentials: [
          { issuer: EMULATOR_SERVICE_ACCOUNT_ISSUER, subject: "system:serviceaccount:ns1:sa1" },
          { issuer: EMULATOR_SERVICE_ACCOUNT_ISSUER, subject: "system:serviceaccount:ns2:sa2" },
        ],
        roleAssignments: all,
      },
    ],
    managedIdentities: [
      { name: "uami", clientId: UAMI, roleAssignments: all },
      { name: "system", clientId: SYSTEM_MI, systemAssigned: true, roleAssignments: all },
    ],
  };
  return { seed, utf8, hexBytes, b64Bytes, keys, pemBundle, multiValues };
}

export function podAttributes(extra: Record<string, string>, pod = { name: "pod-1", namespace: "ns1", serviceAccount: "sa1" }): Record<string, string> {
  return {
    "csi.storage.k8s.io/pod.name": pod.name,
    "csi.storage.k8s.io/pod.namespace": pod.namespace,
    "csi.storage.k8s.io/pod.uid": "0b1c2d3e-0000-4000-8000-000000000001",
    "csi.storage.k8s.io/serviceAccount.name": pod.serviceAccount,
    "csi.storage.k8s.io/ephemeral": "true",
    secretProviderClass: "spc",
    ...extra,
  };
}
