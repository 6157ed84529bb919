import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseQuerySecrets, QuerySecrets } from "../../../src/controller/events/query-secrets.ts";

const dir = mkdtempSync(join(tmpdir(), "query-secrets-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const OLD = "old-secret-0123456789abcdef";
const NEW = "new-secret-0123456789abcdef";

describe("query secrets", () => {
  it("accepts one or two secrets of a usable length, and says why otherwise", () => {
    expect(parseQuerySecrets(`${NEW}\n\n${OLD}\n`, "f")).toEqual([NEW, OLD]);
    expect(() => parseQuerySecrets("\n \n", "f")).toThrow("f holds no query secret");
    expect(() => parseQuerySecrets(`${NEW}\n${OLD}\nthird-secret-0123456789`, "f")).toThrow("at most 2");
    expect(() => parseQuerySecrets("short", "f")).toThrow("query secret 1 has 5 characters");
  });

  it("matches either secret during a rotation, and picks up a changed file", () => {
    const path = join(dir, "secrets");
    writeFileSync(path, `${NEW}\n${OLD}\n`);
    let now = 0;
    const secrets = new QuerySecrets(path, () => now);
    expect([secrets.matches(NEW), secrets.matches(OLD), secrets.matches("new-secret-0123456789abcdeX"), secrets.matches(""), secrets.matches(null)]).toEqual([true, true, false, false, false]);
    // The rotation is over: the old one goes.
    writeFileSync(path, `${NEW}\n`);
    now += 10_000;
    expect([secrets.matches(NEW), secrets.matches(OLD)]).toEqual([true, false]);
    // A broken file keeps the secrets in use and says why.
    writeFileSync(path, "");
    now += 10_000;
    expect(secrets.matches(NEW)).toBe(true);
    expect(secrets.lastError).toContain("holds no query secret");
  });

  it("refuses to start without a usable file", () => {
    expect(() => new QuerySecrets(join(dir, "missing"))).toThrow(/ENOENT/);
  });
});
