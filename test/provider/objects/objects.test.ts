// Unit tests of the objects YAML (yaml.v3 scalar semantics), identity keys,
// the token cache, the request budget and the LRU.
import { describe, expect, it } from "vitest";
import type { AccessToken } from "@azure/core-auth";
import { TokenBucket } from "../../../src/provider/keyvault/budget.ts";
import type { CloudEnvironment } from "../../../src/provider/cloud/cloud.ts";
import { buildAuthConfig, CachingCredential, identityKey, type AuthConfig } from "../../../src/provider/auth/identity.ts";
import { LruCache } from "../../../src/shared/lru.ts";
import { parseObjects } from "../../../src/provider/objects/objects-yaml.ts";
import { SingleFlight } from "../../../src/provider/keyvault/singleflight.ts";

describe("objects YAML", () => {
  it("reads scalars as their literal text, like yaml.v3 into string fields", () => {
    const yaml = [
      "array:",
      "  - |",
      "    objectName: s1",
      "    objectType: secret",
      "    objectVersion: 1234",
      "    filePermission: 0755",
      "    objectAlias:   spaced  ",
      "    objectEncoding: Base64",
      "    objectVersionHistory: 0",
      "  - |",
      "    objectName: k1",
      "    objectType: key",
      "    objectVersion: ~",
      "    objectVersionHistory: 0x3",
      "    objectname: typo",
    ].join("\n");
    const { objects, unknownKeys } = parseObjects(yaml);
    expect(objects[0]).toMatchObject({ objectName: "s1", objectVersion: "1234", fileMode: 0o755, objectAlias: "spaced", fileName: "spaced", objectEncoding: "base64" });
    expect(objects[1]).toMatchObject({ objectName: "k1", objectVersion: "", objectVersionHistory: 3, fileMode: undefined, fileName: "k1" });
    expect(unknownKeys).toEqual([{ index: 1, keys: ["objectname"] }]);
  });

  it("accepts flow style and quoted strings", () => {
    const { objects } = parseObjects('array: ["objectName: a\\nobjectType: cert", "{objectName: b, objectType: key}"]');
    expect(objects.map((o) => [o.objectName, o.objectType])).toEqual([
      ["a", "cert"],
      ["b", "key"],
    ]);
  });

  it("reports duplicate keys as yaml.v3 does, in the document's and each object's mapping", () => {
    expect(() => parseObjects("array:\n  - |\n    objectName: a\n    objectType: secret\n    objectName: b\n")).toThrow(
      'unmarshal failed for keyVaultObjects at index 0, error: yaml: unmarshal errors:\n  line 3: mapping key "objectName" already defined at line 1',
    );
    expect(() => parseObjects("array: []\nother: 1\narray: []\n")).toThrow(
      'failed to yaml unmarshal objects, error: yaml: unmarshal errors:\n  line 3: mapping key "array" already defined at line 1',
    );
    // "a" and 'a' are the same key to yaml.v3
    expect(() => parseObjects("array:\n  - |\n    objectName: a\n    'objectName': b\n")).toThrow(/mapping key "objectName" already defined/);
  });
});

