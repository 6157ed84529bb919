// Unit tests of the objects parser's cache: pods of one class share a parse,
// nothing can change the shared result, and refusals are never cached.
import { describe, expect, it } from "vitest";
import { ObjectsParser } from "../../../src/provider/objects/objects-parser.ts";

const LIMITS = { maxObjects: 1000, maxFiles: 5000 };
const list = (...names: string[]) => ["array:", ...names.flatMap((n) => ["  - |", `    objectName: ${n}`, "    objectType: secret"])].join("\n");
const deadline = () => Date.now() + 10_000;

describe("objects parser cache", () => {
  it("gives the same frozen result for the same list and limits", async () => {
    const parser = new ObjectsParser();
    const first = await parser.parse(list("a", "b"), LIMITS, deadline());
    const second = await parser.parse(list("a", "b"), LIMITS, deadline());
    expect(second).toBe(first);
    expect(first.objects.map((o) => o.objectName)).toEqual(["a", "b"]);
    expect(() => {
      (first.objects[0] as { objectName: string }).objectName = "changed";
    }).toThrow(TypeError);
    expect(() => (first.objects as unknown[]).push({})).toThrow(TypeError);
    parser.close();
  });

  it("parses again for other text or other limits", async () => {
    const parser = new ObjectsParser();
    const ab = await parser.parse(list("a", "b"), LIMITS, deadline());
    expect(await parser.parse(list("a", "c"), LIMITS, deadline())).not.toBe(ab);
    await expect(parser.parse(list("a", "b"), { maxObjects: 1, maxFiles: 5000 }, deadline())).rejects.toThrow(/more than the 1 this provider accepts/);
    parser.close();
  });

  it("does not cache a refusal", async () => {
    const parser = new ObjectsParser();
    const bad = list("a").replace("secret", "bogus");
    await expect(parser.parse(bad, LIMITS, deadline())).rejects.toThrow(/Invalid vaultObjectTypes/);
    await expect(parser.parse(bad, LIMITS, deadline())).rejects.toThrow(/Invalid vaultObjectTypes/);
    parser.close();
  });
});
