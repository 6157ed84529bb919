// The Entra ID token endpoint through @azure/identity: client secrets and
// client assertions (Kubernetes service-account tokens, workload identity).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { ClientAssertionCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";
import { startEmulator, type Emulator } from "../../src/emulator/index.ts";
import { APP_OFFICER, clientOptions, secretCredential } from "./helpers.ts";

const WORKLOAD_APP = "5c1e0000-0000-4000-8000-0000000000a1";
const CLUSTER_ISSUER = "https://kubernetes.default.svc.cluster.local";
const UNVERIFIED_ISSUER = "https://oidc.unverified.example";
const SCOPE = "https://vault.azure.net/.default";

let emulator: Emulator;
const clusterKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
const strangerKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;

beforeAll(async () => {
  const jwk = clusterKey.export({ format: "jwk" });
  emulator = await startEmulator();
  await emulator.seed({
    vaults: [{ name: "kv1", secrets: [{ name: "app-secret", value: "for-workloads" }] }],
    serviceAccountIssuers: [{ issuer: CLUSTER_ISSUER, jwks: { keys: [{ kty: "RSA", n: jwk.n, e: jwk.e, kid: "cluster-key" }] } }],
    applications: [
      { clientId: APP_OFFICER.clientId, clientSecret: APP_OFFICER.secret, roleAssignments: [{ vault: "kv1", role: "Key Vault Secrets User" }] },
      {
        name: "workload",
        clientId: WORKLOAD_APP,
        federatedCredentials: [
          { issuer: emulator.serviceAccountIssuer, subject: "system:serviceaccount:default:app" },
          { issuer: CLUSTER_ISSUER, subject: "system:serviceaccount:prod:web" },
          { issuer: UNVERIFIED_ISSUER, subject: "system:serviceaccount:dev:tool" },
        ],
        roleAssignments: [{ vault: "kv1", permissions: ["secrets"] }],
      },
    ],
  });
});

afterAll(async () => {
  await emulator.close();
});

/** A Kubernetes-style token signed by `key`. */
function serviceAccountToken(key: KeyObject, claims: Record<string, unknown>, kid = "cluster-key"): string {
  const now = Math.floor(Date.now() / 1000);
  const header = Buffer.from(JSON.stringify({ alg: "RS256", kid })).toString("base64url");
  const payload = Buffer.from(JSON.stringify({ aud: ["api://AzureADTokenExchange"], iat: now, nbf: now, exp: now + 600, ...claims })).toString("base64url");
  return `${header}.${payload}.${sign("sha256", Buffer.from(`${header}.${payload}`), key).toString("base64url")}`;
}

function assertionCredential(token: string): ClientAssertionCredential {
  return new ClientAssertionCredential(emulator.tenantId, WORKLOAD_APP, () => Promise.resolve(token), {
    authorityHost: emulator.authorityHost,
    disableInstanceDiscovery: true,
    tlsOptions: { ca: emulator.caCertPem },
  });
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(Error);
  return error as Error;
}

describe("client secret", () => {
  it("issues a token for a registered app and secret", async () => {
    emulator.resetCounters();
    const token = await secretCredential(emulator, APP_OFFICER).getToken(SCOPE);
    expect(token.token.split(".")).toHaveLength(3);
    expect(token.expiresOnTimestamp).toBeGreaterThan(Date.now() + 3000 * 1000);
    expect(emulator.counters()).toMatchObject({ token: 1, [`token:${APP_OFFICER.clientId}`]: 1, openidConfiguration: 1 });
  });

  it("rejects a wrong secret (AADSTS7000215), an unknown app (AADSTS700016) and an unknown tenant (AADSTS90002)", async () => {
    const wrongSecret = await failure(secretCredential(emulator, { clientId: APP_OFFICER.clientId, secret: "nope" }).getToken(SCOPE));
    expect(wrongSecret.message).toContain("AADSTS7000215");
    const unknownApp = await failure(secretCredential(emulator, { clientId: "99999999-0000-4000-8000-000000000000", secret: "x" }).getToken(SCOPE));
    expect(unknownApp.message).toContain("AADSTS700016");
    const unknownTenant = await failure(secretCredential(emulator, APP_OFFICER, "77777777-0000-4000-8000-000000000000").getToken(SCOPE));
    expect(unknownTenant.message).toContain("AADSTS90002");
  });
});

describe("client assertion (workload identity)", () => {
  it("exchanges an emulator-minted service-account token and reads the vault with it", async () => {
    const token = emulator.issueServiceAccountToken({ namespace: "default", serviceAccount: "app" });
    const secrets = new SecretClient(emulator.vaultUrl("kv1"), assertionCredential(token), clientOptions(emulator));
    expect((await secrets.getSecret("app-secret")).value).toBe("for-workloads");
  });

  it("verifies signatures when the issuer has keys configured", async () => {
    const good = serviceAccountToken(clusterKey, { iss: CLUSTER_ISSUER, sub: "system:serviceaccount:prod:web" });
    expect((await assertionCredential(good).getToken(SCOPE)).token).toBeTruthy();
    const forged = serviceAccountToken(strangerKey, { iss: CLUSTER_ISSUER, sub: "system:serviceaccount:prod:web" });
    expect((await failure(assertionCredential(forged).getToken(SCOPE))).message).toContain("AADSTS50013");
  });

  it("accepts unverifiable issuers on their claims alone", async () => {
    const token = serviceAccountToken(strangerKey, { iss: UNVERIFIED_ISSUER, sub: "system:serviceaccount:dev:tool" });
    expect((await assertionCredential(token).getToken(SCOPE)).token).toBeTruthy();
  });

  it("rejects unknown subjects, wrong audiences and expired tokens", async () => {
    const wrongSubject = emulator.issueServiceAccountToken({ namespace: "default", serviceAccount: "other" });
    const subjectError = await failure(assertionCredential(wrongSubject).getToken(SCOPE));
    expect(subjectError.message).toContain("AADSTS70021");
    expect(subjectError.message).toContain("system:serviceaccount:default:other");

    const wrongAudience = emulator.issueServiceAccountToken({ namespace: "default", serviceAccount: "app", audience: "api://AKSIdentityBinding" });
    expect((await failure(assertionCredential(wrongAudience).getToken(SCOPE))).message).toContain("AADSTS700212");

    const expired = emulator.issueServiceAccountToken({ namespace: "default", serviceAccount: "app", expiresInSeconds: -3600 });
    expect((await failure(assertionCredential(expired).getToken(SCOPE))).message).toContain("AADSTS700024");
  });
});
