// Secrets through the unmodified SecretClient: the 401 challenge flow,
// versions, paging, disabled versions, not found, deletion, several vaults by
// host name, another cloud's DNS suffix, and RBAC.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SecretClient } from "@azure/keyvault-secrets";
import { RestError } from "@azure/core-rest-pipeline";
import { startEmulator, type Emulator } from "../../src/emulator/index.ts";
import { APP_OFFICER, APP_READER, clientOptions, recordingHttpClient, secretCredential } from "./helpers.ts";

let emulator: Emulator;

beforeAll(async () => {
  emulator = await startEmulator({
    seed: {
      vaults: [
        { name: "kv1", secrets: [{ name: "db-password", value: "from-kv1" }] },
        { name: "kv2", secrets: [{ name: "db-password", value: "from-kv2" }] },
        { name: "govkv" },
      ],
      applications: [
        { name: APP_OFFICER.name, clientId: APP_OFFICER.clientId, clientSecret: APP_OFFICER.secret, roleAssignments: [{ vault: "*", role: "Key Vault Secrets Officer" }] },
        { name: APP_READER.name, clientId: APP_READER.clientId, clientSecret: APP_READER.secret, roleAssignments: [{ vault: "kv2", role: "Key Vault Secrets User" }] },
      ],
    },
  });
});

afterAll(async () => {
  await emulator.close();
});

function client(vault = "kv1", app = APP_OFFICER, extra: Parameters<typeof clientOptions>[1] = {}): SecretClient {
  return new SecretClient(emulator.vaultUrl(vault), secretCredential(emulator, app), clientOptions(emulator, extra));
}

async function rejection(promise: Promise<unknown>): Promise<RestError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(RestError);
  return error as RestError;
}

describe("challenge flow", () => {
  it("challenges the first request without Authorization, then serves the authenticated retry", async () => {
    emulator.resetCounters();
    const { httpClient, exchanges } = recordingHttpClient();
    const secrets = new SecretClient(emulator.vaultUrl("kv1"), secretCredential(emulator, APP_OFFICER), clientOptions(emulator, { httpClient }));
    const secret = await secrets.getSecret("db-password");
    expect(secret.value).toBe("from-kv1");

    expect(exchanges).toHaveLength(2);
    const [challenge, retry] = exchanges;
    expect(challenge!.authorization).toBe(false);
    expect(challenge!.status).toBe(401);
    expect(challenge!.headers["www-authenticate"]).toBe(`Bearer authorization="https://login.microsoftonline.com/${emulator.tenantId}", resource="https://vault.azure.net"`);
    expect(retry!.authorization).toBe(true);
    expect(retry!.status).toBe(200);

    await secrets.getSecret("db-password");
    expect(exchanges).toHaveLength(3);
    expect(emulator.counters()).toMatchObject({ challenge: 1, "challenge:kv1": 1, getSecret: 2, "getSecret:kv1": 2, token: 1 });
  });

  it("challenges a PUT before reading its body and stores the body the SDK resends", async () => {
    const { httpClient, exchanges } = recordingHttpClient();
    const secrets = client("kv1", APP_OFFICER, { httpClient });
    const written = await secrets.setSecret("api-key", "s3cr3t", { contentType: "text/plain", tags: { team: "a" } });
    expect(exchanges.map((e) => `${e.method} ${e.status}`)).toEqual(["PUT 401", "PUT 200"]);
    expect(written.properties.version).toMatch(/^[0-9a-f]{32}$/);
    const read = await secrets.getSecret("api-key");
    expect(read.value).toBe("s3cr3t");
    expect(read.properties.contentType).toBe("text/plain");
    expect(read.properties.tags).toEqual({ team: "a" });
  });

  it("announces the resource of the vault's cloud (US Gov suffix)", async () => {
    const { httpClient, exchanges } = recordingHttpClient();
    const url = emulator.vaultUrl("govkv", "vault.usgovcloudapi.net");
    const credential = secretCredential(emulator, APP_OFFICER);
    const gov = new SecretClient(url, credential, clientOptions(emulator, { httpClient }));
    await gov.setSecret("x", "y");
    expect(exchanges[0]!.headers["www-authenticate"]).toBe(
      `Bearer authorization="https://login.microsoftonline.us/${emulator.tenantId}", resource="https://vault.usgovcloudapi.net"`,
    );
    expect((await gov.getSecret("x")).value).toBe("y");
  });
});

