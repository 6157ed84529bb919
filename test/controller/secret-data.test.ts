// The data of a synced Secret from a provider's files: copied per
// sourcePath/targetKey, kubernetes.io/tls split from PEM or PFX (keys made
// with the openssl command line, test/provider/pki.ts), and one-line errors
// that name the SecretSync, the path and the fix, with a bounded list.
import { X509Certificate } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import type { SecretSync } from "../../src/controller/api/secret-sync.ts";
import { buildSecretData } from "../../src/controller/reconcile/secret-data.ts";
import { SyncFailure } from "../../src/controller/reconcile/sync-failure.ts";
import { missingFiles } from "../../src/shared/provider-api/missing-objects.ts";
import { makePki, type TestPki } from "../provider/pki.ts";

const secretSync = (type: string, data: { sourcePath: string; targetKey: string }[]): SecretSync => ({
  metadata: { name: "app", namespace: "team-a", uid: "u" },
  spec: { secretProviderClassName: "kv", serviceAccountName: "app", secretObject: { type, data } },
});

let pki: TestPki;
beforeAll(() => {
  pki = makePki();
});

describe("Secret data from the provider's files", () => {
  it("copies each sourcePath into its targetKey, bytes as they are", async () => {
    const files = new Map([
      ["db-pass", Buffer.from("hunter2")],
      ["bin", Buffer.from([0, 255, 1])],
      ["unused", Buffer.from("x")],
    ]);
    const data = await buildSecretData(secretSync("Opaque", [{ sourcePath: "db-pass", targetKey: "password" }, { sourcePath: "bin", targetKey: "blob" }]), "team-a/kv", files);
    expect([...data.keys()]).toEqual(["password", "blob"]);
    expect(data.get("password")!.toString()).toBe("hunter2");
    expect([...data.get("blob")!]).toEqual([0, 255, 1]);
  });

  it("names the missing sourcePath, the files the provider returned and the fix, in one line", async () => {
    const files = new Map([
      ["db-pass", Buffer.from("s3cr3t-value")],
      ["api-key", Buffer.from("k")],
    ]);
    const err = await buildSecretData(secretSync("Opaque", [{ sourcePath: "db-password", targetKey: "password" }]), "team-a/kv", files).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncFailure);
    const failure = err as SyncFailure;
    expect(failure.reason).toBe("RemoteSecretStoreFetchFailed");
    expect(failure.retryable).toBe(false);
    expect(failure.message).toBe(
      'secretsync team-a/app: sourcePath "db-password" is not among the files the provider returned for secretproviderclass team-a/kv: api-key, db-pass; ' +
        "fix spec.secretObject.data[0].sourcePath or add the object to the class",
    );
    expect(failure.message).not.toContain("s3cr3t");
  });

  it("leaves out the keys of optional objects the provider reported missing, and still names a sourcePath that is no object's", async () => {
    const files = new Map([["db-pass", Buffer.from("hunter2")]]);
    const missing = missingFiles([
      { id: "secret/db-pass", version: "0123456789abcdef0123456789abcdef" },
      { id: "secret/feature-flag", version: "(missing) feature-flag" },
      { id: "cert/tls", version: "(missing) tls" },
    ]);
    const ss = secretSync("Opaque", [
      { sourcePath: "db-pass", targetKey: "password" },
      { sourcePath: "feature-flag", targetKey: "flag" },
      // a file below a missing object's (an object's history, objectVersionHistory)
      { sourcePath: "tls/0", targetKey: "tls-0" },
    ]);
    const data = await buildSecretData(ss, "team-a/kv", files, missing);
    expect([...data.keys()]).toEqual(["password"]);
    const typo = secretSync("Opaque", [{ sourcePath: "feature-flags", targetKey: "flag" }]);
    const err = (await buildSecretData(typo, "team-a/kv", files, missing).catch((e: unknown) => e)) as SyncFailure;
    expect(err.message).toContain('sourcePath "feature-flags" is not among the files');
  });

  it("bounds the list of files however many the provider returned, and keeps it on one line", async () => {
    const files = new Map(Array.from({ length: 500 }, (_, i) => [`object-${String(i).padStart(3, "0")}\nforged`, Buffer.from("v")] as const));
    const err = (await buildSecretData(secretSync("Opaque", [{ sourcePath: "missing", targetKey: "k" }]), "team-a/kv", files).catch((e: unknown) => e)) as SyncFailure;
    expect(err.message).toContain("and 490 more");
    expect(err.message).not.toContain("\n");
    expect(err.message.length).toBeLessThan(1024);
  });

  it("splits a PEM certificate and key into tls.crt and tls.key, keys re-encoded as PKCS#1", async () => {
    const pem = Buffer.from(pki.leafKeyPkcs8 + pki.leafPem + pki.intermediatePem);
    const data = await buildSecretData(
      secretSync("kubernetes.io/tls", [
        { sourcePath: "web.pem", targetKey: "tls.crt" },
        { sourcePath: "web.pem", targetKey: "tls.key" },
      ]),
      "team-a/kv",
      new Map([["web.pem", pem]]),
    );
    const crt = data.get("tls.crt")!.toString();
    expect(crt.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(2);
    expect(new X509Certificate(crt).subject).toContain("CN=leaf.example.com");
    expect(data.get("tls.key")!.toString()).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
  });

  it("takes tls.crt and tls.key from a PFX archive too (an EC key as SEC1)", async () => {
    const data = await buildSecretData(
      secretSync("kubernetes.io/tls", [
        { sourcePath: "web.pfx", targetKey: "tls.crt" },
        { sourcePath: "web.pfx", targetKey: "tls.key" },
      ]),
      "team-a/kv",
      new Map([["web.pfx", pki.ecPfx]]),
    );
    expect(new X509Certificate(data.get("tls.crt")!).subject).toContain("CN=ec.example.com");
    expect(data.get("tls.key")!.toString()).toMatch(/^-----BEGIN EC PRIVATE KEY-----\n/);
  });

  it("says why a file cannot become a TLS Secret, without its content", async () => {
    const err = (await buildSecretData(secretSync("kubernetes.io/tls", [{ sourcePath: "note", targetKey: "tls.crt" }]), "team-a/kv", new Map([["note", Buffer.from("plain-text-value")]])).catch(
      (e: unknown) => e,
    )) as SyncFailure;
    expect(err.reason).toBe("RemoteSecretStoreFetchFailed");
    expect(err.message).toMatch(/^secretsync team-a\/app: spec\.secretObject\.data\[0\]: cannot make tls\.crt of a kubernetes\.io\/tls Secret from "note": /);
    expect(err.message).not.toContain("plain-text-value");
  });
});
