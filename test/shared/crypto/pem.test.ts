import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { decodePemBlocks, encodePem } from "../../../src/shared/crypto/pem.ts";

describe("PEM helpers", () => {
  it("encodes with 64-character lines and decodes what it encodes", () => {
    const bytes = randomBytes(200);
    const pem = encodePem("CERTIFICATE", bytes);
    const body = pem.split("\n").slice(1, -2);
    expect(body.slice(0, -1).every((l) => l.length === 64)).toBe(true);
    expect(body.at(-1)!.length).toBeLessThanOrEqual(64);
    expect(body.join("")).toBe(bytes.toString("base64"));
    expect(decodePemBlocks(Buffer.from(pem))[0]!.bytes.equals(bytes)).toBe(true);
  });

  it("skips blocks with a broken body or mismatched END", () => {
    const good = encodePem("CERTIFICATE", Buffer.from("abc"));
    const text = `-----BEGIN CERTIFICATE-----\n!!notbase64!!\n-----END CERTIFICATE-----\n-----BEGIN X-----\nYWJj\n-----END Y-----\n${good}`;
    const blocks = decodePemBlocks(Buffer.from(text));
    expect(blocks.map((b) => [b.type, b.bytes.toString()])).toEqual([["CERTIFICATE", "abc"]]);
  });
});
