// status.syncHash as upstream's controller computes it. The expected password
// is written out by hand from upstream's layout (Go's encoding/json of the
// data map, length-prefixed, then the UIDs, generations and
// forceSynchronization joined by "|"), and the key is derived by the openssl
// command line, not by the code under test.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import type { SecretSync } from "../../src/controller/api/secret-sync.ts";
import { SyncHashes, computeSyncHash, syncHashInput } from "../../src/controller/reconcile/sync-hash.ts";
import type { SecretProviderClass } from "../../src/shared/kube/kube-types.ts";

const ss: SecretSync = {
  metadata: { name: "app", namespace: "ns", uid: "5a9e7c1e-1111-4222-8333-944455556666", generation: 3 },
  spec: { secretProviderClassName: "kv", serviceAccountName: "app", secretObject: { type: "Opaque", data: [] }, forceSynchronization: "rotate-1" },
};
const spc = { metadata: { name: "kv", namespace: "ns", uid: "c0ffee00-aaaa-4bbb-8ccc-ddddeeeeffff", generation: 7 }, spec: {} } as SecretProviderClass;
const data = new Map([
  ["password", Buffer.from("hunter2")],
  ["api-key", Buffer.from([0, 1, 2, 250])],
]);

function opensslPbkdf2(password: Buffer, salt: string): string {
  const out = execFileSync(
    "openssl",
    ["kdf", "-keylen", "32", "-kdfopt", "digest:SHA512", "-kdfopt", `hexpass:${password.toString("hex")}`, "-kdfopt", `salt:${salt}`, "-kdfopt", "iter:100000", "PBKDF2"],
    { encoding: "utf8" },
  );
  return out.trim().replace(/:/g, "").toLowerCase();
}

describe("syncHash", () => {
  it("hashes the length-prefixed JSON of the data, then the class and SecretSync identities, as upstream does", async () => {
    const json = '{"api-key":"AAEC+g==","password":"aHVudGVyMg=="}';
    const expectedPassword = `${json.length}:${json}c0ffee00-aaaa-4bbb-8ccc-ddddeeeeffff|7|5a9e7c1e-1111-4222-8333-944455556666|3|rotate-1`;
    const input = syncHashInput(data, spc, ss);
    expect(input.password.toString("utf8")).toBe(expectedPassword);
    expect(input.salt.toString("utf8")).toBe(ss.metadata.uid);
    const hash = await computeSyncHash(input);
    expect(hash).toBe(`v1:${opensslPbkdf2(Buffer.from(expectedPassword), ss.metadata.uid!)}`);
  });

  it("takes missing generations as 0 and no forceSynchronization as empty", () => {
    const zero = syncHashInput(new Map([["k", Buffer.from("é")]]), { ...spc, metadata: { ...spc.metadata, generation: undefined } }, {
      ...ss,
      metadata: { ...ss.metadata, generation: undefined },
      spec: { ...ss.spec, forceSynchronization: undefined },
    });
    expect(zero.password.toString("utf8")).toBe('12:{"k":"w6k="}c0ffee00-aaaa-4bbb-8ccc-ddddeeeeffff|0|5a9e7c1e-1111-4222-8333-944455556666|0|');
  });

  it("changes with the data, the class generation, the SecretSync generation and forceSynchronization", async () => {
    const hashes = new SyncHashes({ maxEntries: 10 });
    const base = await hashes.hash(data, spc, ss);
    const variants = [
      hashes.hash(new Map([["password", Buffer.from("hunter3")]]), spc, ss),
      hashes.hash(data, { ...spc, metadata: { ...spc.metadata, generation: 8 } }, ss),
      hashes.hash(data, spc, { ...ss, metadata: { ...ss.metadata, generation: 4 } }),
      hashes.hash(data, spc, { ...ss, spec: { ...ss.spec, forceSynchronization: "rotate-2" } }),
    ];
    for (const v of await Promise.all(variants)) expect(v).not.toBe(base);
  });

  it("derives the key once per input: a rotation that finds the same data costs no PBKDF2", async () => {
    const hashes = new SyncHashes({ maxEntries: 10 });
    const first = await hashes.hash(data, spc, ss);
    for (let i = 0; i < 5; i++) expect(await hashes.hash(new Map(data), spc, ss)).toBe(first);
    expect(hashes.computed).toBe(1);
    await hashes.hash(new Map([["password", Buffer.from("new")]]), spc, ss);
    expect(hashes.computed).toBe(2);
  });

  it("remembers a bounded number of SecretSyncs, however many a tenant creates", async () => {
    const hashes = new SyncHashes({ maxEntries: 3 });
    const small = new Map([["k", Buffer.from("v")]]);
    for (let i = 0; i < 8; i++) await hashes.hash(small, spc, { ...ss, metadata: { ...ss.metadata, uid: `uid-${i}` } });
    expect(hashes.size).toBe(3);
    hashes.forget("uid-7");
    expect(hashes.size).toBe(2);
  });
});
