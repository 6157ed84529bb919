// Unit tests of the extensions' building blocks: patterns, objectTags,
// optional in the objects YAML, a pattern's matches from a list, the bounds
// on them; and the driver's reading of missing versions.
import { describe, expect, it } from "vitest";
import { checkSelection, selectMatches, type ListedEntry } from "../../../src/provider/objects/object-selection.ts";
import { carriesTags, parseObjectTags, patternRegExp } from "../../../src/provider/objects/objects.ts";
import { parseObjects } from "../../../src/provider/objects/objects-yaml.ts";
import { describeMissing, isMissingFile, missingFiles, missingObjects, missingVersion } from "../../../src/shared/provider-api/missing-objects.ts";

const yaml = (...items: string[]) => ["array:", ...items.map((i) => `  - |\n${i.split("\n").map((l) => `    ${l}`).join("\n")}`)].join("\n");

describe("patterns, objectTags and optional in the objects list", () => {
  it("reads them, with the alias of a pattern as the prefix of its files", () => {
    const { objects, unknownKeys } = parseObjects(
      yaml("objectName: fe-*\nobjectType: secret\nobjectAlias: web/\nobjectTags: env=prod, team = a", "objectName: db\nobjectType: secret\noptional: \"true\"", "objectName: db2\nobjectType: key\noptional: false"),
    );
    expect(unknownKeys).toEqual([]);
    expect(objects[0]).toMatchObject({ objectName: "fe-*", pattern: true, fileName: "web/", tags: { env: "prod", team: "a" }, optional: false });
    expect(objects[1]).toMatchObject({ objectName: "db", pattern: false, fileName: "db", tags: {}, optional: true });
    expect(objects[2]).toMatchObject({ optional: false });
  });

  it("a pattern's files are checked once it is listed, so two patterns may share a prefix", () => {
    expect(parseObjects(yaml("objectName: a-*\nobjectType: secret\nobjectAlias: x/", "objectName: b-*\nobjectType: secret\nobjectAlias: x/")).objects).toHaveLength(2);
  });

  it("refuses what a pattern cannot mean, and malformed objectTags", () => {
    const refusal = (item: string) => {
      try {
        parseObjects(yaml(item));
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error("accepted");
    };
    expect(refusal("objectName: fe_*\nobjectType: secret")).toContain('objectName pattern "fe_*" may hold only');
    expect(refusal("objectName: fe-*\nobjectType: secret\nobjectVersionHistory: 1")).toContain("objectVersionHistory cannot be given with the objectName pattern");
    expect(refusal("objectName: fe-*\nobjectType: secret\nobjectAlias: /abs/")).toContain('objectAlias "/abs/" (the prefix of every match\'s file): file name must be a relative path');
    expect(refusal("objectName: fe-*\nobjectType: secret\nobjectAlias: a//")).toContain('must be a clean path ("dir/", "dir/name-"): write "a/"');
    expect(refusal("objectName: db\nobjectType: secret\nobjectTags: a=1,a=2")).toContain('objectTags names the tag "a" twice');
    expect(refusal("objectName: db\nobjectType: secret\nobjectTags: a=1,")).toContain("is not a list of name=value pairs");
    expect(refusal(`objectName: db\nobjectType: secret\nobjectTags: ${Array.from({ length: 16 }, (_, i) => `t${i}=v`).join(",")}`)).toContain("objectTags lists 16 tags; a Key Vault object carries at most 15");
    expect(refusal(`objectName: db\nobjectType: secret\nobjectTags: a=${"v".repeat(257)}`)).toContain("a value at most 256");
  });
});

describe("matching", () => {
  it("* is any run, ? one character, case-insensitive like Key Vault names", () => {
    const r = patternRegExp("fe-?-*");
    expect(["fe-1-", "FE-a-api", "fe-x-y-z"].every((n) => r.test(n))).toBe(true);
    expect(["fe--", "fe-12-x", "xfe-1-", "fe-1"].some((n) => r.test(n))).toBe(false);
  });

  it("tags must all be there with the same value", () => {
    expect(carriesTags({ a: "1", b: "2" }, { a: "1" })).toBe(true);
    expect(carriesTags({ a: "1" }, { a: "1", b: "2" })).toBe(false);
    expect(carriesTags({ a: "1" }, { a: "2" })).toBe(false);
    expect(carriesTags(undefined, {})).toBe(true);
    expect(parseObjectTags("")).toEqual({});
  });

  it("a pattern's matches: enabled, not managed by a certificate, tagged, sorted, under the prefix", () => {
    const [pattern] = parseObjects(yaml("objectName: fe-*\nobjectType: secret\nobjectAlias: web/\nobjectTags: env=prod")).objects;
    const listed: ListedEntry[] = [
      { name: "fe-b", enabled: true, managed: false, tags: { env: "prod" } },
      { name: "FE-a", enabled: true, managed: false, tags: { env: "prod", x: "y" } },
      { name: "fe-off", enabled: false, managed: false, tags: { env: "prod" } },
      { name: "fe-cert", enabled: true, managed: true, tags: { env: "prod" } },
      { name: "fe-dev", enabled: true, managed: false, tags: { env: "dev" } },
      { name: "be-a", enabled: true, managed: false, tags: { env: "prod" } },
    ];
    const matches = selectMatches(pattern!, listed);
    expect(matches.map((m) => [m.objectName, m.fileName, m.pattern, m.index])).toEqual([
      ["FE-a", "web/FE-a", false, 0],
      ["fe-b", "web/fe-b", false, 0],
    ]);
  });

  it("bounds the matches with the mount's limits, naming the widest pattern; file clashes with named objects are refused", () => {
    const { objects } = parseObjects(yaml("objectName: a\nobjectType: secret", "objectName: x-*\nobjectType: secret", "objectName: y-*\nobjectType: secret"));
    const listed = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ name: `${prefix}${i}`, enabled: true, managed: false, tags: {} }));
    const selections = [
      { source: objects[0]!, objects: [objects[0]!] },
      { source: objects[1]!, objects: selectMatches(objects[1]!, listed("x-", 3)) },
      { source: objects[2]!, objects: selectMatches(objects[2]!, listed("y-", 5)) },
    ];
    expect(() => checkSelection(selections, { maxObjects: 9, maxFiles: 100 })).not.toThrow();
    expect(() => checkSelection(selections, { maxObjects: 8, maxFiles: 100 })).toThrow(
      'the objectName pattern "y-*" (objects[2]) matches 5 objects of type secret: with the others that makes 9 objects, more than the 8 this provider reads in one mount (--max-objects-per-mount)',
    );
    expect(() => checkSelection(selections, { maxObjects: 100, maxFiles: 8 })).toThrow(/"y-\*" \(objects\[2\]\) matches 5 .*--max-files-per-mount/);
    const clash = parseObjects(yaml("objectName: a\nobjectType: secret\nobjectAlias: x-1", "objectName: x-*\nobjectType: secret")).objects;
    expect(() => checkSelection([{ source: clash[0]!, objects: [clash[0]!] }, { source: clash[1]!, objects: selectMatches(clash[1]!, listed("x-", 2)) }], { maxObjects: 10, maxFiles: 10 })).toThrow(
      /file "x-1" would be written by both/,
    );
  });
});

