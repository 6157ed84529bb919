// Every validation rule, through the real gRPC socket: each bad parameter
// gives INVALID_ARGUMENT with the exact message (upstream's text where
// upstream has one), before any network I/O.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/shared/logger.ts";
import { ProviderMetrics } from "../../src/provider/metrics.ts";
import { NO_OBJECTS } from "../../src/provider/objects/parameters.ts";
import { ProviderServer } from "../../src/provider/server.ts";
import { objectsYaml, ProviderClient, serviceAccountToken, tokensAttribute } from "./client.ts";

const dir = mkdtempSync(join(tmpdir(), "provider-validation-"));
const logs: string[] = [];
let server: ProviderServer;
let client: ProviderClient;

beforeAll(async () => {
  const stream = new PassThrough();
  stream.on("data", (chunk: Buffer) => logs.push(chunk.toString()));
  server = new ProviderServer(
    {
      endpoint: `unix://${join(dir, "azure.sock")}`,
      cloudName: "AzurePublicCloud",
      constructPemChain: true,
      writeCertAndKeyInSeparateFiles: false,
      concurrency: 4,
      budgetRequests: 100,
      budgetWindowMs: 10_000,
    },
    createLogger({ name: "test", destination: stream }),
    new ProviderMetrics(),
  );
  await server.start();
  client = new ProviderClient(server.address);
});

