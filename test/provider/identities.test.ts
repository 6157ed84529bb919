// Each identity mode against the emulated Entra ID / IMDS with the real
// @azure/identity credentials, through the provider program's socket; and
// wrong or unauthorised identities giving clear errors that name the object
// and the vault.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.ts";
import { objectsYaml, tokensAttribute } from "./client.ts";
import { startProvider, startTestEmulator, type RunningProvider } from "./env.ts";
import { makePki } from "./pki.ts";
import { makeMaterial, NO_ACCESS, podAttributes, SP, SYSTEM_MI, UAMI, WI_APP, type Material } from "./seed.ts";

let material: Material;
let emulator: Emulator;
let address: string;
let provider: RunningProvider;
let pkiDir: string;

beforeAll(async () => {
  const pki = makePki();
  pkiDir = mkdtempSync(join(tmpdir(), "provider-clouds-"));
  material = makeMaterial(pki);
  ({ emulator, address } = await startTestEmulator(material.seed));
  // the custom cloud file of the cloudEnvFileName test is written there
  provider = await startProvider(emulator, address, [`--cloud-env-file-dir=${pkiDir}`]);
}, 120_000);

afterAll(async () => {
  await provider?.stop();
  await emulator?.close();
  if (pkiDir) rmSync(pkiDir, { recursive: true, force: true });
});

const objects = objectsYaml([
  { objectName: "s-utf8", objectType: "secret" },
  { objectName: "key-p256", objectType: "key" },
]);
const attrs = (extra: Record<string, string>, pod?: { name: string; namespace: string; serviceAccount: string }) =>
  podAttributes({ keyvaultName: "kv-main", tenantID: emulator.tenantId, objects, ...extra }, pod);
const counter = (name: string) => emulator.counters()[name] ?? 0;
const secretFile = (res: { files: Array<{ path: string; contents: Buffer }> }) => Buffer.from(res.files[0]!.contents).toString("utf8");

