// The world the interop tests share: one Key Vault emulator (HTTPS on port
// 443 of a private loopback address, also playing identity binding's API
// server and token proxy) seeded with every kind of object and one principal
// per identity mode, and a pair of providers (upstream's Go binary and ours)
// for each setting of the two provider flags that change output. Both derive
// the token proxy's server name from the emulated API server's certificate.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { EMULATOR_SERVICE_ACCOUNT_ISSUER, IDENTITY_BINDING_AUDIENCE, type Emulator, type SeedDocument } from "../../../src/emulator/index.ts";
import { rawKeyVaultGet, startProvider, startTestEmulator, type RunningProvider } from "../../provider/env.ts";
import type { ProviderClient } from "../../provider/client.ts";
import { makePki } from "../../provider/pki.ts";
import { startUpstreamProvider, type UpstreamProvider } from "./upstream.ts";

export const VAULT = "kv-interop";
export const GOV_VAULT = "kv-interop-gov";
/** A valid vault name no vault has. */
export const MISSING_VAULT = "kv-nowhere";
export const SP = { clientId: "a1111111-1111-4111-8111-111111111111", clientSecret: "interop-sp-secret" };
export const NO_ACCESS = { clientId: "a2222222-2222-4222-8222-222222222222", clientSecret: "interop-no-access" };
export const WI_APP = "a3333333-3333-4333-8333-333333333333";
/** A managed identity with an identity binding for POD's service account. */
export const IB_APP = "a6666666-6666-4666-8666-666666666666";
export const UAMI = "a4444444-4444-4444-8444-444444444444";
export const SYSTEM_MI = "a5555555-5555-4555-8555-555555555555";
export const POD = { name: "app-0", namespace: "interop", serviceAccount: "app", uid: "0b1c2d3e-0000-4000-8000-00000000a11e" };

/** The provider flags that change what a mount returns, in every combination. */
export const FLAG_SETTINGS = [
  { id: "defaults", flags: [] as string[], title: "defaults (--construct-pem-chain=true, --write-cert-and-key-in-separate-files=false)" },
  { id: "no-chain", flags: ["--construct-pem-chain=false"], title: "--construct-pem-chain=false" },
  { id: "separate", flags: ["--write-cert-and-key-in-separate-files=true"], title: "--write-cert-and-key-in-separate-files=true" },
  {
    id: "no-chain+separate",
    flags: ["--construct-pem-chain=false", "--write-cert-and-key-in-separate-files=true"],
    title: "--construct-pem-chain=false --write-cert-and-key-in-separate-files=true",
  },
] as const;
export type FlagSettingId = (typeof FLAG_SETTINGS)[number]["id"];

const SECRET_VALUES = ["one", "two", "three", "four", "five"];

function seedDocument(): SeedDocument {
  const pki = makePki();
  const pem = (type: "rsa" | "ec", opts: object) =>
    (generateKeyPairSync as (t: string, o: object) => { privateKey: { export(o: object): string | Buffer } })(type, opts).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const base = Math.floor(Date.now() / 1000) - 7200;
  const all = [{ vault: "*", permissions: ["all"] }];
  return {
    vaults: [
      {
        name: VAULT,
        secrets: [
          { name: "s-plain", value: "héllo wörld\nline two" },
          { name: "s-hex", value: randomBytes(48).toString("hex") },
          { name: "s-b64", value: randomBytes(300).toString("base64") },
          { name: "s-text", value: "neither hex nor base64!" },
          { name: "s-padded", value: "  padded value \n" },
          { name: "s-multi", versions: SECRET_VALUES.map((value, i) => ({ value, created: base + i * 10, enabled: i !== 3 })) },
          { name: "s-disabled", versions: [{ value: "old", created: base }, { value: "new", created: base + 10, enabled: false }] },
          // for the extensions beyond upstream: patterns, objectTags, optional
          { name: "ext-a", value: "gold value", tags: { tier: "gold" } },
          { name: "ext-b", value: "silver value", tags: { tier: "silver" } },
          { name: "ext-off", value: "off", tags: { tier: "gold" }, enabled: false },
        ],
        keys: [
          { name: "key-rsa", kty: "RSA", pem: pem("rsa", { modulusLength: 2048 }) },
          { name: "key-rsa-hsm", kty: "RSA-HSM", pem: pem("rsa", { modulusLength: 3072 }) },
          { name: "key-p256", kty: "EC", pem: pem("ec", { namedCurve: "P-256" }) },
          { name: "key-p384", kty: "EC-HSM", pem: pem("ec", { namedCurve: "P-384" }) },
          { name: "key-p521", kty: "EC", pem: pem("ec", { namedCurve: "P-521" }) },
          { name: "key-multi", versions: [0, 1, 2].map((i) => ({ kty: "RSA", keySize: 2048, created: base + i * 10 })) },
        ],
        certificates: [
          { name: "cert-pfx", pfx: pki.pfxLegacy.toString("base64"), contentType: "application/x-pkcs12" },
          { name: "cert-ec", pfx: pki.ecPfx.toString("base64"), contentType: "application/x-pkcs12" },
          { name: "cert-pem", pem: pki.leafKeyPkcs8 + pki.leafPem + pki.intermediatePem + pki.rootPem, contentType: "application/x-pem-file" },
          { name: "cert-unrelated", pfx: pki.pfxUnrelated.toString("base64"), contentType: "application/x-pkcs12" },
          { name: "cert-generated-chain", issuer: "chain", subject: "CN=chain.interop.example" },
          { name: "cert-multi", versions: [0, 1, 2].map((i) => ({ subject: `CN=multi-${i}.interop.example`, created: base + i * 10 })) },
        ],
      },
      { name: GOV_VAULT, secrets: [{ name: "s-gov", value: "from the US Government cloud" }] },
    ],
    applications: [
      { name: "interop-sp", clientId: SP.clientId, clientSecret: SP.clientSecret, roleAssignments: all },
      { name: "interop-no-access", clientId: NO_ACCESS.clientId, clientSecret: NO_ACCESS.clientSecret },
      {
        name: "interop-wi",
        clientId: WI_APP,
        federatedCredentials: [{ issuer: EMULATOR_SERVICE_ACCOUNT_ISSUER, subject: `system:serviceaccount:${POD.namespace}:${POD.serviceAccount}` }],
        roleAssignments: all,
      },
      {
        name: "interop-identity-binding",
        clientId: IB_APP,
        federatedCredentials: [
          { issuer: EMULATOR_SERVICE_ACCOUNT_ISSUER, subject: `system:serviceaccount:${POD.namespace}:${POD.serviceAccount}`, audiences: [IDENTITY_BINDING_AUDIENCE] },
        ],
        roleAssignments: all,
      },
    ],
    managedIdentities: [
      { name: "interop-uami", clientId: UAMI, roleAssignments: all },
      { name: "interop-system", clientId: SYSTEM_MI, systemAssigned: true, roleAssignments: all },
    ],
  };
}

