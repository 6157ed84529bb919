// The four classes of failure a mount can meet, through the provider
// program's socket with the real Azure SDK against the emulator, with the
// gRPC code kubelet acts on: configuration errors are final and name the
// parameter to fix; transient failures are UNAVAILABLE; an untrusted TLS
// certificate fails at once, naming the host and the certificate problem.
// Each case runs against the sources and against the minified bundle, where
// the SDK's, MSAL's and our classes are renamed: what the provider tells
// errors apart by (their names, codes, status) must survive that.
import { status } from "@grpc/grpc-js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bundlePrograms } from "../../scripts/bundle.ts";
import { EMULATOR_SERVICE_ACCOUNT_ISSUER, type Emulator, type SeedDocument } from "../../src/emulator/index.ts";
import { objectsYaml, tokensAttribute } from "./client.ts";
import { startProvider, startTestEmulator, type RunningProvider } from "./env.ts";
import { podAttributes } from "./seed.ts";

const SP = { clientid: "71111111-1111-4111-8111-111111111111", clientsecret: "classes-sp-secret" };
const SP_FRESH = { clientid: "72222222-2222-4222-8222-222222222222", clientsecret: "classes-sp-fresh" };
const WI_APP = "73333333-3333-4333-8333-333333333333";
const OTHER_TENANT = "99999999-9999-4999-8999-999999999999";
const all = [{ vault: "*", permissions: ["all"] }];
const SEED: SeedDocument = {
  vaults: [{ name: "kv-classes", secrets: [{ name: "s1", value: "one" }] }],
  applications: [
    { name: "sp", clientId: SP.clientid, clientSecret: SP.clientsecret, roleAssignments: all },
    { name: "sp-fresh", clientId: SP_FRESH.clientid, clientSecret: SP_FRESH.clientsecret, roleAssignments: all },
    { name: "wi", clientId: WI_APP, federatedCredentials: [{ issuer: EMULATOR_SERVICE_ACCOUNT_ISSUER, subject: "system:serviceaccount:ns1:sa1" }], roleAssignments: all },
  ],
};

let emulator: Emulator;
let address: string;
let provider: RunningProvider;

const objects = objectsYaml([{ objectName: "s1", objectType: "secret" }]);
const attrs = (extra: Record<string, string>) => podAttributes({ keyvaultName: "kv-classes", tenantID: emulator.tenantId, objects, ...extra });
const PREFIX = 'failed to mount objects, error: failed to get objectType:secret, objectName:s1, objectVersion:: key vault "kv-classes" (https://kv-classes.vault.azure.net/)';
const wi = (extra: Record<string, string> = {}) =>
  attrs({ clientID: WI_APP, "csi.storage.k8s.io/serviceAccount.tokens": tokensAttribute(emulator.issueServiceAccountToken({ namespace: "ns1", serviceAccount: "sa1" })), ...extra });

