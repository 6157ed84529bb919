// objectVersionHistory with versions that share their creation second (Key
// Vault's timestamps have one-second resolution) and listings in whatever
// order Key Vault returns them, through the provider program's socket:
// `<name>/0` is always the current version (what Key Vault returns without a
// version), the rest newest first, ties by version id, whatever the listing
// order.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator, SeedDocument } from "../../src/emulator/index.ts";
import { objectsYaml, type MountResponse } from "./client.ts";
import { rawKeyVaultGet, startProvider, startTestEmulator, type RunningProvider } from "./env.ts";
import { podAttributes } from "./seed.ts";

const SP = { clientId: "81111111-1111-4111-8111-111111111111", clientSecret: "history-sp-secret" };
const CREATED = Math.floor(Date.now() / 1000) - 3600;
// v1, v2 and v3 (the current one, written last) share a second
const VERSIONS = [
  { value: "v0", created: CREATED },
  { value: "v1", created: CREATED + 7 },
  { value: "v2", created: CREATED + 7 },
  { value: "v3", created: CREATED + 7 },
];
// the current version is disabled: the newest enabled ones come first
const DISABLED_CURRENT = [
  { value: "d0", created: CREATED },
  { value: "d1", created: CREATED + 7 },
  { value: "d2", created: CREATED + 7 },
  { value: "d3", created: CREATED + 7, enabled: false },
];
const ORDERS = ["oldest-first", "newest-first", "version-id"] as const;
const SEED: SeedDocument = {
  vaults: ORDERS.map((order) => ({
    name: `kv-${order}`,
    versionListOrder: order,
    secrets: [
      { name: "multi", versions: VERSIONS },
      { name: "off", versions: DISABLED_CURRENT },
    ],
  })),
  applications: [{ name: "sp", clientId: SP.clientId, clientSecret: SP.clientSecret, roleAssignments: [{ vault: "*", permissions: ["all"] }] }],
};

let emulator: Emulator;
let address: string;
let provider: RunningProvider;

beforeAll(async () => {
  ({ emulator, address } = await startTestEmulator(SEED));
  provider = await startProvider(emulator, address);
}, 120_000);

afterAll(async () => {
  await provider?.stop();
  await emulator?.close();
});

const mount = (vault: string, name: string, history = 5): Promise<MountResponse> =>
  provider.client.mount({
    attributes: podAttributes({ keyvaultName: vault, tenantID: emulator.tenantId, objects: objectsYaml([{ objectName: name, objectType: "secret", objectVersionHistory: history }]) }),
    secrets: { clientid: SP.clientId, clientsecret: SP.clientSecret },
  });
const contents = (res: MountResponse) => res.files.map((f) => [f.path, Buffer.from(f.contents).toString()]);

/** Version id → value, read from Key Vault directly (no provider code). */
async function valuesById(vault: string, name: string): Promise<Map<string, string>> {
  const list = (await rawKeyVaultGet(emulator, address, SP, vault, `/secrets/${name}/versions`)) as { value: Array<{ id: string; attributes: { enabled: boolean } }> };
  const out = new Map<string, string>();
  for (const item of list.value.filter((v) => v.attributes.enabled)) {
    const version = item.id.split("/").pop()!;
    out.set(version, ((await rawKeyVaultGet(emulator, address, SP, vault, `/secrets/${name}/${version}`)) as { value: string }).value);
  }
  return out;
}

describe("version history with same-second versions", () => {
  it.each(ORDERS)("listing %s: /0 is the current version, then newest first with ties by version id", async (order) => {
    const vault = `kv-${order}`;
    const current = ((await rawKeyVaultGet(emulator, address, SP, vault, "/secrets/multi")) as { value: string }).value;
    expect(current).toBe("v3");
    const res = await mount(vault, "multi");
    const values = await valuesById(vault, "multi");
    const tied = [...values].filter(([, v]) => v === "v1" || v === "v2").sort(([a], [b]) => (a < b ? -1 : 1)).map(([, v]) => v);
    expect(contents(res)).toEqual([
      ["multi/0", "v3"],
      ["multi/1", tied[0]],
      ["multi/2", tied[1]],
      ["multi/3", "v0"],
    ]);
    // the reported versions are those of the files
    expect(res.object_version.map((v) => values.get(v.version))).toEqual(contents(res).map(([, v]) => v));
    expect(res.object_version.map((v) => v.id)).toEqual(["secret/multi/0", "secret/multi/1", "secret/multi/2", "secret/multi/3"]);
  });

  it("the same files whatever order the vault lists versions in", async () => {
    const orders = await Promise.all(ORDERS.map(async (order) => contents(await mount(`kv-${order}`, "multi"))[0]));
    expect(orders).toEqual(ORDERS.map(() => ["multi/0", "v3"]));
  });

  it("a disabled current version: the enabled ones, newest first, ties by version id", async () => {
    for (const order of ORDERS) {
      const vault = `kv-${order}`;
      const values = await valuesById(vault, "off");
      const tied = [...values].filter(([, v]) => v === "d1" || v === "d2").sort(([a], [b]) => (a < b ? -1 : 1)).map(([, v]) => v);
      expect([order, contents(await mount(vault, "off"))]).toEqual([
        order,
        [
          ["off/0", tied[0]],
          ["off/1", tied[1]],
          ["off/2", "d0"],
        ],
      ]);
    }
  });
});