export interface ProviderPair {
  setting: (typeof FLAG_SETTINGS)[number];
  upstream: UpstreamProvider;
  ours: RunningProvider;
}

export interface World {
  emulator: Emulator;
  address: string;
  pairs: ProviderPair[];
  /** Version ids of an object, oldest first. */
  versions(collection: "secrets" | "keys" | "certificates", name: string): Promise<string[]>;
  /** A workload-identity token for POD's service account (or one for another audience). */
  serviceAccountToken(audience?: string): string;
  stop(): Promise<void>;
}

export interface WorldOptions {
  /** Which flag settings get a provider pair (default: all). */
  settings?: readonly FlagSettingId[];
}

export async function startWorld(options: WorldOptions = {}): Promise<World> {
  const { emulator, address } = await startTestEmulator(seedDocument());
  const stoppers: Array<() => Promise<void>> = [() => emulator.close()];
  const stop = async () => {
    await Promise.allSettled(stoppers.reverse().map((s) => s()));
  };
  try {
    const vaultHosts = [`${VAULT}.vault.azure.net`, `${GOV_VAULT}.vault.usgovcloudapi.net`, `${GOV_VAULT}.vault.azure.net`];
    const settings = FLAG_SETTINGS.filter((s) => !options.settings || options.settings.includes(s.id));
    const pairs = await Promise.all(
      settings.map(async (setting) => {
        const [upstream, ours] = await Promise.all([
          startUpstreamProvider(emulator, { vaultHosts, flags: [...setting.flags] }),
          // the cluster CA, and the API server's port, as a pod has them
          startProvider(emulator, address, [...setting.flags, `--token-proxy-ca-file=${emulator.caCertPath}`], { KUBERNETES_SERVICE_PORT: "443" }),
        ]);
        stoppers.push(() => upstream.stop(), () => ours.stop());
        return { setting, upstream, ours };
      }),
    );
    const versionCache = new Map<string, Promise<string[]>>();
    return {
      emulator,
      address,
      pairs,
      versions(collection, name) {
        const key = `${collection}/${name}`;
        let cached = versionCache.get(key);
        if (!cached) {
          cached = (async () => {
            const list = (await rawKeyVaultGet(emulator, address, SP, VAULT, `/${collection}/${name}/versions`)) as {
              value: Array<{ id?: string; kid?: string; attributes: { created: number } }>;
            };
            return list.value
              .sort((a, b) => a.attributes.created - b.attributes.created)
              .map((item) => String(item.id ?? item.kid).split("/").pop()!);
          })();
          versionCache.set(key, cached);
        }
        return cached;
      },
      serviceAccountToken: (audience) => emulator.issueServiceAccountToken({ namespace: POD.namespace, serviceAccount: POD.serviceAccount, audience }),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

export type { ProviderClient };
