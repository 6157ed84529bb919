// Validation of the file paths a provider returns, before anything is written:
// every path relative, normalised, inside the volume (reference driver-spec §3.4).
import { posix } from "node:path";
import { pathNameProblem } from "../path-names.ts";

/** Returns why the path is unsafe, or undefined if it may be written. */
export function filePathProblem(path: string): string | undefined {
  if (path === "") return "the path is empty";
  const nameProblem = pathNameProblem(path);
  if (nameProblem) return `the path ${nameProblem}`;
  if (posix.isAbsolute(path)) return "the path is absolute";
  const elements = path.split("/");
  if (elements.some((e) => e === "..")) return "the path contains a '..' element";
  if (elements[0]!.startsWith("..")) return "the path starts with '..'";
  if (posix.normalize(path) !== path || path.endsWith("/") || path === ".") return "the path is not in clean form (e.g. './a', 'a//b', 'a/')";
  return undefined;
}

/** Throws an error naming every bad path, and duplicate paths. */
export function assertSafeFilePaths(paths: readonly string[]): void {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const path of paths) {
    const problem = filePathProblem(path);
    if (problem) problems.push(`${JSON.stringify(path)}: ${problem}`);
    else if (seen.has(path)) problems.push(`${JSON.stringify(path)}: returned more than once`);
    seen.add(path);
  }
  // A file and a directory of the same name cannot both exist.
  for (const path of seen) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      if (seen.has(parent)) problems.push(`"${parent}": is both a file and a directory`);
    }
  }
  if (problems.length > 0) throw new Error(`invalid file paths from provider: ${problems.join("; ")}`);
}
