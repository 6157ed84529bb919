// The Azure SDK's credential and Key Vault client classes, loaded on a
// provider's first mount instead of at start-up. They are most of the
// provider's code (Entra ID's MSAL, three Key Vault clients, their HTTP
// pipeline): evaluating them at start-up cost about a third of the time to
// answer the first Version call and several MiB on every node whose pods
// mount nothing. bench/RESULTS.md has the figures.
import type { ClientAssertionCredential, ClientSecretCredential, ManagedIdentityCredential } from "@azure/identity";
import type { CertificateClient } from "@azure/keyvault-certificates";
import type { KeyClient } from "@azure/keyvault-keys";
import type { SecretClient } from "@azure/keyvault-secrets";
import type { HttpClient } from "@azure/core-rest-pipeline";
import type { VaultChallenges } from "./vault-challenges.ts";

export interface AzureSdk {
  ClientSecretCredential: typeof ClientSecretCredential;
  ClientAssertionCredential: typeof ClientAssertionCredential;
  ManagedIdentityCredential: typeof ManagedIdentityCredential;
  SecretClient: typeof SecretClient;
  KeyClient: typeof KeyClient;
  CertificateClient: typeof CertificateClient;
  /** The one HTTP client of every Key Vault and Entra ID request (vault-http-client.ts). */
  httpClient: HttpClient;
  /** Vaults' challenges kept for new clients (vault-challenges.ts): needs the SDK's HTTP types, so loaded with it. */
  VaultChallenges: typeof VaultChallenges;
}

let loading: Promise<AzureSdk> | undefined;
let loaded: AzureSdk | undefined;

/** The SDK's classes once loaded, without a promise to wait for (every mount after the first). */
export function loadedAzureSdk(): AzureSdk | undefined {
  return loaded;
}

/** Resolves with the SDK's classes; the first call loads them, later calls share that load. */
export function azureSdk(): Promise<AzureSdk> {
  loading ??= (async () => {
    const [identity, secrets, keys, certificates, http, challenges] = await Promise.all([
      import("@azure/identity"),
      import("@azure/keyvault-secrets"),
      import("@azure/keyvault-keys"),
      import("@azure/keyvault-certificates"),
      import("./vault-http-client.ts"),
      import("./vault-challenges.ts"),
    ]);
    return (loaded = {
      ClientSecretCredential: identity.ClientSecretCredential,
      ClientAssertionCredential: identity.ClientAssertionCredential,
      ManagedIdentityCredential: identity.ManagedIdentityCredential,
      SecretClient: secrets.SecretClient,
      KeyClient: keys.KeyClient,
      CertificateClient: certificates.CertificateClient,
      httpClient: new http.VaultHttpClient(),
      VaultChallenges: challenges.VaultChallenges,
    });
  })();
  // A failed load (a broken image) is retried by the next mount, not cached.
  loading.catch(() => {
    loading = undefined;
  });
  return loading;
}
