// Every object type, encoding, format, alias, version pin and version history
// through the provider program's gRPC socket and the real Azure SDK against
// the emulator. Expected bytes come from the seeded material via openssl and
// node:crypto, or from Key Vault read directly over HTTPS.
import { createPublicKey, X509Certificate } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.ts";
import { objectsYaml, type MountResponse } from "./client.ts";
import { rawKeyVaultGet, startProvider, startTestEmulator, type RunningProvider } from "./env.ts";
import { makePki, type TestPki } from "./pki.ts";
import { makeMaterial, podAttributes, SP, type Material } from "./seed.ts";

let pki: TestPki;
let scratch: string;
let material: Material;
let emulator: Emulator;
let address: string;
let provider: RunningProvider;
let separate: RunningProvider;
let noChain: RunningProvider;

beforeAll(async () => {
  pki = makePki();
  scratch = mkdtempSync(join(tmpdir(), "provider-mount-"));
  material = makeMaterial(pki);
  ({ emulator, address } = await startTestEmulator(material.seed));
  [provider, separate, noChain] = await Promise.all([
    startProvider(emulator, address),
    startProvider(emulator, address, ["--write-cert-and-key-in-separate-files=true"]),
    startProvider(emulator, address, ["--construct-pem-chain=false"]),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all([provider?.stop(), separate?.stop(), noChain?.stop()]);
  await emulator?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

type Obj = Record<string, string | number>;

function mount(p: RunningProvider, objects: Obj[], permission = "420"): Promise<MountResponse> {
  return p.client.mount({
    attributes: podAttributes({ keyvaultName: "kv-main", tenantID: emulator.tenantId, objects: objectsYaml(objects) }),
    secrets: { clientid: SP.clientId, clientsecret: SP.clientSecret },
    permission,
  });
}

const raw = (path: string) => rawKeyVaultGet(emulator, address, SP, "kv-main", path) as Promise<Record<string, unknown>>;
const versionOf = (id: unknown) => String(id).split("/").pop()!;
async function latest(collection: "secrets" | "keys" | "certificates", name: string): Promise<{ version: string; value?: string }> {
  const bundle = await raw(`/${collection}/${name}/`);
  const id = collection === "keys" ? (bundle.key as { kid: string }).kid : (bundle.id as string);
  return { version: versionOf(id), value: bundle.value as string | undefined };
}

/** openssl's view of a PFX: the private key (PKCS#8 PEM) and the certificates, in bag order. */
function opensslPfx(pfx: Buffer): { key: string; certs: string[] } {
  const path = join(scratch, `out-${Math.random()}.pfx`);
  writeFileSync(path, pfx);
  const keyText = execFileSync("openssl", ["pkcs12", "-in", path, "-nocerts", "-nodes", "-passin", "pass:"], { stdio: ["pipe", "pipe", "pipe"] }).toString();
  const key = execFileSync("openssl", ["pkey"], { input: keyText }).toString();
  const certText = execFileSync("openssl", ["pkcs12", "-in", path, "-nokeys", "-passin", "pass:"], { stdio: ["pipe", "pipe", "pipe"] }).toString();
  const certs = (certText.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/g) ?? []).map((c) => execFileSync("openssl", ["x509"], { input: c }).toString());
  return { key, certs };
}

const spki = (pem: string) => createPublicKey(pem).export({ type: "spki", format: "pem" }).toString();

interface Row {
  name: string;
  objects: Obj[];
  provider?: () => RunningProvider;
  permission?: string;
  /** Expected files (path → bytes), modes and object versions. */
  expect: () => Promise<{ files: Array<{ path: string; contents: Buffer | string; mode?: number }>; versions: Array<{ id: string; version: string }> }>;
}

const rows: Row[] = [
  {
    name: "secret, utf-8 (default)",
    objects: [{ objectName: "s-utf8", objectType: "secret" }],
    expect: async () => ({ files: [{ path: "s-utf8", contents: Buffer.from(material.utf8, "utf8"), mode: 0o644 }], versions: [{ id: "secret/s-utf8", version: (await latest("secrets", "s-utf8")).version }] }),
  },
  {
    name: "secret, objectEncoding hex",
    objects: [{ objectName: "s-hex", objectType: "secret", objectEncoding: "hex" }],
    expect: async () => ({ files: [{ path: "s-hex", contents: material.hexBytes }], versions: [{ id: "secret/s-hex", version: (await latest("secrets", "s-hex")).version }] }),
  },
  {
    name: "secret, objectEncoding base64 (case-insensitive), alias in a sub-directory, filePermission",
    objects: [{ objectName: "s-b64", objectType: "secret", objectEncoding: "Base64", objectAlias: "dir/blob.bin", filePermission: "0600" }],
    expect: async () => ({ files: [{ path: "dir/blob.bin", contents: material.b64Bytes, mode: 0o600 }], versions: [{ id: "secret/s-b64", version: (await latest("secrets", "s-b64")).version }] }),
  },
  {
    name: "request permission as the default mode",
    objects: [{ objectName: "s-utf8", objectType: "secret" }],
    permission: "256",
    expect: async () => ({ files: [{ path: "s-utf8", contents: Buffer.from(material.utf8), mode: 0o400 }], versions: [{ id: "secret/s-utf8", version: (await latest("secrets", "s-utf8")).version }] }),
  },
  {
    name: "certificate secret (PKCS#12) → PEM: key, then leaf → intermediate → root",
    objects: [{ objectName: "cert-pfx", objectType: "secret" }],
    expect: async () => ({
      files: [{ path: "cert-pfx", contents: pki.leafKeyPkcs8 + pki.leafPem + pki.intermediatePem + pki.rootPem }],
      versions: [{ id: "secret/cert-pfx", version: (await latest("secrets", "cert-pfx")).version }],
    }),
  },
  {
    name: "EC certificate secret → PEM",
    objects: [{ objectName: "cert-ec", objectType: "secret", objectFormat: "PEM" }],
    expect: async () => ({
      files: [{ path: "cert-ec", contents: pki.ecLeafKeyPkcs8 + pki.ecLeafPem + pki.intermediatePem + pki.rootPem }],
      versions: [{ id: "secret/cert-ec", version: (await latest("secrets", "cert-ec")).version }],
    }),
  },
  {
    name: "certificate secret, objectFormat pfx: the base64 text as stored",
    objects: [{ objectName: "cert-pfx", objectType: "secret", objectFormat: "pfx", objectAlias: "bundle.pfx.b64" }],
    expect: async () => {
      const stored = await latest("secrets", "cert-pfx");
      const pfx = opensslPfx(Buffer.from(stored.value!, "base64"));
      expect(pfx.key).toBe(pki.leafKeyPkcs8);
      expect([...pfx.certs].sort()).toEqual([pki.leafPem, pki.intermediatePem, pki.rootPem].sort());
      return { files: [{ path: "bundle.pfx.b64", contents: stored.value! }], versions: [{ id: "secret/cert-pfx", version: stored.version }] };
    },
  },
  {
    name: "certificate secret, objectFormat pfx + objectEncoding base64: binary PFX",
    objects: [{ objectName: "cert-pfx", objectType: "secret", objectFormat: "pfx", objectEncoding: "base64", objectAlias: "bundle.pfx" }],
    expect: async () => {
      const stored = await latest("secrets", "cert-pfx");
      return { files: [{ path: "bundle.pfx", contents: Buffer.from(stored.value!, "base64") }], versions: [{ id: "secret/cert-pfx", version: stored.version }] };
    },
  },
  {
    name: "certificate secret (application/x-pem-file) verbatim",
    objects: [{ objectName: "cert-pem", objectType: "secret" }],
    expect: async () => {
      const stored = await latest("secrets", "cert-pem");
      expect(stored.value).toContain(pki.leafPem.trim());
      return { files: [{ path: "cert-pem", contents: stored.value! }], versions: [{ id: "secret/cert-pem", version: stored.version }] };
    },
  },
  ...["key-rsa", "key-rsa-hsm", "key-p256", "key-p384", "key-p521"].map(
    (name): Row => ({
      name: `key ${name} → public key PEM`,
      objects: [{ objectName: name, objectType: "key" }],
      expect: async () => ({ files: [{ path: name, contents: spki(material.keys[name]!) }], versions: [{ id: `key/${name}`, version: (await latest("keys", name)).version }] }),
    }),
  ),
  {
    name: "cert → leaf certificate PEM only; key of a certificate → its public key",
    objects: [
      { objectName: "cert-pfx", objectType: "cert", objectAlias: "tls.crt" },
      { objectName: "cert-pfx", objectType: "key", objectAlias: "tls.pub" },
      { objectName: "cert-ec", objectType: "cert" },
    ],
    expect: async () => ({
      files: [
        { path: "tls.crt", contents: pki.leafPem },
        { path: "tls.pub", contents: new X509Certificate(pki.leafPem).publicKey.export({ type: "spki", format: "pem" }).toString() },
        { path: "cert-ec", contents: pki.ecLeafPem },
      ],
      versions: [
        { id: "cert/cert-pfx", version: (await latest("certificates", "cert-pfx")).version },
        { id: "key/cert-pfx", version: (await latest("keys", "cert-pfx")).version },
        { id: "cert/cert-ec", version: (await latest("certificates", "cert-ec")).version },
      ],
    }),
  },
  {
    name: "pinned objectVersion reads that version",
    objects: [], // filled in by the test from the versions list
    expect: async () => ({ files: [], versions: [] }),
  },
  {
    name: "--write-cert-and-key-in-separate-files: .crt, .key, then the bundle",
    provider: () => separate,
    objects: [{ objectName: "cert-pfx", objectType: "secret", objectAlias: "tls" }, { objectName: "s-utf8", objectType: "secret" }],
    expect: async () => {
      const version = (await latest("secrets", "cert-pfx")).version;
      return {
        files: [
          { path: "tls.crt", contents: pki.leafPem + pki.intermediatePem + pki.rootPem },
          { path: "tls.key", contents: pki.leafKeyPkcs8 },
          { path: "tls", contents: pki.leafKeyPkcs8 + pki.leafPem + pki.intermediatePem + pki.rootPem },
          { path: "s-utf8", contents: Buffer.from(material.utf8) },
        ],
        versions: [
          { id: "secret/cert-pfx", version },
          { id: "secret/cert-pfx", version },
          { id: "secret/cert-pfx", version },
          { id: "secret/s-utf8", version: (await latest("secrets", "s-utf8")).version },
        ],
      };
    },
  },
  {
    name: "--construct-pem-chain=false keeps the stored PFX order",
    provider: () => noChain,
    objects: [{ objectName: "cert-pfx", objectType: "secret" }],
    expect: async () => {
      const stored = await latest("secrets", "cert-pfx");
      const { certs } = opensslPfx(Buffer.from(stored.value!, "base64"));
      return { files: [{ path: "cert-pfx", contents: pki.leafKeyPkcs8 + certs.join("") }], versions: [{ id: "secret/cert-pfx", version: stored.version }] };
    },
  },
];

function check(res: MountResponse, expected: Awaited<ReturnType<Row["expect"]>>) {
  expect(res.files.map((f) => f.path)).toEqual(expected.files.map((f) => f.path));
  expected.files.forEach((f, i) => {
    const got = res.files[i]!;
    const want = typeof f.contents === "string" ? Buffer.from(f.contents) : f.contents;
    expect(Buffer.compare(Buffer.from(got.contents), want), `contents of ${f.path}`).toBe(0);
    if (f.mode !== undefined) expect(got.mode, `mode of ${f.path}`).toBe(f.mode);
  });
  expect(res.object_version).toEqual(expected.versions);
}

describe("objects through the provider socket", () => {
  for (const row of rows) {
    if (row.name.startsWith("pinned")) continue;
    it(row.name, async () => {
      const res = await mount(row.provider?.() ?? provider, row.objects, row.permission);
      check(res, await row.expect());
    });
  }

  it("pinned objectVersion reads that version (secret, key, cert)", async () => {
    const list = (await raw("/secrets/s-multi/versions")) as { value: Array<{ id: string; attributes: { created: number; enabled: boolean } }> };
    const byAge = list.value.sort((a, b) => a.attributes.created - b.attributes.created);
    const second = versionOf(byAge[1]!.id);
    const certVersion = (await latest("certificates", "cert-pfx")).version;
    const res = await mount(provider, [
      { objectName: "s-multi", objectType: "secret", objectVersion: second },
      { objectName: "cert-pfx", objectType: "cert", objectVersion: certVersion, objectAlias: "pinned.crt" },
    ]);
    check(res, {
      files: [
        { path: "s-multi", contents: material.multiValues[1]! },
        { path: "pinned.crt", contents: pki.leafPem },
      ],
      versions: [
        { id: "secret/s-multi", version: second },
        { id: "cert/cert-pfx", version: certVersion },
      ],
    });
  });

  it("objectVersionHistory N gives N+1 versions, newest first, disabled ones skipped (as upstream)", async () => {
    const list = (await raw("/secrets/s-multi/versions")) as { value: Array<{ id: string; attributes: { created: number; enabled: boolean } }> };
    // independent expectation: enabled versions, newest first
    const enabled = list.value.filter((v) => v.attributes.enabled).sort((a, b) => b.attributes.created - a.attributes.created);
    const valueOf: Record<string, string> = {};
    for (const v of enabled) valueOf[versionOf(v.id)] = (await raw(`/secrets/s-multi/${versionOf(v.id)}`)).value as string;
    expect(enabled.map((v) => valueOf[versionOf(v.id)])).toEqual(["five", "three", "two", "one"]);

    const res = await mount(provider, [{ objectName: "s-multi", objectType: "secret", objectVersionHistory: 2, objectAlias: "hist" }]);
    check(res, {
      files: [0, 1, 2].map((i) => ({ path: `hist/${i}`, contents: valueOf[versionOf(enabled[i]!.id)]! })),
      versions: [0, 1, 2].map((i) => ({ id: `secret/s-multi/${i}`, version: versionOf(enabled[i]!.id) })),
    });

    // starting at a pinned version; "latest" is the newest
    const pinned = await mount(provider, [
      { objectName: "s-multi", objectType: "secret", objectVersionHistory: 5, objectVersion: versionOf(enabled[1]!.id) },
      { objectName: "s-multi", objectType: "secret", objectVersionHistory: 2, objectVersion: "latest", objectAlias: "latest" },
    ]);
    check(pinned, {
      files: [
        { path: "s-multi/0", contents: "three" },
        { path: "s-multi/1", contents: "two" },
        { path: "s-multi/2", contents: "one" },
        { path: "latest/0", contents: "five" },
        { path: "latest/1", contents: "three" },
        { path: "latest/2", contents: "two" },
      ],
      versions: [
        { id: "secret/s-multi/0", version: versionOf(enabled[1]!.id) },
        { id: "secret/s-multi/1", version: versionOf(enabled[2]!.id) },
        { id: "secret/s-multi/2", version: versionOf(enabled[3]!.id) },
        { id: "secret/s-multi/0", version: versionOf(enabled[0]!.id) },
        { id: "secret/s-multi/1", version: versionOf(enabled[1]!.id) },
        { id: "secret/s-multi/2", version: versionOf(enabled[2]!.id) },
      ],
    });
  });

  it("history mode works for certificates and keys too", async () => {
    const res = await mount(provider, [
      { objectName: "cert-pfx", objectType: "cert", objectVersionHistory: 3, objectAlias: "c" },
      { objectName: "key-p256", objectType: "key", objectVersionHistory: 2, objectAlias: "k" },
    ]);
    check(res, {
      files: [
        { path: "c/0", contents: pki.leafPem },
        { path: "k/0", contents: spki(material.keys["key-p256"]!) },
      ],
      versions: [
        { id: "cert/cert-pfx/0", version: (await latest("certificates", "cert-pfx")).version },
        { id: "key/key-p256/0", version: (await latest("keys", "key-p256")).version },
      ],
    });
  });

  it("an unclean alias upstream's driver would refuse is written at its clean path, and the provider says so", async () => {
    const res = await mount(provider, [{ objectName: "s-utf8", objectType: "secret", objectAlias: "./dir//value" }]);
    expect(res.files.map((f) => f.path)).toEqual(["dir/value"]);
    expect(Buffer.from(res.files[0]!.contents).toString()).toBe(material.utf8);
    const warning = provider
      .output()
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { level: string; msg: string; index?: number })
      .find((entry) => entry.msg.startsWith('objectAlias "./dir//value" is written as "dir/value"'));
    expect(warning).toMatchObject({ level: "warn", index: 0 });
  });

  it("errors name the object and the vault, with the gRPC code kubelet reads", async () => {
    const err = await provider.client.mountError({
      attributes: podAttributes({ keyvaultName: "kv-main", tenantID: emulator.tenantId, objects: objectsYaml([{ objectName: "s-utf8", objectType: "secret" }, { objectName: "missing", objectType: "secret" }]) }),
      secrets: { clientid: SP.clientId, clientsecret: SP.clientSecret },
    });
    expect(err.code).toBe(5); // NOT_FOUND
    expect(err.details).toMatch(/^failed to mount objects, error: failed to get objectType:secret, objectName:missing, objectVersion:: key vault "kv-main" \(https:\/\/kv-main\.vault\.azure\.net\/\): SecretNotFound \(HTTP 404\): /);
    const conv = await provider.client.mountError({
      attributes: podAttributes({ keyvaultName: "kv-main", tenantID: emulator.tenantId, objects: objectsYaml([{ objectName: "s-utf8", objectType: "secret", objectEncoding: "base64" }]) }),
      secrets: { clientid: SP.clientId, clientsecret: SP.clientSecret },
    });
    expect(conv.code).toBe(3);
    expect(conv.details).toBe('failed to mount objects, error: failed to get objectType:secret, objectName:s-utf8, objectVersion:: key vault "kv-main": illegal base64 data at input byte 1');
  });

  it("health endpoint does a real gRPC check; metrics carry classes, not messages", async () => {
    const health = await fetch(`http://127.0.0.1:${provider.healthPort}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe("ok");
    const metrics = await provider.metrics();
    expect(metrics).toMatch(/keyvault_request_count\{service_name="csi-secrets-store-provider-azure",provider="azure",os_type="linux",object_type="secret",object_name="s-utf8",error=""\} \d+/);
    expect(metrics).toMatch(/keyvault_request_count\{[^}]*object_name="missing",error="SecretNotFound"\} 1/);
    expect(metrics).toMatch(/grpc_request_count\{[^}]*grpc_method="\/v1alpha1.CSIDriverProvider\/Mount",grpc_code="NotFound",grpc_message="SecretNotFound"\} 1/);
    expect(metrics).toMatch(/grpc_request_count\{[^}]*grpc_method="\/grpc.health.v1.Health\/Check",grpc_code="OK",grpc_message=""\}/);
    expect(metrics).toMatch(/keyvault_http_requests_total\{vault="kv-main",operation="get_secret",status_code="200"\} \d+/);
    expect(metrics).toContain("keyvault_request_duration_seconds_bucket");
    expect(metrics).toContain("grpc_request_duration_seconds_bucket");
    expect(metrics).not.toContain("was not found");
  });

  it("no secret value, client secret or token in the provider's output", () => {
    const out = provider.output() + separate.output() + noChain.output();
    expect(out.length).toBeGreaterThan(0);
    for (const secret of [material.utf8, SP.clientSecret, material.hexBytes.toString("hex"), "five", pki.leafKeyPkcs8.split("\n")[1]!]) {
      expect(out).not.toContain(secret);
    }
  });
});