describe("missing versions (shared/provider-api/missing-objects.ts)", () => {
  const versions = [
    { id: "secret/a", version: "0123456789abcdef0123456789abcdef" },
    { id: "secret/b", version: missingVersion("config/b.txt") },
    { id: "secret/h", version: missingVersion("h") },
    { id: "secret/p-*", version: missingVersion() },
  ];

  it("reads which objects an answer left out, and their files", () => {
    expect(missingObjects(versions)).toEqual([{ id: "secret/b", file: "config/b.txt" }, { id: "secret/h", file: "h" }, { id: "secret/p-*" }]);
    const files = missingFiles(versions);
    expect([...files]).toEqual(["config/b.txt", "h"]);
    expect(isMissingFile("config/b.txt", files)).toBe(true);
    expect(isMissingFile("h/0", files)).toBe(true);
    expect(isMissingFile("config", files)).toBe(false);
    expect(isMissingFile("a", files)).toBe(false);
  });

  it("names at most five in an event, each on one bounded line", () => {
    expect(describeMissing(missingObjects(versions))).toBe("secret/b (file config/b.txt), secret/h (file h), secret/p-*");
    const many = Array.from({ length: 7 }, (_, i) => ({ id: `secret/${"x".repeat(300)}\n${i}` }));
    const text = describeMissing(many);
    expect(text).not.toContain("\n");
    expect(text.endsWith(", and 2 more")).toBe(true);
    expect(text.length).toBeLessThan(5 * 210 + 20);
  });
});
