// When the data of a Secret a SecretSync writes counts as a change for
// restart on rotation: new data written, or, when a workload records content
// for the Secret, the data a new leader sees first.
import { describe, expect, it } from "vitest";
import { SecretContents } from "../../../src/controller/rollout/secret-content.ts";
import type { SecretSync } from "../../../src/controller/api/secret-sync.ts";

const ss = { metadata: { name: "app-secrets", namespace: "team-a", uid: "uid-1" } } as unknown as SecretSync;
const data = (value: string) => new Map([["password", Buffer.from(value)]]);
const objects = [{ id: "secret/db-password", version: "1" }];

describe("secret contents", () => {
  it("a first reconcile that wrote nothing is no change, unless a workload records content for the Secret", async () => {
    const contents = new SecretContents({ maxEntries: 10 });
    expect(await contents.observe(ss, data("v1"), objects, false)).toBeUndefined();
    const other = new SecretContents({ maxEntries: 10 });
    const first = await other.observe(ss, data("v1"), objects, false, true);
    expect(first).toMatchObject({ namespace: "team-a", secret: "app-secrets", known: false, versions: "" });
    expect(first!.hash).toMatch(/^[0-9a-f]{32}$/);
    // The same data again, or seen before: no change, whatever the flag.
    expect(await other.observe(ss, data("v1"), objects, false, true)).toBeUndefined();
    expect(await other.observe(ss, data("v1"), objects, true, true)).toBeUndefined();
  });

  it("new data written is a change the process saw coming, with the same hash for the same data", async () => {
    const contents = new SecretContents({ maxEntries: 10 });
    const seen = await new SecretContents({ maxEntries: 10 }).observe(ss, data("v2"), objects, false, true);
    await contents.observe(ss, data("v1"), objects, true);
    const change = await contents.observe(ss, data("v2"), [{ id: "secret/db-password", version: "2" }], true);
    expect(change).toMatchObject({ known: true, versions: "secret/db-password version 2", hash: seen!.hash });
  });
});