afterAll(async () => {
  client.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

const SECRET = "s3cr3t-value-do-not-log";
const base = (): Record<string, string> => ({
  "csi.storage.k8s.io/pod.name": "pod-1",
  "csi.storage.k8s.io/pod.namespace": "ns1",
  "csi.storage.k8s.io/serviceAccount.name": "sa1",
  keyvaultName: "kv-valid",
  tenantID: "tenant-1",
  objects: objectsYaml([{ objectName: "s1", objectType: "secret" }]),
});
const sp = { clientid: "app-1", clientsecret: SECRET };
const P = "failed to mount objects, error: ";
const obj = (t: string, n: string, v = "") => `${P}failed to get objectType:${t}, objectName:${n}, objectVersion:${v}: `;

async function expectInvalid(attributes: Record<string, string>, message: string, secrets: Record<string, string> | null = sp, permission = "420") {
  const err = await client.mountError({ attributes, secrets, permission });
  expect(err.details).toBe(message);
  expect(err.code).toBe(status.INVALID_ARGUMENT);
}

const objects = (items: Array<Record<string, string | number>>) => ({ ...base(), objects: objectsYaml(items) });

describe("request envelope", () => {
  it("attributes, secrets and permission JSON", async () => {
    const err = await new Promise<{ details: string; code: number }>((resolve) => {
      // a raw call with broken attributes JSON
      const c = client as unknown as { client: { Mount: (r: unknown, o: unknown, cb: (e: { details: string; code: number }) => void) => void } };
      c.client.Mount({ attributes: `{"token": "${SECRET}"`, secrets: "null", permission: "420" }, { deadline: Date.now() + 5000 }, (e) => resolve(e));
    });
    expect(err.details).toBe(`${P}failed to unmarshal attributes, error: not a JSON object of strings`);
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    await expectInvalid(base(), `${P}failed to unmarshal file permission, error: "abc" is not a file mode between 0 and 511 (0777)`, sp, "abc");
  });
});

describe("top-level parameters", () => {
  const cases: Array<[string, (a: Record<string, string>) => void, string]> = [
    ["pod name", (a) => delete a["csi.storage.k8s.io/pod.name"], "pod name is not provided"],
    ["pod namespace", (a) => delete a["csi.storage.k8s.io/pod.namespace"], "pod namespace is not provided"],
    ["usePodIdentity parse", (a) => (a.usePodIdentity = "yes"), 'failed to parse usePodIdentity flag, error: strconv.ParseBool: parsing "yes": invalid syntax'],
    ["useVMManagedIdentity parse", (a) => (a.useVMManagedIdentity = "on"), 'failed to parse useVMManagedIdentity flag, error: strconv.ParseBool: parsing "on": invalid syntax'],
    ["useAzureTokenProxy parse", (a) => (a.useAzureTokenProxy = "2"), 'failed to parse useAzureTokenProxy flag, error: strconv.ParseBool: parsing "2": invalid syntax'],
    [
      "two identity modes",
      (a) => Object.assign(a, { usePodIdentity: "true", useVMManagedIdentity: "true" }),
      "only one identity mode can be enabled at a time: usePodIdentity, useVMManagedIdentity, or useAzureTokenProxy",
    ],
    [
      "pod identity",
      (a) => (a.usePodIdentity = "True"),
      "usePodIdentity is not supported: AAD pod identity is deprecated; use workload identity (clientID), identity binding (useAzureTokenProxy) or useVMManagedIdentity instead",
    ],
    [
      "identity binding without clientID",
      (a) => (a.useAzureTokenProxy = "1"),
      "failed to build auth config for mode AzureTokenProxy: clientID is required for identity binding (set clientID to the client id of the managed identity the identity binding is for)",
    ],
    ["keyvaultName", (a) => (a.keyvaultName = "  "), "keyvaultName is not provided"],
    ["tenantID", (a) => delete a.tenantID, "tenantId is not provided"],
    ["bad tenantID", (a) => (a.tenantID = "ten/ant"), 'tenantID "ten/ant" is not valid: a tenant id is a GUID or a domain name (characters 0-9, a-z, A-Z, "." and "-")'],
    ["cloudName", (a) => (a.cloudName = "Mars"), 'cloudName Mars is not valid, error: autorest/azure: There is no cloud environment matching the name "MARS"'],
    [
      "AzureStackCloud without file",
      (a) => Object.assign(a, { cloudName: "AzureStackCloud", cloudEnvFileName: "/nonexistent/cloud.json" }),
      'cloudName AzureStackCloud is not valid, error: cloudEnvFileName "/nonexistent/cloud.json" cannot be used: it must name a readable regular file of at most 64 KiB in /etc/kubernetes (the provider\'s --cloud-env-file-dir), a JSON cloud environment with activeDirectoryEndpoint (https), keyVaultEndpoint and keyVaultDNSSuffix',
    ],
    ["objects missing", (a) => delete a.objects, "objects is not set"],
    ["objects empty", (a) => (a.objects = "array: []"), NO_OBJECTS],
    ["no array key", (a) => (a.objects = "other: 1"), NO_OBJECTS],
    [
      "item is a mapping",
      (a) => (a.objects = "array:\n  - objectName: x\n    objectType: secret\n"),
      "failed to yaml unmarshal objects, error: yaml: unmarshal errors:\n  line 2: cannot unmarshal !!map into string",
    ],
    ["vault name length", (a) => (a.keyvaultName = "kv"), 'failed to get vault: Invalid vault name: "kv", must be between 3 and 24 chars'],
    ["vault name chars", (a) => (a.keyvaultName = "kv_vault"), 'failed to get vault: Invalid vault name: "kv_vault", must match [-a-zA-Z0-9]{3,24}'],
    [
      "vault name form",
      (a) => (a.keyvaultName = "1kv--x"),
      'failed to get vault: Invalid vault name: "1kv--x", must start with a letter, end with a letter or digit, and not contain consecutive hyphens',
    ],
  ];
  for (const [name, change, message] of cases) {
    it(name, async () => {
      const attrs = base();
      change(attrs);
      await expectInvalid(attrs, P + message);
    });
  }
});

describe("identity configuration", () => {
  it("service principal secret missing or incomplete", async () => {
    await expectInvalid(
      base(),
      `${P}failed to get credentials, nodePublishSecretRef secret is not set (set clientID for workload identity, useVMManagedIdentity for a managed identity, or nodePublishSecretRef for a service principal)`,
      null,
    );
    await expectInvalid(base(), `${P}could not find clientid in secrets`, { clientsecret: SECRET });
    await expectInvalid(base(), `${P}could not find clientsecret in secrets`, { ClientID: "x" });
  });
  it("workload identity tokens", async () => {
    const wi = { ...base(), clientID: "wi-app" };
    const pre = `${P}failed to build auth config for mode None: failed to parse workload identity tokens, error: `;
    await expectInvalid(wi, `${pre}service account tokens not found (the CSIDriver object needs tokenRequests with audience api://AzureADTokenExchange)`, null);
    await expectInvalid({ ...wi, "csi.storage.k8s.io/serviceAccount.tokens": JSON.stringify({ other: { token: "x" } }) }, `${pre}token for audience api://AzureADTokenExchange not found`, null);
    await expectInvalid({ ...wi, "csi.storage.k8s.io/serviceAccount.tokens": tokensAttribute("opaque") }, `${pre}the token for audience api://AzureADTokenExchange is not a service account JWT`, null);
    await expectInvalid(
      { ...wi, "csi.storage.k8s.io/serviceAccount.tokens": tokensAttribute(serviceAccountToken("ns1", "other-sa")) },
      `${pre}the token for audience api://AzureADTokenExchange was issued to system:serviceaccount:ns1:other-sa, not to the pod's service account system:serviceaccount:ns1:sa1`,
      null,
    );
  });
  it("identity binding tokens", async () => {
    const ib = { ...base(), clientID: "ib-app", useAzureTokenProxy: "true" };
    const pre = `${P}failed to build auth config for mode AzureTokenProxy: `;
    const bound = (token: string) => JSON.stringify({ "api://AKSIdentityBinding": { token, expirationTimestamp: "2100-01-01T00:00:00Z" } });
    await expectInvalid(ib, `${pre}service account tokens are required for identity binding (the CSIDriver object needs tokenRequests with audience api://AKSIdentityBinding)`, null);
    await expectInvalid(
      { ...ib, "csi.storage.k8s.io/serviceAccount.tokens": tokensAttribute(serviceAccountToken("ns1", "sa1")) },
      `${pre}failed to parse service account token for identity binding, error: token for audience api://AKSIdentityBinding not found (the CSIDriver object needs tokenRequests with audience api://AKSIdentityBinding)`,
      null,
    );
    await expectInvalid(
      { ...ib, "csi.storage.k8s.io/serviceAccount.tokens": bound(serviceAccountToken("ns1", "other-sa")) },
      `${pre}failed to parse service account token for identity binding, error: the token for audience api://AKSIdentityBinding was issued to system:serviceaccount:ns1:other-sa, not to the pod's service account system:serviceaccount:ns1:sa1`,
      null,
    );
  });
});

describe("objects", () => {
  const cases: Array<[string, Array<Record<string, string | number>>, string]> = [
    ["unknown objectType (at parse time)", [{ objectName: "a", objectType: "Secret" }], `${obj("Secret", "a")}Invalid vaultObjectTypes. Should be secret, key, or cert`],
    ["bad objectFormat", [{ objectName: "a", objectType: "secret", objectFormat: "der" }], `${obj("secret", "a")}invalid objectFormat: der, should be PEM or PFX`],
    ["pfx on a cert (exactly lower case, as upstream)", [{ objectName: "a", objectType: "cert", objectFormat: "pfx" }], `${obj("cert", "a")}PFX format only supported for objectType: secret`],
    ["bad objectEncoding", [{ objectName: "a", objectType: "secret", objectEncoding: "utf-16" }], `${obj("secret", "a")}invalid objectEncoding: utf-16, should be hex, base64 or utf-8`],
    ["encoding on a key", [{ objectName: "a", objectType: "key", objectEncoding: "hex" }], `${obj("key", "a")}objectEncoding only supported for objectType: secret`],
    ["empty file name", [{ objectName: "", objectType: "secret" }], `${obj("secret", "")}file name must not be empty`],
    ["absolute alias", [{ objectName: "a", objectType: "secret", objectAlias: "/etc/passwd" }], `${obj("secret", "a")}file name must be a relative path`],
    ["dot-dot alias", [{ objectName: "a", objectType: "secret", objectAlias: "x/../../y" }], `${obj("secret", "a")}file name must not contain '..'`],
    ["newline in an alias", [{ objectName: "a", objectType: "secret", objectAlias: "a\nb" }], `${obj("secret", "a")}file name "a\\nb" must not contain a control character (newline, tab, NUL, ...)`],
    ["tab in an alias", [{ objectName: "a", objectType: "secret", objectAlias: "a\tb" }], `${obj("secret", "a")}file name "a\\tb" must not contain a control character (newline, tab, NUL, ...)`],
    ["400 bytes in 200 characters", [{ objectName: "a", objectType: "secret", objectAlias: "é".repeat(200) }], `${obj("secret", "a")}file name "${"é".repeat(200)}" has a path segment longer than 255 bytes`],
    ["long segment", [{ objectName: "a", objectType: "secret", objectAlias: "x".repeat(256) }], `${obj("secret", "a")}file name "${"x".repeat(256)}" has a path segment longer than 255 bytes`],
    ["bad object name", [{ objectName: "my_secret", objectType: "secret", objectAlias: "ok" }], `${obj("secret", "my_secret")}objectName "my_secret" is not a valid Key Vault object name (1-127 characters of 0-9, a-z, A-Z and -)`],
    ["filePermission not octal", [{ objectName: "a", objectType: "secret", filePermission: "0o600" }], `${obj("secret", "a")}filePermission "0o600" is not an octal file mode such as 0644, 0640 or 0400`],
    ["filePermission 0999", [{ objectName: "a", objectType: "secret", filePermission: "0999" }], `${obj("secret", "a")}filePermission "0999" is not an octal file mode such as 0644, 0640 or 0400`],
    ["filePermission setuid", [{ objectName: "a", objectType: "secret", filePermission: "4755" }], `${obj("secret", "a")}filePermission "4755" must be at most 0777 (setuid, setgid and sticky bits are not supported)`],
    ["only the volume itself", [{ objectName: "a", objectType: "secret", objectAlias: "./" }], `${obj("secret", "a")}file name "./" names the volume itself, not a file in it: give the object a file name`],
    [
      "history beyond the bound",
      [{ objectName: "a", objectType: "secret", objectVersionHistory: 1001 }],
      `${obj("secret", "a")}objectVersionHistory 1001 is more than this provider reads (at most 1000, that is 1001 versions): lower it`,
    ],
    ["history quoted (as yaml.v3)", [{ objectName: "a", objectType: "secret", objectVersionHistory: "5" }], "unmarshal failed for keyVaultObjects at index 0, error: yaml: unmarshal errors:\n  line 3: cannot unmarshal !!str `5` into int32"],
    [
      "duplicate file",
      [
        { objectName: "a", objectType: "secret" },
        { objectName: "b", objectType: "key", objectAlias: "a" },
      ],
      `${P}file "a" would be written by both objectType:secret, objectName:a and objectType:key, objectName:b (objectAlias a): give one of them a different objectAlias`,
    ],
    [
      "file where another needs a directory",
      [
        { objectName: "a", objectType: "secret", objectAlias: "dir" },
        { objectName: "b", objectType: "secret", objectAlias: "dir/b" },
      ],
      `${P}file "dir" would be written by both objectType:secret, objectName:a (objectAlias dir) and objectType:secret, objectName:b (objectAlias dir/b): give one of them a different objectAlias`,
    ],
    [
      "history folder clash",
      [
        { objectName: "a", objectType: "secret", objectVersionHistory: 3 },
        { objectName: "b", objectType: "secret", objectAlias: "a/2" },
      ],
      `${P}file "a/2" would be written by both objectType:secret, objectName:a and objectType:secret, objectName:b (objectAlias a/2): give one of them a different objectAlias`,
    ],
  ];
  for (const [name, items, message] of cases) {
    it(name, async () => {
      await expectInvalid(objects(items), message.startsWith(P) ? message : P + message);
    });
  }
});

describe("nothing secret in logs", () => {
  it("no client secret or token text was logged", () => {
    const all = logs.join("");
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain("signature");
  });
});
