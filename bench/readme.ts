// Regenerates the README's comparison table from bench/RESULTS.md (the text
// between the README's bench markers), so the README never quotes figures the
// benchmark did not produce. `npm run bench:readme` writes it; `--check` fails
// when the README differs.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "../test/support/driver-process.ts";
import { extractTable } from "./results.ts";

export const README_START = "<!-- bench:upstream:start (generated from bench/RESULTS.md by npm run bench:readme) -->";
export const README_END = "<!-- bench:upstream:end -->";
export const RESULTS_PATH = join(REPO, "bench", "RESULTS.md");
export const README_PATH = join(REPO, "README.md");

/** The README section for a results file: its date line and its table. */
export function readmeSection(results: string): string {
  const date = /^- Date: ([^;]+);/m.exec(results)?.[1] ?? "unknown date";
  return `From [bench/RESULTS.md](bench/RESULTS.md) (${date}; method and machine there), \`npm run bench:upstream\`:\n\n${extractTable(results, "bench/RESULTS.md")}`;
}

/** The README with its bench section replaced. */
export function withSection(readme: string, section: string): string {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) throw new Error(`README.md has no ${README_START} ... ${README_END} section`);
  return `${readme.slice(0, start + README_START.length)}\n${section}\n${readme.slice(end)}`;
}

export function updateReadme(check = false): boolean {
  const readme = readFileSync(README_PATH, "utf8");
  const updated = withSection(readme, readmeSection(readFileSync(RESULTS_PATH, "utf8")));
  if (updated === readme) return true;
  if (check) return false;
  writeFileSync(README_PATH, updated);
  return true;
}

if (import.meta.main) {
  const check = process.argv.includes("--check");
  if (!updateReadme(check)) {
    console.error("README.md's performance table differs from bench/RESULTS.md; run npm run bench:readme");
    process.exit(1);
  }
  console.log(check ? "README.md matches bench/RESULTS.md" : "README.md's performance table regenerated from bench/RESULTS.md");
}
