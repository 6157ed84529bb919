// Keys through the unmodified KeyClient: RSA and EC creation, JWK import,
// versions, disabled keys and not found.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKeyPairSync, createPublicKey, type KeyObject } from "node:crypto";
import { KeyClient, type JsonWebKey } from "@azure/keyvault-keys";
import { RestError } from "@azure/core-rest-pipeline";
import { startEmulator, type Emulator } from "../../src/emulator/index.ts";
import { APP_OFFICER, clientOptions, secretCredential } from "./helpers.ts";

let emulator: Emulator;
let keys: KeyClient;

beforeAll(async () => {
  emulator = await startEmulator({
    seed: {
      vaults: [{ name: "kv1", keys: [{ name: "seeded", kty: "EC", curve: "P-384" }] }],
      applications: [{ clientId: APP_OFFICER.clientId, clientSecret: APP_OFFICER.secret, roleAssignments: [{ vault: "kv1", role: "Key Vault Crypto Officer" }] }],
    },
  });
  keys = new KeyClient(emulator.vaultUrl("kv1"), secretCredential(emulator, APP_OFFICER), clientOptions(emulator));
});

afterAll(async () => {
  await emulator.close();
});

/** Node's JWK (base64url strings) as the SDK's JsonWebKey (bytes). */
function toSdkJwk(key: KeyObject): JsonWebKey {
  const jwk = key.export({ format: "jwk" });
  const bytes = (v: string | undefined) => (v === undefined ? undefined : new Uint8Array(Buffer.from(v, "base64url")));
  return {
    kty: jwk.kty === "RSA" ? "RSA" : "EC",
    crv: jwk.crv as JsonWebKey["crv"],
    n: bytes(jwk.n),
    e: bytes(jwk.e),
    d: bytes(jwk.d),
    p: bytes(jwk.p),
    q: bytes(jwk.q),
    dp: bytes(jwk.dp),
    dq: bytes(jwk.dq),
    qi: bytes(jwk.qi),
    x: bytes(jwk.x),
    y: bytes(jwk.y),
  };
}

describe("keys", () => {
  it.each([2048, 3072, 4096])("creates RSA %i keys", async (keySize) => {
    const key = await keys.createRsaKey(`rsa-${keySize}`, { keySize });
    expect(key.keyType).toBe("RSA");
    expect(key.key?.n?.length).toBe(keySize / 8);
    expect(Buffer.from(key.key!.e!).toString("base64url")).toBe("AQAB");
    expect(key.key?.d).toBeUndefined();
    expect(key.keyOperations).toEqual(["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]);
    expect(key.properties.version).toMatch(/^[0-9a-f]{32}$/);
  });

  it.each([
    ["P-256", 32],
    ["P-384", 48],
    ["P-521", 66],
  ] as const)("creates EC %s keys", async (curve, size) => {
    const key = await keys.createEcKey(`ec-${curve}`, { curve });
    expect(key.keyType).toBe("EC");
    expect(key.key?.crv).toBe(curve);
    expect(key.key?.x?.length).toBe(size);
    expect(key.key?.y?.length).toBe(size);
    expect(key.keyOperations).toEqual(["sign", "verify"]);
  });

  it("rejects an unsupported RSA size with BadParameter", async () => {
    const error = (await keys.createRsaKey("odd", { keySize: 1000 }).catch((e: unknown) => e)) as RestError;
    expect(error).toBeInstanceOf(RestError);
    expect(error.statusCode).toBe(400);
    expect(error.code).toBe("BadParameter");
  });

  it("imports RSA and EC JWKs and returns their public halves", async () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    const importedRsa = await keys.importKey("imported-rsa", toSdkJwk(rsa));
    expect(Buffer.from(importedRsa.key!.n!).toString("base64url")).toBe(createPublicKey(rsa).export({ format: "jwk" }).n);
    expect(importedRsa.key?.d).toBeUndefined();

    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const importedEc = await keys.importKey("imported-ec", toSdkJwk(ec), { hardwareProtected: true });
    expect(importedEc.keyType).toBe("EC-HSM");
    expect(Buffer.from(importedEc.key!.x!).toString("base64url")).toBe(createPublicKey(ec).export({ format: "jwk" }).x);
  });

  it("gets versions by id, lists them, and refuses disabled ones", async () => {
    const first = await keys.createRsaKey("versioned");
    const second = await keys.createRsaKey("versioned");
    expect((await keys.getKey("versioned")).properties.version).toBe(second.properties.version);
    const byVersion = await keys.getKey("versioned", { version: first.properties.version! });
    expect(byVersion.key?.n).toEqual(first.key?.n);
    expect(byVersion.id).toBe(`${emulator.vaultUrl("kv1")}keys/versioned/${first.properties.version}`);
    const listed = [];
    for await (const p of keys.listPropertiesOfKeyVersions("versioned")) listed.push(p.version);
    expect(listed).toEqual([first.properties.version, second.properties.version]);

    await keys.updateKeyProperties("versioned", first.properties.version!, { enabled: false });
    const disabled = (await keys.getKey("versioned", { version: first.properties.version! }).catch((e: unknown) => e)) as RestError;
    expect(disabled.statusCode).toBe(403);
    expect(JSON.stringify(disabled.details)).toContain("KeyDisabled");
  });

  it("serves seeded keys and answers 404 KeyNotFound", async () => {
    const seeded = await keys.getKey("seeded");
    expect(seeded.key?.crv).toBe("P-384");
    const missing = (await keys.getKey("missing").catch((e: unknown) => e)) as RestError;
    expect(missing.statusCode).toBe(404);
    expect(missing.code).toBe("KeyNotFound");
  });
});
