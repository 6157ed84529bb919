// The Key Vault clients the provider makes: each of the three (secrets, keys,
// certificates) without the SDK's tracing policy, and with everything else
// of its pipeline (Key Vault's authentication policy included). Fails when
// an SDK version keeps its pipeline elsewhere, rather than letting the
// policy come back unnoticed.
import { tracingPolicyName, type Pipeline } from "@azure/core-rest-pipeline";
import { ClientSecretCredential } from "@azure/identity";
import { CertificateClient } from "@azure/keyvault-certificates";
import { KeyClient } from "@azure/keyvault-keys";
import { SecretClient } from "@azure/keyvault-secrets";
import { describe, expect, it } from "vitest";
import type { AzureSdk } from "../../../src/provider/keyvault/azure-sdk.ts";
import { TRACING_POLICY, VaultClients } from "../../../src/provider/keyvault/vault-clients.ts";

function policiesOf(client: object): string[] {
  const pipeline = (client as { client?: { pipeline?: Pipeline } }).client?.pipeline;
  expect(pipeline, "the client's pipeline where withoutTracingPolicy looks for it").toBeDefined();
  return pipeline!.getOrderedPolicies().map((p) => p.name);
}

describe("the provider's Key Vault clients", () => {
  it("have no tracing policy, and the rest of the SDK's pipeline", () => {
    expect(TRACING_POLICY).toBe(tracingPolicyName);
    const sdk = { SecretClient, KeyClient, CertificateClient } as unknown as AzureSdk;
    const credential = new ClientSecretCredential("00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002", "secret");
    const options = { retryOptions: { maxRetries: 0 }, additionalPolicies: [], userAgentOptions: { userAgentPrefix: "test" }, httpClient: { sendRequest: () => Promise.reject(new Error("no requests here")) } };
    const clients = new VaultClients(sdk, "https://kv1.vault.azure.net", credential, options);
    const untouched = new SecretClient("https://kv1.vault.azure.net", credential, options);
    expect(policiesOf(untouched)).toContain(tracingPolicyName);
    for (const client of [clients.secrets, clients.keys, clients.certificates]) {
      const names = policiesOf(client);
      expect(names).not.toContain(tracingPolicyName);
      expect(names).toContain("keyVaultAuthenticationPolicy");
    }
    expect(policiesOf(clients.secrets)).toEqual(policiesOf(untouched).filter((name) => name !== tracingPolicyName));
  });
});