describe("versions and paging", () => {
  it("gets latest (with and without version) and each version by id", async () => {
    const secrets = client();
    const v1 = await secrets.setSecret("rotating", "one");
    const v2 = await secrets.setSecret("rotating", "two");
    const v3 = await secrets.setSecret("rotating", "three");
    expect((await secrets.getSecret("rotating")).value).toBe("three");
    expect((await secrets.getSecret("rotating", { version: v1.properties.version! })).value).toBe("one");
    expect((await secrets.getSecret("rotating", { version: v2.properties.version! })).properties.id).toBe(
      `${emulator.vaultUrl("kv1")}secrets/rotating/${v2.properties.version}`,
    );
    const versions = [];
    for await (const p of secrets.listPropertiesOfSecretVersions("rotating")) versions.push(p);
    expect(versions.map((v) => v.version)).toEqual([v1, v2, v3].map((v) => v.properties.version));
    const created = versions.map((v) => v.createdOn!.getTime());
    expect(created[0]! < created[1]! && created[1]! < created[2]!).toBe(true);
  });

  it("pages versions honouring maxresults and following absolute nextLinks", async () => {
    const versions: string[] = [];
    for (let i = 0; i < 30; i++) versions.push((await emulator.setSecret("kv1", "many", `value-${i}`)).version);
    const { httpClient, exchanges } = recordingHttpClient();
    const secrets = client("kv1", APP_OFFICER, { httpClient });

    const pageSizes: number[] = [];
    const seen: string[] = [];
    for await (const page of secrets.listPropertiesOfSecretVersions("many").byPage({ maxPageSize: 7 })) {
      pageSizes.push(page.length);
      seen.push(...page.map((p) => p.version!));
    }
    expect(pageSizes).toEqual([7, 7, 7, 7, 2]);
    expect(seen).toEqual(versions);
    const followed = exchanges.filter((e) => e.url.includes("skiptoken"));
    expect(followed).toHaveLength(4);
    for (const e of followed) expect(e.url.startsWith(emulator.vaultUrl("kv1"))).toBe(true);

    const defaultSizes: number[] = [];
    for await (const page of secrets.listPropertiesOfSecretVersions("many").byPage()) defaultSizes.push(page.length);
    expect(defaultSizes).toEqual([25, 5]);
  });

  it("lists secrets across pages", async () => {
    for (let i = 0; i < 27; i++) await emulator.setSecret("kv2", `listed-${i}`, "x");
    const names: string[] = [];
    for await (const p of client("kv2").listPropertiesOfSecrets()) names.push(p.name);
    expect(names.filter((n) => n.startsWith("listed-"))).toHaveLength(27);
    expect(names).toContain("db-password");
  });
});

describe("errors", () => {
  it("refuses a disabled version with 403 SecretDisabled and still serves the others", async () => {
    const secrets = client();
    const old = await secrets.setSecret("toggled", "old");
    await secrets.setSecret("toggled", "new");
    await secrets.updateSecretProperties("toggled", old.properties.version!, { enabled: false });
    const error = await rejection(secrets.getSecret("toggled", { version: old.properties.version! }));
    expect(error.statusCode).toBe(403);
    expect(error.code).toBe("Forbidden");
    expect(error.message).toBe("Operation get is not allowed on a disabled secret.");
    expect(JSON.stringify(error.details)).toContain("SecretDisabled");
    expect((await secrets.getSecret("toggled")).value).toBe("new");
    const listed = [];
    for await (const p of secrets.listPropertiesOfSecretVersions("toggled")) listed.push(p.enabled);
    expect(listed).toEqual([false, true]);
  });

  it("answers 404 SecretNotFound for an unknown name or version", async () => {
    const secrets = client();
    const missing = await rejection(secrets.getSecret("nope"));
    expect(missing.statusCode).toBe(404);
    expect(missing.code).toBe("SecretNotFound");
    expect(missing.message).toContain("A secret with (name/id) nope was not found in this key vault.");
    const badVersion = await rejection(secrets.getSecret("db-password", { version: "0123456789abcdef0123456789abcdef" }));
    expect(badVersion.code).toBe("SecretNotFound");
  });

  it("rejects an invalid name with 400 BadParameter", async () => {
    const error = await rejection(client().setSecret("bad_name", "x"));
    expect(error.statusCode).toBe(400);
    expect(error.code).toBe("BadParameter");
  });

  it("forbids a caller without a role assignment on the vault (403 ForbiddenByRbac naming caller and vault)", async () => {
    const error = await rejection(client("kv1", APP_READER).getSecret("db-password"));
    expect(error.statusCode).toBe(403);
    expect(error.code).toBe("Forbidden");
    expect(JSON.stringify(error.details)).toContain("ForbiddenByRbac");
    expect(error.message).toContain(`appid=${APP_READER.clientId}`);
    expect(error.message).toContain("Vault: kv1;");
    expect(error.message).toContain("Microsoft.KeyVault/vaults/secrets/getSecret/action");

    const reader = client("kv2", APP_READER);
    expect((await reader.getSecret("db-password")).value).toBe("from-kv2");
    const write = await rejection(reader.setSecret("db-password", "changed"));
    expect(write.statusCode).toBe(403);
    expect(write.message).toContain("setSecret/action");
  });
});

describe("several vaults", () => {
  it("routes by host name and reports an unknown vault clearly", async () => {
    emulator.resetCounters();
    expect((await client("kv1").getSecret("db-password")).value).toBe("from-kv1");
    expect((await client("kv2").getSecret("db-password")).value).toBe("from-kv2");
    expect(emulator.counters()).toMatchObject({ "getSecret:kv1": 1, "getSecret:kv2": 1 });
    const unknown = await rejection(client("kv3").getSecret("db-password"));
    expect(unknown.statusCode).toBe(404);
    expect(unknown.code).toBe("VaultNotFound");
    expect(unknown.message).toContain("kv3");
  });
});

describe("deletion", () => {
  it("soft-deletes, recovers and purges", async () => {
    const secrets = client();
    await secrets.setSecret("temp", "v");
    const poller = await secrets.beginDeleteSecret("temp");
    const deleted = await poller.pollUntilDone();
    expect(deleted.recoveryId).toBe(`${emulator.vaultUrl("kv1")}deletedsecrets/temp`);
    expect((await rejection(secrets.getSecret("temp"))).code).toBe("SecretNotFound");
    const conflict = await rejection(secrets.setSecret("temp", "again"));
    expect(conflict.statusCode).toBe(409);

    await (await secrets.beginRecoverDeletedSecret("temp")).pollUntilDone();
    expect((await secrets.getSecret("temp")).value).toBe("v");

    await (await secrets.beginDeleteSecret("temp")).pollUntilDone();
    await secrets.purgeDeletedSecret("temp");
    expect((await rejection(secrets.getDeletedSecret("temp"))).statusCode).toBe(404);
    await secrets.setSecret("temp", "fresh");
    expect((await secrets.getSecret("temp")).value).toBe("fresh");
  });
});
