// Unit tests of the objects parser's cache: pods of one class share a parse,
// nothing can change the shared result, and refusals are never cached; a
// worker that runs out of heap is the list's fault, not an internal error.
import { describe, expect, it } from "vitest";
import { status } from "@grpc/grpc-js";
import { ObjectsParser, workerFailure } from "../../../src/provider/objects/objects-parser.ts";

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

describe("objects parser worker", () => {
  it("identical large lists parsed at the same time share one parse in the worker", async () => {
    const parser = new ObjectsParser();
    const big = list(...Array.from({ length: 300 }, (_, i) => `object-with-a-longer-name-${i}`));
    expect(big.length).toBeGreaterThan(16 * 1024);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => parser.parse(big, LIMITS, deadline(), `ns-${i}`)));
    expect(parser.offloaded).toBe(1);
    expect(results.every((r) => r === results[0] && r.objects.length === 300)).toBe(true);
    // not cached above 16 KiB: the next one is parsed again
    await parser.parse(big, LIMITS, deadline(), "ns-0");
    expect(parser.offloaded).toBe(2);
    parser.close();
  });

  it("a worker out of heap is InvalidArgument naming the limit; any other failure is Internal", () => {
    const oom = Object.assign(new Error("Worker terminated due to reaching memory limit: JS heap out of memory"), { code: "ERR_WORKER_OUT_OF_MEMORY" });
    expect([workerFailure(oom).code, workerFailure(oom).message]).toEqual([
      status.INVALID_ARGUMENT,
      "the objects list needs more memory to parse than the 56 MiB one list may use: list fewer objects, or write them more simply",
    ]);
    expect(workerFailure(new TypeError("x")).code).toBe(status.INTERNAL);
  });
});
