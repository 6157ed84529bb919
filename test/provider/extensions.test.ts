// This provider's extensions beyond upstream, through the provider program's
// socket with the real Azure SDK against the emulator over HTTPS: objects
// chosen by pattern or tag (one list per object type per mount, the matches
// read like named objects, bounded, each with its own object version) and
// optional objects (left out when Key Vault does not have them or has them
// disabled, reported with a missing version; every other failure still
// fails the mount). Vault changes between mounts go through the SDK.
import { status } from "@grpc/grpc-js";
import { CertificateClient } from "@azure/keyvault-certificates";
import { SecretClient } from "@azure/keyvault-secrets";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator, SeedDocument } from "../../src/emulator/index.ts";
import { clientOptions, secretCredential } from "../emulator/helpers.ts";
import { objectsYaml, type MountResponse } from "./client.ts";
import { rawKeyVaultGet, startProvider, startTestEmulator, type RunningProvider } from "./env.ts";
import { makePki } from "./pki.ts";
import { podAttributes } from "./seed.ts";

const VAULT = "kv-ext";
const SP = { clientId: "71111111-1111-4111-8111-111111111111", clientSecret: "ext-sp-secret" };
/** May read secrets by name, but not list them. */
const GETTER = { clientId: "72222222-2222-4222-8222-222222222222", clientSecret: "ext-getter-secret" };
/** Has access to keys only. */
const KEYS_ONLY = { clientId: "73333333-3333-4333-8333-333333333333", clientSecret: "ext-keys-secret" };

function seed(): SeedDocument {
  const pki = makePki();
  return {
    vaults: [
      // more objects than a pattern lists (keyvault.ts MAX_LISTED_OBJECTS)
      { name: "kv-huge", secrets: Array.from({ length: 10_001 }, (_, i) => ({ name: `h-${i}`, value: "x" })) },
      {
        name: VAULT,
        secrets: [
          { name: "fe-1", value: "one", tags: { env: "prod", team: "a" } },
          { name: "fe-2", value: "two", tags: { env: "prod" } },
          { name: "fe-3", value: "three", tags: { env: "dev" } },
          { name: "fe-off", value: "off", tags: { env: "prod" }, enabled: false },
          { name: "be-1", value: "backend" },
          { name: "plain", value: "plain value", tags: { env: "prod" } },
          ...Array.from({ length: 12 }, (_, i) => ({ name: `many-${i}`, value: `m${i}` })),
        ],
        keys: [
          { name: "fe-key", kty: "RSA", keySize: 2048, tags: { env: "prod" } },
          { name: "be-key", kty: "RSA", keySize: 2048 },
        ],
        certificates: [{ name: "fe-cert", pfx: pki.pfxLegacy.toString("base64"), contentType: "application/x-pkcs12", tags: { env: "prod" } }],
      },
    ],
    applications: [
      { name: "sp", clientId: SP.clientId, clientSecret: SP.clientSecret, roleAssignments: [{ vault: "*", permissions: ["all"] }] },
      { name: "getter", clientId: GETTER.clientId, clientSecret: GETTER.clientSecret, roleAssignments: [{ vault: "*", permissions: ["Microsoft.KeyVault/vaults/secrets/getSecret/action"] }] },
      { name: "keys-only", clientId: KEYS_ONLY.clientId, clientSecret: KEYS_ONLY.clientSecret, roleAssignments: [{ vault: "*", permissions: ["keys"] }] },
    ],
  } as SeedDocument;
}

let emulator: Emulator;
let address: string;
let provider: RunningProvider;
let narrow: RunningProvider;
let secrets: SecretClient;
let certificates: CertificateClient;