describe("identity modes", () => {
  it("service principal (nodePublishSecretRef, keys matched case-insensitively)", async () => {
    const res = await provider.client.mount({ attributes: attrs({}), secrets: { ClientID: SP.clientId, ClientSecret: SP.clientSecret } });
    expect(secretFile(res)).toBe(material.utf8);
    expect(res.files.map((f) => f.path)).toEqual(["s-utf8", "key-p256"]);
  });

  it("workload identity: the service-account token is exchanged; a new token is proven once, then reused", async () => {
    const before = counter(`token:${WI_APP}`);
    const token1 = emulator.issueServiceAccountToken({ namespace: "ns1", serviceAccount: "sa1" });
    const wi = (token: string) => attrs({ clientID: WI_APP, "csi.storage.k8s.io/serviceAccount.tokens": tokensAttribute(token) });
    expect(secretFile(await provider.client.mount({ attributes: wi(token1) }))).toBe(material.utf8);
    expect(counter(`token:${WI_APP}`) - before).toBe(1);
    // the same token again (a rotation poll): no new exchange
    await provider.client.mount({ attributes: wi(token1) });
    expect(counter(`token:${WI_APP}`) - before).toBe(1);
    // kubelet rotated the token: it is proven with one exchange, then reused
    await new Promise((r) => setTimeout(r, 1100));
    const token2 = emulator.issueServiceAccountToken({ namespace: "ns1", serviceAccount: "sa1" });
    expect(token2).not.toBe(token1);
    await provider.client.mount({ attributes: wi(token2) });
    await provider.client.mount({ attributes: wi(token2) });
    expect(counter(`token:${WI_APP}`) - before).toBe(2);
  });

  it("workload identity: a token the app does not trust is refused, even while another pod's token is cached", async () => {
    const token = emulator.issueServiceAccountToken({ namespace: "ns9", serviceAccount: "sa9" });
    const err = await provider.client.mountError({
      attributes: attrs({ clientID: WI_APP, "csi.storage.k8s.io/serviceAccount.tokens": tokensAttribute(token) }, { name: "p", namespace: "ns9", serviceAccount: "sa9" }),
    });
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toMatch(
      /^failed to mount objects, error: failed to get objectType:secret, objectName:s-utf8, objectVersion:: key vault "kv-main" \(https:\/\/kv-main\.vault\.azure\.net\/\): failed to get an access token for workload identity \(clientID 4{8}-4{4}-4{4}-8444-4{12}, system:serviceaccount:ns9:sa9\): .*AADSTS70021/,
    );
    expect(err.details).not.toContain(token);
  });

  it("workload identity: an expired service-account token is refused", async () => {
    const token = emulator.issueServiceAccountToken({ namespace: "ns2", serviceAccount: "sa2", expiresInSeconds: -3600 });
    const err = await provider.client.mountError({
      attributes: attrs({ clientID: WI_APP, "csi.storage.k8s.io/serviceAccount.tokens": tokensAttribute(token) }, { name: "p", namespace: "ns2", serviceAccount: "sa2" }),
    });
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toMatch(/objectName:s-utf8.*key vault "kv-main".*AADSTS700024/);
  });

  it("user-assigned managed identity (IMDS with client_id)", async () => {
    const before = counter(`imdsToken:${UAMI}`);
    const res = await provider.client.mount({ attributes: attrs({ useVMManagedIdentity: "true", userAssignedIdentityID: UAMI }) });
    expect(secretFile(res)).toBe(material.utf8);
    expect(counter(`imdsToken:${UAMI}`) - before).toBe(1);
  });

  it("system-assigned managed identity (IMDS without an id)", async () => {
    const before = counter(`imdsToken:${SYSTEM_MI}`);
    const res = await provider.client.mount({ attributes: attrs({ useVMManagedIdentity: "TRUE" }) });
    expect(secretFile(res)).toBe(material.utf8);
    expect(counter(`imdsToken:${SYSTEM_MI}`) - before).toBe(1);
  });

  it("a managed identity that does not exist: clear error naming object and vault", async () => {
    const err = await provider.client.mountError({ attributes: attrs({ useVMManagedIdentity: "true", userAssignedIdentityID: "99999999-9999-4999-8999-999999999999" }) }, 30_000);
    expect(err.details).toMatch(/^failed to mount objects, error: failed to get objectType:(secret|key), objectName:(s-utf8|key-p256), objectVersion:: key vault "kv-main" \(https:\/\/kv-main\.vault\.azure\.net\/\): failed to get an access token: /);
  });

  it("a wrong client secret is refused (PERMISSION_DENIED), not served from the cache of the right one", async () => {
    await provider.client.mount({ attributes: attrs({}), secrets: { clientid: SP.clientId, clientsecret: SP.clientSecret } });
    const err = await provider.client.mountError({ attributes: attrs({}), secrets: { clientid: SP.clientId, clientsecret: "wrong-secret" } });
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toMatch(/^failed to mount objects, error: failed to get objectType:(secret|key), objectName:(s-utf8|key-p256), objectVersion:: key vault "kv-main" \(https:\/\/kv-main\.vault\.azure\.net\/\): failed to get an access token: .*AADSTS7000215/);
    expect(err.details).not.toContain("wrong-secret");
  });

  it("an identity without access to the vault gets Forbidden naming the object and vault", async () => {
    const err = await provider.client.mountError({ attributes: attrs({}), secrets: { clientid: NO_ACCESS.clientId, clientsecret: NO_ACCESS.clientSecret } });
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toMatch(/^failed to mount objects, error: failed to get objectType:(secret|key), objectName:(s-utf8|key-p256), objectVersion:: key vault "kv-main" \(https:\/\/kv-main\.vault\.azure\.net\/\): Forbidden \(HTTP 403\): /);
  });

  it("custom cloud from cloudEnvFileName (read per mount, no process-wide variable)", async () => {
    const file = join(pkiDir, "cloud.json");
    writeFileSync(
      file,
      JSON.stringify({ name: "AzureStackCloud", activeDirectoryEndpoint: "https://login.microsoftonline.com/", keyVaultEndpoint: "https://vault.azure.net/", keyVaultDNSSuffix: "vault.azure.net" }),
    );
    const res = await provider.client.mount({ attributes: attrs({ cloudName: "AzureStackCloud", cloudEnvFileName: file }), secrets: { clientid: SP.clientId, clientsecret: SP.clientSecret } });
    expect(secretFile(res)).toBe(material.utf8);
  });

  it("AzureUSGovernmentCloud: vault and authority hosts of that cloud", async () => {
    const res = await provider.client.mount({ attributes: attrs({ cloudName: "azureusgovernmentcloud" }), secrets: { clientid: SP.clientId, clientsecret: SP.clientSecret } });
    expect(secretFile(res)).toBe(material.utf8);
  });
});