/** Key Vault operations the provider retried so far (keyvault_retries_total, every reason). */
async function retries(p: RunningProvider): Promise<number> {
  return [...(await p.metrics()).matchAll(/^keyvault_retries_total\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

/**
 * A failing mount, with how long it took (for the log) and how many retries
 * the provider counted for it: "at once, not retried" is proven by that count,
 * not by a duration (every retry is counted before its wait).
 */
async function timed(p: RunningProvider, attributes: Record<string, string>, secrets: Record<string, string> | null, timeoutMs = 20_000) {
  const before = await retries(p);
  const started = Date.now();
  const err = await p.client.mountError({ attributes, secrets }, timeoutMs);
  const ms = Date.now() - started;
  return { err, ms, retried: (await retries(p)) - before };
}

const SOURCES = "its sources";
const BUNDLE = "its bundle (scripts/bundle.ts, minified as the images ship it)";
let bundleDir = "";

/** The provider bundle, built once: the minifier renames classes and functions, so what names the errors carry is checked there too. */
async function bundledProvider(): Promise<string> {
  bundleDir = mkdtempSync(join(tmpdir(), "provider-bundle-"));
  const [built] = await bundlePrograms({ programs: ["provider"], outdir: bundleDir, quiet: true });
  return built!.file;
}

afterAll(() => {
  if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
});

describe.each([SOURCES, BUNDLE])("the provider program from %s", (from) => {
  let program: string | undefined;

  beforeAll(async () => {
    ({ emulator, address } = await startTestEmulator(SEED));
    program = from === BUNDLE ? await bundledProvider() : undefined;
    // kv-gone.vault.azure.net does not resolve, as a vault that does not exist
    provider = await startProvider(emulator, address, [], { SSCSI_EMULATOR_NXDOMAIN: "kv-gone.vault.azure.net" }, { program });
  }, 120_000);

  afterEach(() => emulator.faults.clear());

  afterAll(async () => {
    await provider?.stop();
    await emulator?.close();
  });

  describe("configuration errors are final and name the parameter to fix", () => {
    it("a tenantID that is not the vault's (service principal): INVALID_ARGUMENT naming both tenants", async () => {
      const { err, retried } = await timed(provider, attrs({ tenantID: OTHER_TENANT }), SP);
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toBe(
        `${PREFIX}: the vault belongs to tenant ${emulator.tenantId}, not to tenantID "${OTHER_TENANT}": set tenantID in the SecretProviderClass to the vault's tenant ${emulator.tenantId}`,
      );
      expect(retried).toBe(0);
    });

    it("a tenantID Entra ID does not know (workload identity): INVALID_ARGUMENT naming tenantID", async () => {
      const { err } = await timed(provider, wi({ tenantID: OTHER_TENANT }), null);
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toContain(`tenantID "${OTHER_TENANT}" is not a tenant Entra ID knows (check tenantID)`);
      expect(err.details).toContain("AADSTS90002");
    });

    it("the wrong identity: a managed identity the node does not have, an app that does not exist: NOT_FOUND naming the parameter", async () => {
      const mi = await timed(provider, attrs({ useVMManagedIdentity: "true", userAssignedIdentityID: "74444444-4444-4444-8444-444444444444" }), null);
      expect(mi.err.code).toBe(status.NOT_FOUND);
      expect(mi.err.details).toContain(
        "the node has no managed identity userAssignedIdentityID 74444444-4444-4444-8444-444444444444 (check userAssignedIdentityID, or assign the identity to the node)",
      );
      const app = await timed(provider, attrs({}), { clientid: "75555555-5555-4555-8555-555555555555", clientsecret: "x" });
      expect(app.err.code).toBe(status.NOT_FOUND);
      expect(app.err.details).toContain(
        `no application 75555555-5555-4555-8555-555555555555 in tenant ${emulator.tenantId} (check clientid in the nodePublishSecretRef Secret and tenantID)`,
      );
      // a refused credential stays PERMISSION_DENIED, with what to check
      const secret = await timed(provider, attrs({}), { clientid: SP.clientid, clientsecret: "wrong" });
      expect(secret.err.code).toBe(status.PERMISSION_DENIED);
      expect(secret.err.details).toMatch(/AADSTS7000215.*; check clientid and clientsecret in the nodePublishSecretRef Secret$/);
    });

    it("a vault that does not exist (its host does not resolve): NOT_FOUND naming keyvaultName, without retries", async () => {
      const { err, retried } = await timed(provider, attrs({ keyvaultName: "kv-gone" }), SP);
      expect(err.code).toBe(status.NOT_FOUND);
      expect(err.details).toBe(
        'failed to mount objects, error: failed to get objectType:secret, objectName:s1, objectVersion:: key vault "kv-gone" (https://kv-gone.vault.azure.net/): ' +
          "the host kv-gone.vault.azure.net does not exist (DNS: ENOTFOUND): check keyvaultName, and cloudName for a vault of another cloud",
      );
      // not retried as a network error (which would take most of the 20 s deadline)
      expect(retried).toBe(0);
      const emulated = await timed(provider, attrs({ keyvaultName: "kv-unseeded" }), SP);
      expect(emulated.err.code).toBe(status.NOT_FOUND);
      expect(emulated.err.details).toMatch(/VaultNotFound \(HTTP 404\): .* \(check keyvaultName\)$/);
    });
  });

  describe("transient failures are UNAVAILABLE", () => {
    it("a token endpoint answering 500", async () => {
      emulator.faults.add({ kind: "error", operation: "token", status: 500, durationMs: 60_000 });
      const { err } = await timed(provider, attrs({}), SP_FRESH, 10_000);
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.details).toContain("failed to get an access token");
      expect(err.details).toContain("AADSTS90033");
    });

    it("connections reset by Key Vault", async () => {
      emulator.faults.add({ kind: "drop", operation: "getSecret", durationMs: 60_000 });
      const { err } = await timed(provider, attrs({}), SP, 5_000);
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.details).toMatch(/socket hang up|ECONNRESET/);
    });

    it("Key Vault answering 503, and throttling that outlasts the deadline", async () => {
      emulator.faults.add({ kind: "error", operation: "getSecret", status: 503, durationMs: 60_000 });
      const unavailable = await timed(provider, attrs({}), SP, 4_000);
      expect(unavailable.err.code).toBe(status.UNAVAILABLE);
      expect(unavailable.err.details).toContain("(HTTP 503)");
      emulator.faults.clear();
      emulator.faults.add({ kind: "throttle", operation: "getSecret", durationMs: 60_000, retryAfterSeconds: 30 });
      const throttled = await timed(provider, attrs({}), SP, 4_000);
      expect(throttled.err.code).toBe(status.UNAVAILABLE);
      expect(throttled.err.details).toMatch(/would pass the call's deadline: .*Throttled \(HTTP 429\)/);
    });
  });

  describe("TLS trust errors fail fast, naming the host and the certificate problem", () => {
    let untrusting: RunningProvider;
    beforeAll(async () => {
      // a provider that does not trust the emulator's CA
      untrusting = await startProvider({ ...emulator, caCertPath: "/dev/null" } as Emulator, address, [], {}, { program });
    }, 60_000);
    afterAll(async () => untrusting?.stop());

    it("Key Vault's certificate (service principal) and Entra ID's (workload identity)", async () => {
      const kv = await timed(untrusting, attrs({}), SP);
      expect(kv.err.code).toBe(status.FAILED_PRECONDITION);
      expect(kv.err.details).toBe(
        `${PREFIX}: TLS: the certificate of kv-classes.vault.azure.net is not trusted: self-signed certificate in certificate chain (SELF_SIGNED_CERT_IN_CHAIN); ` +
          "the provider trusts the system CAs and those in NODE_EXTRA_CA_CERTS",
      );
      const login = await timed(untrusting, wi(), null);
      expect(login.err.code).toBe(status.FAILED_PRECONDITION);
      expect(login.err.details).toMatch(/TLS: the certificate of login\.microsoftonline\.com is not trusted: self-signed certificate in certificate chain/);
      console.log(`untrusted certificate refused after ${kv.ms} ms (Key Vault) and ${login.ms} ms (Entra ID) of a 20 s deadline`);
      // not retried for most of the deadline as a network error
      expect([kv.retried, login.retried]).toEqual([0, 0]);
    });
  });
});