beforeAll(async () => {
  ({ emulator, address } = await startTestEmulator(seed()));
  [provider, narrow] = await Promise.all([startProvider(emulator, address), startProvider(emulator, address, ["--max-objects-per-mount=12", "--max-files-per-mount=12"])]);
  // the test's own SDK clients reach the emulator through the DNS hook
  process.env.SSCSI_EMULATOR_ADDRESS = address;
  await import("../../src/emulator/dns-hook.ts");
  const credential = secretCredential(emulator, { clientId: SP.clientId, secret: SP.clientSecret });
  secrets = new SecretClient(emulator.vaultUrl(VAULT), credential, clientOptions(emulator));
  certificates = new CertificateClient(emulator.vaultUrl(VAULT), credential, clientOptions(emulator));
}, 120_000);

afterAll(async () => {
  await Promise.all([provider?.stop(), narrow?.stop()]);
  await emulator?.close();
});

type Obj = Record<string, string | number>;
const attributes = (objects: Obj[]) => podAttributes({ keyvaultName: VAULT, tenantID: emulator.tenantId, objects: objectsYaml(objects) });
const as = (app: { clientId: string; clientSecret: string }) => ({ clientid: app.clientId, clientsecret: app.clientSecret });

function mount(objects: Obj[], p = provider, app = SP): Promise<MountResponse> {
  return p.client.mount({ attributes: attributes(objects), secrets: as(app) });
}
function mountError(objects: Obj[], p = provider, app = SP) {
  return p.client.mountError({ attributes: attributes(objects), secrets: as(app) });
}
const files = (res: MountResponse) => Object.fromEntries(res.files.map((f) => [f.path, Buffer.from(f.contents).toString()]));
const counter = (name: string) => emulator.counters()[name] ?? 0;

async function currentVersion(collection: "secrets" | "keys" | "certificates", name: string): Promise<string> {
  const bundle = (await rawKeyVaultGet(emulator, address, SP, VAULT, `/${collection}/${name}/`)) as { id?: string; key?: { kid: string } };
  return String(bundle.key?.kid ?? bundle.id).split("/").pop()!;
}