describe("objects YAML within a budget of nodes, checked before a document is built", () => {
  const LIMITS = { maxObjects: 1000, maxFiles: 5000 };

  it("a mapping of 30,000 keys, 100,000 list entries or 300,000 empty pairs are refused naming --max-objects-per-mount", () => {
    const hostile = [
      ["array: []", ...Array.from({ length: 30_000 }, (_, i) => `k${i}: v`)].join("\n"),
      `array: [${Array.from({ length: 100_000 }, (_, i) => `"o${i}"`).join(",")}]`,
      `{${":,".repeat(300_000)}}`,
      "[".repeat(100_000),
      `array: [${"*a, ".repeat(100_000)}]`,
    ];
    for (const text of hostile) {
      expect(() => parseObjects(text, LIMITS)).toThrow(
        "the objects list has more than 6256 YAML nodes (keys, values, list entries), far more than 1000 objects need (--max-objects-per-mount); list fewer objects, or fewer keys per object",
      );
    }
  });

  it("one object's YAML, and all objects' together, have budgets too", () => {
    const keys = (n: number) => Array.from({ length: n }, (_, i) => `k${i}: v`);
    /** `array:` of `- |` blocks holding the given lines. */
    const raw = (...items: string[][]) => ["array:", ...items.flatMap((lines) => ["  - |", ...lines.map((l) => `    ${l}`)])].join("\n");
    expect(() => parseObjects(raw(["objectName: a", "objectType: secret", ...keys(100)]), LIMITS)).toThrow(
      "unmarshal failed for keyVaultObjects at index 0, error: the object's YAML has more than 256 YAML nodes (keys, values, list entries), far more than one object needs; list fewer objects, or fewer keys per object",
    );
    // 80 keys per object stay under one object's budget, but 1000 such objects are over the list's
    const heavy = Array.from({ length: 1000 }, (_, i) => [`objectName: o${i}`, "objectType: secret", ...keys(80)]);
    expect(() => parseObjects(raw(...heavy), LIMITS)).toThrow(/^unmarshal failed for keyVaultObjects at index \d+, error: the objects' own YAML has more than 64256 YAML nodes/);
  });

  it("the largest list the limits allow is read: 1000 objects with every field, in block and in flow style", () => {
    const all = Array.from({ length: 1000 }, (_, i) => ({
      objectName: `o${i}`,
      objectType: "secret",
      objectAlias: `dir/file-${i}`,
      objectVersion: "",
      objectVersionHistory: 0,
      objectFormat: "pem",
      objectEncoding: "utf-8",
      filePermission: "0640",
    }));
    expect(parseObjects(list(...all), LIMITS).objects).toHaveLength(1000);
    const flowItem = (o: Record<string, string | number>) => `{${Object.entries(o).map(([k, v]) => `${k}: ${typeof v === "number" ? v : `"${v}"`}`).join(", ")}}`;
    const flow = `array: [${all.map((o) => JSON.stringify(flowItem(o))).join(", ")}]`;
    expect(parseObjects(flow, LIMITS).objects).toHaveLength(1000);
  });
});

/** The usual `array:` of `- |` blocks. */
const list = (...items: Array<Record<string, string | number>>) =>
  ["array:", ...items.flatMap((item) => ["  - |", ...Object.entries(item).map(([k, v]) => `    ${k}: ${typeof v === "number" ? v : JSON.stringify(v)}`)])].join("\n");

describe("what upstream mounts is accepted", () => {
  it("unclean aliases get their clean path, with a warning that names both", () => {
    const { objects, warnings } = parseObjects(
      list(
        { objectName: "a", objectType: "secret", objectAlias: "./x" },
        { objectName: "b", objectType: "secret", objectAlias: "d//e/./f/" },
        { objectName: "c", objectType: "secret", objectAlias: "plain" },
      ),
    );
    expect(objects.map((o) => o.fileName)).toEqual(["x", "d/e/f", "plain"]);
    expect(objects[0]!.objectAlias).toBe("./x");
    expect(warnings).toEqual([
      { index: 0, message: 'objectAlias "./x" is written as "x" (upstream\'s driver refuses "./x": invalid filepath); write "x"', differsFromUpstream: true },
      {
        index: 1,
        message: 'objectAlias "d//e/./f/" is written as "d/e/f" (upstream\'s driver refuses "d//e/./f/": invalid filepath); write "d/e/f"',
        differsFromUpstream: true,
      },
    ]);
  });

  it("a backslash is an ordinary character of a file name, as on Linux upstream", () => {
    expect(parseObjects(list({ objectName: "a", objectType: "secret", objectAlias: "a\\b" })).objects[0]!.fileName).toBe("a\\b");
  });

  it("objectFormat PFX in any case but lower on a cert or key is ignored with a warning; pfx is refused", () => {
    const { objects, warnings } = parseObjects(list({ objectName: "c", objectType: "cert", objectFormat: "PFX" }, { objectName: "k", objectType: "key", objectFormat: "Pfx" }));
    expect(objects.map((o) => o.objectType)).toEqual(["cert", "key"]);
    expect(warnings.map((w) => w.message)).toEqual([
      'objectFormat "PFX" has no effect on objectType cert: the file is PEM, as upstream writes it (remove objectFormat, or use objectType secret to get the PFX)',
      'objectFormat "Pfx" has no effect on objectType key: the file is PEM, as upstream writes it (remove objectFormat, or use objectType secret to get the PFX)',
    ]);
    expect(() => parseObjects(list({ objectName: "c", objectType: "cert", objectFormat: "pfx" }))).toThrow(/PFX format only supported for objectType: secret/);
  });

  it("objectVersionHistory below 2 reads one version; up to 1000 is accepted", () => {
    const { objects } = parseObjects(list({ objectName: "a", objectType: "secret", objectVersionHistory: -1 }, { objectName: "b", objectType: "secret", objectVersionHistory: 101 }));
    expect(objects.map((o) => o.objectVersionHistory)).toEqual([-1, 101]);
  });

  it("a history folder clashes only with its numbered files", () => {
    const history = { objectName: "h", objectType: "secret", objectVersionHistory: 2 };
    expect(parseObjects(list(history, { objectName: "x", objectType: "secret", objectAlias: "h/notes" })).objects).toHaveLength(2);
    expect(parseObjects(list(history, { objectName: "x", objectType: "secret", objectAlias: "h/3" })).objects).toHaveLength(2);
    expect(() => parseObjects(list(history, { objectName: "x", objectType: "secret", objectAlias: "h/2" }))).toThrow(/file "h\/2" would be written by both/);
    expect(() => parseObjects(list(history, { objectName: "x", objectType: "secret", objectAlias: "h/0/deeper" }))).toThrow(/file "h\/0" would be written by both/);
    expect(() => parseObjects(list(history, { ...history, objectName: "y", objectAlias: "h/1" }))).toThrow(/file "h\/1" would be written by both/);
    expect(() => parseObjects(list({ objectName: "f", objectType: "secret", objectAlias: "top" }, { ...history, objectAlias: "top/sub" }))).toThrow(/file "top" would be written by both/);
  });
});

const cloud: CloudEnvironment = {
  name: "AzurePublicCloud",
  activeDirectoryEndpoint: "https://login.microsoftonline.com/",
  keyVaultEndpoint: "https://vault.azure.net/",
  keyVaultDNSSuffix: "vault.azure.net",
  wellKnown: true,
};

describe("identity parameters upstream ignores", () => {
  const inputs = { tenantId: "t", cloud, serviceAccountTokens: undefined, podNamespace: "ns", serviceAccountName: "sa", secrets: { clientid: "c", clientsecret: "s" } };
  it("clientID next to useVMManagedIdentity: the managed identity, with a warning", () => {
    const warnings: string[] = [];
    const auth = buildAuthConfig({ ...inputs, useVMManagedIdentity: true, userAssignedIdentityID: "", clientID: "wi-app", onWarning: (m) => warnings.push(m) });
    expect(auth).toMatchObject({ mode: "ManagedIdentity", clientId: "" });
    expect(warnings).toEqual([
      'clientID is not used because useVMManagedIdentity is "true": the objects are read with the VM\'s system-assigned managed identity, as upstream does (remove clientID, or remove useVMManagedIdentity for workload identity)',
    ]);
  });
  it("userAssignedIdentityID without useVMManagedIdentity: the service principal, with a warning", () => {
    const warnings: string[] = [];
    const auth = buildAuthConfig({ ...inputs, useVMManagedIdentity: false, userAssignedIdentityID: "uami", clientID: "", onWarning: (m) => warnings.push(m) });
    expect(auth).toMatchObject({ mode: "ServicePrincipal", clientId: "c" });
    expect(warnings).toEqual(['userAssignedIdentityID is not used without useVMManagedIdentity: "true", as upstream ignores it (set useVMManagedIdentity, or remove userAssignedIdentityID)']);
  });
});

describe("identity keys", () => {
  const sp = (secret: string): AuthConfig => ({ mode: "ServicePrincipal", tenantId: "t", clientId: "c", clientSecret: secret, cloud });
  it("differ by secret, subject, tenant, client and mode; never contain the secret", () => {
    const keys = new Set([
      identityKey(sp("a")),
      identityKey(sp("b")),
      identityKey({ ...sp("a"), tenantId: "t2" }),
      identityKey({ ...sp("a"), clientId: "c2" }),
      identityKey({ mode: "WorkloadIdentity", tenantId: "t", clientId: "c", cloud, serviceAccountSubject: "system:serviceaccount:a:b" }),
      identityKey({ mode: "WorkloadIdentity", tenantId: "t", clientId: "c", cloud, serviceAccountSubject: "system:serviceaccount:a:c" }),
      identityKey({ mode: "ManagedIdentity", tenantId: "t", clientId: "c", cloud }),
      identityKey({ mode: "ManagedIdentity", tenantId: "t", clientId: "", cloud }),
      identityKey({ ...sp("a"), cloud: { ...cloud, activeDirectoryEndpoint: "https://login.microsoftonline.us/" } }),
    ]);
    expect(keys.size).toBe(9);
    expect(identityKey(sp("a"))).toBe(identityKey(sp("a")));
    expect(identityKey(sp("supersecret"))).not.toContain("supersecret");
  });
});

describe("CachingCredential", () => {
  it("fetches once for concurrent callers and reuses a fresh token", async () => {
    let calls = 0;
    const cred = new CachingCredential(
      async (): Promise<AccessToken> => {
        calls++;
        await new Promise((r) => setTimeout(r, 20));
        return { token: `t${calls}`, expiresOnTimestamp: Date.now() + 3600_000 };
      },
      "tenant",
      () => {},
    );
    const tokens = await Promise.all(Array.from({ length: 20 }, () => cred.getToken(["https://vault.azure.net/.default"], { enableCae: true })));
    expect(new Set(tokens.map((t) => t.token))).toEqual(new Set(["t1"]));
    expect((await cred.getToken("https://vault.azure.net/.default", { enableCae: true, tenantId: "tenant" })).token).toBe("t1");
    expect(calls).toBe(1);
    // other claims (a CAE challenge) and tokens near expiry are fetched again
    await cred.getToken("https://vault.azure.net/.default", { enableCae: true, claims: "{}" });
    expect(calls).toBe(2);
  });

  it("prefetches a token the Key Vault client then finds in flight or cached, whatever the tenant's case; a failed prefetch is not reported, the next request fetches again", async () => {
    let calls = 0;
    let release!: () => void;
    let fail = false;
    const cred = new CachingCredential(
      async (): Promise<AccessToken> => {
        calls++;
        await new Promise<void>((r) => (release = r));
        if (fail) throw new Error("AADSTS7000215: invalid client secret");
        return { token: `t${calls}`, expiresOnTimestamp: Date.now() + 3600_000 };
      },
      "Tenant-A",
      () => {},
    );
    const scope = ["https://vault.azure.net/.default"];
    cred.prefetch(scope, { enableCae: true, tenantId: "Tenant-A" });
    cred.prefetch(scope, { enableCae: true, tenantId: "Tenant-A" });
    expect(calls).toBe(1);
    // The challenge names the tenant in lower case: the request joins the prefetch.
    const asked = cred.getToken(scope, { enableCae: true, tenantId: "tenant-a" });
    release();
    expect((await asked).token).toBe("t1");
    cred.prefetch(scope, { enableCae: true, tenantId: "Tenant-A" });
    expect(calls).toBe(1);

    fail = true;
    const other = ["https://vault.azure.cn/.default"];
    cred.prefetch(other, { enableCae: true, tenantId: "Tenant-A" });
    release();
    await new Promise((r) => setImmediate(r));
    const again = cred.getToken(other, { enableCae: true, tenantId: "Tenant-A" });
    expect(calls).toBe(3);
    release();
    await expect(again).rejects.toThrow(/AADSTS7000215/);
  });

  it("refetches tokens within five minutes of expiry", async () => {
    let calls = 0;
    const cred = new CachingCredential(async () => ({ token: String(++calls), expiresOnTimestamp: Date.now() + 60_000 }), "t", () => {});
    await cred.getToken("s");
    await cred.getToken("s");
    expect(calls).toBe(2);
  });
});

describe("TokenBucket", () => {
  it("lets a burst of `requests` through, then queues at the refill rate", async () => {
    let now = 0;
    const bucket = new TokenBucket({ requests: 3, windowMs: 300, now: () => now });
    for (let i = 0; i < 3; i++) expect(await bucket.take(1e9)).toBe(0);
    // the 4th must wait 100 ms; with a deadline too close it fails instead of waiting
    await expect(bucket.take(50)).rejects.toThrow(/request budget for key vault is used up/);
    now = 100;
    expect(await bucket.take(1e9)).toBe(0);
  });
  it("really waits when queued", async () => {
    const bucket = new TokenBucket({ requests: 2, windowMs: 200 });
    const start = Date.now();
    await Promise.all([0, 1, 2, 3].map(() => bucket.take(Date.now() + 10_000)));
    expect(Date.now() - start).toBeGreaterThanOrEqual(180);
  });
});

describe("LruCache", () => {
  it("evicts the least recently used and idle entries", () => {
    let now = 0;
    const evicted: number[] = [];
    const lru = new LruCache<string, number>({ maxEntries: 2, idleMs: 100, now: () => now, onEvict: (v) => evicted.push(v) });
    lru.set("a", 1);
    lru.set("b", 2);
    lru.get("a");
    lru.set("c", 3);
    expect(evicted).toEqual([2]);
    now = 500;
    expect(lru.get("a")).toBeUndefined();
    expect(evicted).toEqual([2, 1, 3]);
  });
});

describe("SingleFlight", () => {
  it("shares one run per key while in flight, then runs again", async () => {
    const sf = new SingleFlight<number>();
    let runs = 0;
    const fn = async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 10));
      return runs;
    };
    const a = sf.run("k", fn);
    const b = sf.run("k", fn);
    expect(b.shared).toBe(true);
    expect(await a.promise).toBe(await b.promise);
    await sf.run("k", fn).promise;
    expect(runs).toBe(2);
  });
});
