import { describe, expect, it } from "vitest";
import { assertSafeFilePaths, filePathProblem } from "../../../src/shared/provider-api/file-paths.ts";

describe("provider file paths", () => {
  it.each([
    ["a", undefined],
    ["dir/file", undefined],
    ["a.b-c_d", undefined],
    ["", "the path is empty"],
    ["/abs", "the path is absolute"],
    ["../x", "the path contains a '..' element"],
    ["a/../b", "the path contains a '..' element"],
    ["..x", "the path starts with '..'"],
    ["./a", "the path is not in clean form (e.g. './a', 'a//b', 'a/')"],
    ["a//b", "the path is not in clean form (e.g. './a', 'a//b', 'a/')"],
    ["a/", "the path is not in clean form (e.g. './a', 'a//b', 'a/')"],
    ["x".repeat(256), "the path has an element longer than 255 bytes"],
    // 200 characters but 400 bytes: the kernel counts bytes.
    ["é".repeat(200), "the path has an element longer than 255 bytes"],
    ["é".repeat(127), undefined],
    [`${"d/".repeat(2048)}x`, "the path is longer than 4096 bytes"],
    ["new\nline", "the path contains a control character (newline, tab, NUL, ...)"],
    ["carriage\rreturn", "the path contains a control character (newline, tab, NUL, ...)"],
    ["tab\there", "the path contains a control character (newline, tab, NUL, ...)"],
    ["nul\0byte", "the path contains a control character (newline, tab, NUL, ...)"],
  ])("%j -> %s", (path, problem) => {
    expect(filePathProblem(path)).toBe(problem);
  });

  it("names every bad path and duplicates", () => {
    expect(() => assertSafeFilePaths(["ok", "../x", "ok"])).toThrow(
      `invalid file paths from provider: "../x": the path contains a '..' element; "ok": returned more than once`,
    );
    expect(() => assertSafeFilePaths(["d", "d/x"])).toThrow(`"d": is both a file and a directory`);
    // A control character is shown escaped, so the error stays one line.
    expect(() => assertSafeFilePaths(["a\nb"])).toThrow(`"a\\nb": the path contains a control character`);
  });
});