describe("objects chosen by pattern or tag", () => {
  it("a pattern mounts every enabled object of its type that matches, across types, with every match's object version", async () => {
    const res = await mount([
      { objectName: "fe-*", objectType: "secret" },
      { objectName: "fe-???", objectType: "key" },
      { objectName: "FE-*", objectType: "cert" },
    ]);
    // secrets: not fe-off (disabled), not fe-cert (the certificate's own secret); keys: not fe-cert's key
    expect(res.files.map((f) => f.path)).toEqual(["fe-1", "fe-2", "fe-3", "fe-key", "fe-cert"]);
    expect(files(res)).toMatchObject({ "fe-1": "one", "fe-2": "two", "fe-3": "three" });
    expect(files(res)["fe-key"]).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(files(res)["fe-cert"]).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(res.files.every((f) => f.mode === 0o644)).toBe(true);
    expect(res.object_version).toEqual([
      { id: "secret/fe-1", version: await currentVersion("secrets", "fe-1") },
      { id: "secret/fe-2", version: await currentVersion("secrets", "fe-2") },
      { id: "secret/fe-3", version: await currentVersion("secrets", "fe-3") },
      { id: "key/fe-key", version: await currentVersion("keys", "fe-key") },
      { id: "cert/fe-cert", version: await currentVersion("certificates", "fe-cert") },
    ]);
  });

  it("objectTags keeps the matches carrying every tag; an alias is the prefix of each match's file; the list order is kept", async () => {
    const res = await mount([
      { objectName: "plain", objectType: "secret" },
      { objectName: "fe-*", objectType: "secret", objectTags: "env=prod", objectAlias: "frontend/", filePermission: "0440" },
      { objectName: "*", objectType: "secret", objectTags: "env=prod, team=a", objectAlias: "team-a-" },
    ]);
    expect(res.files.map((f) => [f.path, f.mode])).toEqual([
      ["plain", 0o644],
      ["frontend/fe-1", 0o440],
      ["frontend/fe-2", 0o440],
      ["team-a-fe-1", 0o644],
    ]);
    expect(res.object_version.map((v) => v.id)).toEqual(["secret/plain", "secret/fe-1", "secret/fe-2", "secret/fe-1"]);
  });

  it("objectTags on a plain objectName checks the object's tags", async () => {
    expect(files(await mount([{ objectName: "plain", objectType: "secret", objectTags: "env=prod" }]))).toEqual({ plain: "plain value" });
    const err = await mountError([{ objectName: "plain", objectType: "secret", objectTags: "env=dev" }]);
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toBe(
      'failed to mount objects, error: failed to get objectType:secret, objectName:plain, objectVersion:: key vault "kv-ext": secret plain does not carry the tags objectTags asks for (env=dev)',
    );
  });

  it("a certificate's secret is mounted when objectType secret names it, never as a pattern's match", async () => {
    const res = await mount([{ objectName: "fe-cert", objectType: "secret" }]);
    expect(files(res)["fe-cert"]).toMatch(/-----BEGIN PRIVATE KEY-----/);
  });

  it("a pattern that matches nothing fails the mount, saying so", async () => {
    const none = await mountError([{ objectName: "zz-*", objectType: "secret" }]);
    expect(none.code).toBe(status.NOT_FOUND);
    expect(none.details).toBe(
      'failed to mount objects, error: failed to get objectType:secret, objectName:zz-*, objectVersion:: no enabled secrets of key vault "kv-ext" match the objectName pattern "zz-*"',
    );
    const tagged = await mountError([{ objectName: "fe-*", objectType: "secret", objectTags: "env=staging" }]);
    expect(tagged.details).toContain('match the objectName pattern "fe-*" with the tags env=staging');
  });

  it("too many matches are refused before any is read, naming the pattern and the count", async () => {
    const before = counter("getSecret");
    const err = await mountError([{ objectName: "plain", objectType: "secret" }, { objectName: "many-*", objectType: "secret" }], narrow);
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe(
      'failed to mount objects, error: the objectName pattern "many-*" (objects[1]) matches 12 objects of type secret: with the others that makes 13 objects, ' +
        "more than the 12 this provider reads in one mount (--max-objects-per-mount); narrow the pattern or add objectTags",
    );
    expect(counter("getSecret")).toBe(before);
    // within --max-objects-per-mount, past --max-files-per-mount (12 files, history counted N+1)
    const files = await mountError([{ objectName: "many-?", objectType: "secret" }, { objectName: "plain", objectType: "secret", objectVersionHistory: 3 }], narrow);
    expect(files.details).toMatch(/the objectName pattern "many-\?" \(objects\[0\]\) matches 10 objects of type secret: objects would give up to 14 files.*--max-files-per-mount/);
  });

  it("lists each object type once per mount, and only the matches are read", async () => {
    emulator.resetCounters();
    await mount([
      { objectName: "fe-*", objectType: "secret" },
      { objectName: "*-1", objectType: "secret", objectAlias: "ones/" },
      { objectName: "be-*", objectType: "key" },
    ]);
    expect(counter("listSecrets")).toBe(1);
    expect(counter("listKeys")).toBe(1);
    expect(counter("listCertificates")).toBe(0);
    // fe-1, fe-2, fe-3 and be-1, fe-1 again (its read shared when in flight together); one key
    expect(counter("getSecret")).toBeGreaterThanOrEqual(4);
    expect(counter("getSecret")).toBeLessThanOrEqual(5);
    expect(counter("getKey")).toBe(1);
    // the lists are counted as what they are
    const metrics = await provider.metrics();
    expect(metrics).toMatch(/keyvault_http_requests_total\{vault="kv-ext",operation="list_secrets",status_code="200"\} [1-9]/);
    expect(metrics).toMatch(/keyvault_request_duration_seconds_count\{operation="list",object_type="key",result="ok"\} [1-9]/);
  });

  it("a pattern refuses objectVersion and objectVersionHistory, and a prefix that is not a clean path", async () => {
    for (const [extra, text] of [
      [{ objectVersion: "0123456789abcdef0123456789abcdef" }, 'objectVersion cannot be given with the objectName pattern "fe-*"'],
      [{ objectVersionHistory: 2 }, 'objectVersionHistory cannot be given with the objectName pattern "fe-*"'],
      [{ objectAlias: "./x/" }, 'objectAlias "./x/" is the prefix of every match\'s file and must be a clean path ("dir/", "dir/name-"): write "x/"'],
    ] as const) {
      const err = await mountError([{ objectName: "fe-*", objectType: "secret", ...extra }]);
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toContain(text);
    }
    const tags = await mountError([{ objectName: "fe-1", objectType: "secret", objectTags: "env" }]);
    expect(tags.details).toContain('objectTags "env" is not a list of name=value pairs separated by commas');
  });

  it("without the list permission: PermissionDenied naming the permission and the pattern (reads by name still work)", async () => {
    expect(files(await mount([{ objectName: "fe-1", objectType: "secret" }], provider, GETTER))).toEqual({ "fe-1": "one" });
    const err = await mountError([{ objectName: "fe-*", objectType: "secret" }], provider, GETTER);
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toMatch(
      /^failed to mount objects, error: failed to get objectType:secret, objectName:fe-\*, objectVersion:: listing the secrets of key vault "kv-ext" for the objectName pattern "fe-\*" was refused: the identity needs the access policy permission "List" on secrets, or the RBAC data action Microsoft\.KeyVault\/vaults\/secrets\/readMetadata\/action \(role Key Vault Secrets User\): key vault "kv-ext" .*Forbidden \(HTTP 403\)/,
    );
  });

  it("a vault holding more objects than a pattern lists is refused, naming the bound, after at most 401 pages", async () => {
    emulator.resetCounters();
    const err = await provider.client.mountError({
      attributes: podAttributes({ keyvaultName: "kv-huge", tenantID: emulator.tenantId, objects: objectsYaml([{ objectName: "h-1", objectType: "secret" }, { objectName: "h-1?", objectType: "secret" }]) }),
      secrets: as(SP),
    });
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.details).toBe(
      'failed to mount objects, error: failed to get objectType:secret, objectName:h-1?, objectVersion:: key vault "kv-huge" holds more than 10000 objects of type secret, more than an objectName pattern lists: name the objects instead',
    );
    expect(counter("listSecrets")).toBeLessThanOrEqual(401);
    expect(counter("getSecret")).toBeLessThanOrEqual(1);
  });

  it("a new match appears and a deleted or disabled one disappears on the next mount", async () => {
    const pattern = [{ objectName: "rot-*", objectType: "secret" }];
    await secrets.setSecret("rot-a", "a");
    await secrets.setSecret("rot-b", "b");
    expect(Object.keys(files(await mount(pattern)))).toEqual(["rot-a", "rot-b"]);
    await secrets.setSecret("rot-c", "c");
    await (await secrets.beginDeleteSecret("rot-a")).pollUntilDone();
    const b = await secrets.getSecret("rot-b");
    await secrets.updateSecretProperties("rot-b", b.properties.version!, { enabled: false });
    const res = await mount(pattern);
    expect(files(res)).toEqual({ "rot-c": "c" });
    expect(res.object_version.map((v) => v.id)).toEqual(["secret/rot-c"]);
  });
});

