// Managed identity through @azure/identity's ManagedIdentityCredential and
// the emulated IMDS (plain HTTP, AZURE_POD_IDENTITY_AUTHORITY_HOST). In its
// own file because MSAL caches the managed-identity source per process.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManagedIdentityCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";
import { createDefaultHttpClient, createHttpHeaders, createPipelineRequest, RestError } from "@azure/core-rest-pipeline";
import { startEmulator, type Emulator } from "../../src/emulator/index.ts";
import { clientOptions } from "./helpers.ts";

const SYSTEM_ASSIGNED = "a11ce000-0000-4000-8000-000000000001";
const USER_ASSIGNED = "b0b00000-0000-4000-8000-000000000002";

let emulator: Emulator;

beforeAll(async () => {
  for (const name of ["IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID"]) {
    delete process.env[name];
  }
  emulator = await startEmulator({
    seed: {
      vaults: [
        { name: "kv1", secrets: [{ name: "node-secret", value: "for-the-vm" }] },
        { name: "kv2", secrets: [{ name: "uami-secret", value: "for-the-uami" }] },
      ],
      managedIdentities: [
        { name: "vm", clientId: SYSTEM_ASSIGNED, systemAssigned: true, roleAssignments: [{ vault: "kv1", role: "Key Vault Secrets User" }] },
        { name: "uami", clientId: USER_ASSIGNED, roleAssignments: [{ vault: "kv2", role: "Key Vault Secrets User" }] },
      ],
    },
  });
  process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = emulator.imdsEndpoint;
});

afterAll(async () => {
  delete process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST;
  await emulator.close();
});

describe("IMDS", () => {
  it("issues tokens for the system-assigned identity", async () => {
    const secrets = new SecretClient(emulator.vaultUrl("kv1"), new ManagedIdentityCredential(), clientOptions(emulator));
    expect((await secrets.getSecret("node-secret")).value).toBe("for-the-vm");
    expect(emulator.counters()).toMatchObject({ imdsToken: 1, [`imdsToken:${SYSTEM_ASSIGNED}`]: 1 });
  });

  it("issues tokens for a user-assigned identity by client id, limited to its role assignments", async () => {
    const credential = new ManagedIdentityCredential({ clientId: USER_ASSIGNED });
    const kv2 = new SecretClient(emulator.vaultUrl("kv2"), credential, clientOptions(emulator));
    expect((await kv2.getSecret("uami-secret")).value).toBe("for-the-uami");
    expect(emulator.counters()[`imdsToken:${USER_ASSIGNED}`]).toBe(1);

    const kv1 = new SecretClient(emulator.vaultUrl("kv1"), credential, clientOptions(emulator));
    const error = (await kv1.getSecret("node-secret").catch((e: unknown) => e)) as RestError;
    expect(error).toBeInstanceOf(RestError);
    expect(error.statusCode).toBe(403);
    expect(error.message).toContain(`appid=${USER_ASSIGNED}`);
  });

  it("fails for an unknown identity", async () => {
    const credential = new ManagedIdentityCredential({ clientId: "c0ffee00-0000-4000-8000-000000000003" });
    await expect(credential.getToken("https://vault.azure.net/.default")).rejects.toThrow(/Identity not found/);
    expect(emulator.counters()["imdsToken:c0ffee00-0000-4000-8000-000000000003"]).toBeUndefined();
  });

  it("requires the Metadata header and serves the trailing-slash path MSAL uses", async () => {
    const http = createDefaultHttpClient();
    const url = `${emulator.imdsEndpoint}/metadata/identity/oauth2/token/?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net`;
    const without = await http.sendRequest(createPipelineRequest({ url, allowInsecureConnection: true }));
    expect(without.status).toBe(400);
    expect(JSON.parse(without.bodyAsText!)).toEqual({ error: "invalid_request", error_description: "Required metadata header not specified" });

    const withHeader = await http.sendRequest(createPipelineRequest({ url, allowInsecureConnection: true, headers: createHttpHeaders({ Metadata: "true" }) }));
    expect(withHeader.status).toBe(200);
    const body = JSON.parse(withHeader.bodyAsText!) as Record<string, string>;
    expect(body).toMatchObject({ client_id: SYSTEM_ASSIGNED, resource: "https://vault.azure.net", token_type: "Bearer" });
    expect(Number(body.expires_on)).toBeGreaterThan(Date.now() / 1000 + 3600);
  });
});
