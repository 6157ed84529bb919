// The unmodified public-cloud configuration: vault URLs and the Entra ID
// authority without ports. The emulator binds 443 on a random loopback
// address of its own (tests run as root), and the DNS hook points the real
// host names there through SSCSI_EMULATOR_ADDRESS.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientAssertionCredential, ClientSecretCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";
import { startEmulator, type Emulator } from "../../src/emulator/index.ts";
import { DEFAULT_EMULATED_HOSTS } from "../../src/emulator/dns-hook.ts";
import { APP_OFFICER } from "./helpers.ts";

const WORKLOAD_APP = "5c1e0000-0000-4000-8000-0000000000b2";
const address = `127.${1 + Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
const saved = { address: process.env.SSCSI_EMULATOR_ADDRESS, hosts: process.env.SSCSI_EMULATOR_HOSTS, authority: process.env.AZURE_AUTHORITY_HOST };
let emulator: Emulator;

beforeAll(async () => {
  delete process.env.AZURE_AUTHORITY_HOST;
  process.env.SSCSI_EMULATOR_ADDRESS = address;
  process.env.SSCSI_EMULATOR_HOSTS = [...DEFAULT_EMULATED_HOSTS, "vault.emu"].join(",");
  emulator = await startEmulator({ host: address, port: 443, extraDnsSuffixes: ["vault.emu"] });
  await emulator.seed({
    vaults: [{ name: "kv1", secrets: [{ name: "greeting", value: "hello from 443" }] }],
    applications: [
      { clientId: APP_OFFICER.clientId, clientSecret: APP_OFFICER.secret, roleAssignments: [{ vault: "kv1", role: "Key Vault Secrets User" }] },
      {
        clientId: WORKLOAD_APP,
        federatedCredentials: [{ issuer: emulator.serviceAccountIssuer, subject: "system:serviceaccount:kube-system:csi" }],
        roleAssignments: [{ vault: "kv1", role: "Key Vault Secrets User" }],
      },
    ],
  });
});

afterAll(async () => {
  await emulator?.close();
  for (const [key, value] of [
    ["SSCSI_EMULATOR_ADDRESS", saved.address],
    ["SSCSI_EMULATOR_HOSTS", saved.hosts],
    ["AZURE_AUTHORITY_HOST", saved.authority],
  ] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

describe("on port 443", () => {
  it("serves URLs without a port", () => {
    expect(emulator.port).toBe(443);
    expect(emulator.vaultUrl("kv1")).toBe("https://kv1.vault.azure.net/");
    expect(emulator.authorityHost).toBe("https://login.microsoftonline.com");
  });

  it("works with the default public-cloud authority and a client secret", async () => {
    const tlsOptions = { ca: emulator.caCertPem };
    const credential = new ClientSecretCredential(emulator.tenantId, APP_OFFICER.clientId, APP_OFFICER.secret, { tlsOptions });
    const secrets = new SecretClient("https://kv1.vault.azure.net", credential, { tlsOptions });
    expect((await secrets.getSecret("greeting")).value).toBe("hello from 443");
    expect(emulator.counters()).toMatchObject({ token: 1, challenge: 1 });
    expect(emulator.counters().openidConfiguration).toBeUndefined();
  });

  it("works with a client assertion and for a vault under an extra DNS suffix", async () => {
    const tlsOptions = { ca: emulator.caCertPem };
    const token = emulator.issueServiceAccountToken({ namespace: "kube-system", serviceAccount: "csi" });
    const credential = new ClientAssertionCredential(emulator.tenantId, WORKLOAD_APP, () => Promise.resolve(token), { tlsOptions });
    const secrets = new SecretClient("https://kv1.vault.emu/", credential, { tlsOptions });
    expect((await secrets.getSecret("greeting")).value).toBe("hello from 443");
  });
});