describe("optional objects", () => {
  it("an object Key Vault does not have is left out: the mount succeeds, its version says missing, one log line", async () => {
    const res = await mount([
      { objectName: "plain", objectType: "secret" },
      { objectName: "nope", objectType: "secret", optional: "true", objectAlias: "config/nope.txt" },
      { objectName: "no-key", objectType: "key", optional: "true" },
      { objectName: "no-cert", objectType: "cert", optional: "true" },
    ]);
    expect(files(res)).toEqual({ plain: "plain value" });
    expect(res.object_version).toEqual([
      { id: "secret/plain", version: await currentVersion("secrets", "plain") },
      { id: "secret/nope", version: "(missing) config/nope.txt" },
      { id: "key/no-key", version: "(missing) no-key" },
      { id: "cert/no-cert", version: "(missing) no-cert" },
    ]);
    const lines = provider.output().split("\n").filter((l) => l.includes("optional object left out") && l.includes('"objectName":"nope"'));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "warn", vault: VAULT, objectType: "secret", objectName: "nope" });
    expect(lines[0]).toMatch(/SecretNotFound/);
  });

  it("a disabled object is left out; once created and enabled, the next mount has it", async () => {
    const objects = [{ objectName: "later", objectType: "secret", optional: "true" }, { objectName: "fe-off", objectType: "secret", optional: "true" }];
    expect((await mount(objects)).object_version).toEqual([
      { id: "secret/later", version: "(missing) later" },
      { id: "secret/fe-off", version: "(missing) fe-off" },
    ]);
    expect(provider.output()).toMatch(/"objectName":"fe-off".*Operation get is not allowed on a disabled secret/);
    const created = await secrets.setSecret("later", "here now");
    const res = await mount(objects);
    expect(files(res)).toEqual({ later: "here now" });
    expect(res.object_version[0]).toEqual({ id: "secret/later", version: created.properties.version });
  });

  it("a disabled certificate (which Key Vault still answers for) is left out when optional", async () => {
    await certificates.beginCreateCertificate("cert-off", { issuerName: "Self", subject: "CN=off.example" }).then((p) => p.pollUntilDone());
    const cert = await certificates.getCertificate("cert-off");
    await certificates.updateCertificateProperties("cert-off", cert.properties.version!, { enabled: false });
    expect((await mount([{ objectName: "cert-off", objectType: "cert", optional: "true" }])).object_version).toEqual([{ id: "cert/cert-off", version: "(missing) cert-off" }]);
  });

  it("an optional pattern that matches nothing is reported missing without a file name", async () => {
    const res = await mount([{ objectName: "plain", objectType: "secret" }, { objectName: "zz-*", objectType: "secret", optional: "true" }]);
    expect(res.files.map((f) => f.path)).toEqual(["plain"]);
    expect(res.object_version[1]).toEqual({ id: "secret/zz-*", version: "(missing)" });
  });

  it("any other failure still fails the mount: permission denied, throttling, an unknown vault", async () => {
    const denied = await mountError([{ objectName: "plain", objectType: "secret", optional: "true" }], provider, KEYS_ONLY);
    expect(denied.code).toBe(status.PERMISSION_DENIED);
    expect(denied.details).toMatch(/objectName:plain.*Forbidden \(HTTP 403\)/);

    emulator.faults.add({ kind: "throttle", operation: "getSecret", vault: VAULT, durationMs: 20_000, retryAfterSeconds: 30 });
    try {
      const throttled = await provider.client.mountError({ attributes: attributes([{ objectName: "plain", objectType: "secret", optional: "true" }]), secrets: as(SP) }, 10_000);
      expect(throttled.code).toBe(status.UNAVAILABLE);
      expect(throttled.details).toMatch(/Throttled|429/);
    } finally {
      emulator.faults.clear();
    }

    const unknownVault = await provider.client.mountError({
      attributes: podAttributes({ keyvaultName: "kv-nowhere", tenantID: emulator.tenantId, objects: objectsYaml([{ objectName: "plain", objectType: "secret", optional: "true" }]) }),
      secrets: as(SP),
    });
    expect(unknownVault.code).toBe(status.NOT_FOUND);
    expect(unknownVault.details).toMatch(/kv-nowhere/);
  });

  it('optional takes the boolean words of the other parameters and refuses others', async () => {
    expect((await mount([{ objectName: "nope", objectType: "secret", optional: "True" }, { objectName: "plain", objectType: "secret", optional: "false" }])).files.map((f) => f.path)).toEqual(["plain"]);
    const err = await mountError([{ objectName: "plain", objectType: "secret", optional: "yes" }]);
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toContain('optional "yes" is neither "true" nor "false"');
  });
});
