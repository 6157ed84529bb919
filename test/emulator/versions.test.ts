// What the emulator does as Key Vault does, so clients are tested against it:
// a missing or unknown api-version is 400 BadParameter (the versions the JS
// SDKs and the upstream Go provider's SDKs send are served); seeded versions
// may share their creation second; version listings come in the order a
// seed asks for, as Key Vault documents no order.
import { request } from "node:https";
import { SecretClient } from "@azure/keyvault-secrets";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../../src/emulator/index.ts";
import { APP_OFFICER, clientOptions, secretCredential } from "./helpers.ts";

let emulator: Emulator;
let token: string;
const CREATED = 1_700_000_000;
const versions = [
  { value: "v0", created: CREATED },
  { value: "v1", created: CREATED + 5 },
  { value: "v2", created: CREATED + 5 },
  { value: "v3", created: CREATED + 5 },
];

beforeAll(async () => {
  emulator = await startEmulator({
    seed: {
      vaults: [
        { name: "kv-oldest", secrets: [{ name: "multi", versions }, { name: "plain", value: "x" }] },
        { name: "kv-newest", versionListOrder: "newest-first", secrets: [{ name: "multi", versions }] },
        { name: "kv-by-id", versionListOrder: "version-id", secrets: [{ name: "multi", versions }] },
      ],
      applications: [{ name: APP_OFFICER.name, clientId: APP_OFFICER.clientId, clientSecret: APP_OFFICER.secret, roleAssignments: [{ vault: "*", role: "Key Vault Secrets Officer" }] }],
    },
  });
  token = (await secretCredential(emulator, APP_OFFICER).getToken("https://vault.azure.net/.default")).token;
});

afterAll(async () => {
  await emulator?.close();
});

function get(vault: string, path: string): Promise<{ status: number; body: { error?: { code: string; message: string } } & Record<string, unknown> }> {
  const host = `${vault}.vault.azure.net`;
  return new Promise((resolve, reject) => {
    const req = request(
      { host: emulator.host, port: emulator.port, servername: host, path, ca: emulator.caCertPem, headers: { host: `${host}:${emulator.port}`, authorization: `Bearer ${token}` } },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as never }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe("api-version", () => {
  it("a missing or unknown api-version is 400 BadParameter, as Key Vault answers", async () => {
    const missing = await get("kv-oldest", "/secrets/plain");
    expect(missing.status).toBe(400);
    expect(missing.body.error).toEqual({
      code: "BadParameter",
      message: "The api-version query parameter is missing. Consider using the latest supported version (2026-04-01).",
    });
    const unknown = await get("kv-oldest", "/secrets/plain?api-version=7.9");
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toEqual({
      code: "BadParameter",
      message: "The specified version (7.9) is not recognized. Consider using the latest supported version (2026-04-01).",
    });
  });

  it("serves what the JS SDKs (2026-04-01, 2025-07-01) and the Go provider's SDKs (7.4) send", async () => {
    for (const version of ["2026-04-01", "2025-07-01", "7.4"]) {
      const res = await get("kv-oldest", `/secrets/plain?api-version=${version}`);
      expect([version, res.status, res.body.value]).toEqual([version, 200, "x"]);
    }
  });
});

describe("version timestamps and listing order", () => {
  const listed = async (vault: string) =>
    (await get(vault, "/secrets/multi/versions?api-version=7.4")).body.value as Array<{ id: string; attributes: { created: number } }>;

  it("seeded creation times are kept, equal seconds included", async () => {
    expect((await listed("kv-oldest")).map((v) => v.attributes.created)).toEqual([CREATED, CREATED + 5, CREATED + 5, CREATED + 5]);
  });

  it("lists oldest first by default, newest first or by version id when the vault's seed says so", async () => {
    const oldest = (await listed("kv-oldest")).map((v) => v.id.split("/").pop()!);
    const newest = (await listed("kv-newest")).map((v) => v.id.split("/").pop()!);
    const byId = (await listed("kv-by-id")).map((v) => v.id.split("/").pop()!);
    expect(byId).toEqual([...byId].sort());
    // newest-first is the written order reversed: the current version comes first
    const client = new SecretClient(emulator.vaultUrl("kv-newest"), secretCredential(emulator, APP_OFFICER), clientOptions(emulator));
    expect((await client.getSecret("multi")).properties.version).toBe(newest[0]);
    // oldest-first is the written order: the current version comes last
    const oldestClient = new SecretClient(emulator.vaultUrl("kv-oldest"), secretCredential(emulator, APP_OFFICER), clientOptions(emulator));
    expect((await oldestClient.getSecret("multi")).properties.version).toBe(oldest.at(-1));
    expect(oldest).toHaveLength(4);
  });

  it("a seed naming an unknown order is refused", async () => {
    await expect(emulator.seed({ vaults: [{ name: "kv-bad", versionListOrder: "random" as never }] })).rejects.toThrow(
      "seed.vaults[0].versionListOrder must be one of oldest-first, newest-first, version-id",
    );
  });
});
