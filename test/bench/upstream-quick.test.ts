// The side-by-side benchmark at smoke sizes (5 volumes, 30 provider Mounts),
// so it cannot rot: both stacks run in the benchmark's own namespaces, every
// row comes out with figures for both, and nothing is left behind (no memory
// cgroups, no mounts, no processes). Builds upstream's binaries on a cold
// tools cache (test/harness/install-upstream.sh); needs root.
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { extractTable } from "../../bench/results.ts";
import { REPO, requireRoot } from "../support/driver-process.ts";

const benchGroups = () => readdirSync("/sys/fs/cgroup/memory").filter((d) => d.startsWith("sscsi-bench-"));
const benchMounts = () =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.includes("/bench-upstream-"));

describe("npm run bench:upstream -- --quick", () => {
  it("prints and writes every row for both stacks and cleans up after itself", { timeout: 900_000 }, async () => {
    requireRoot();
    const groupsBefore = benchGroups();
    const dir = await mkdtemp(join(tmpdir(), "bench-quick-"));
    try {
      const out = join(dir, "RESULTS.md");
      const { stdout } = await promisify(execFile)(process.execPath, [join(REPO, "bench", "upstream.ts"), "--quick", `--out=${out}`], {
        cwd: REPO,
        maxBuffer: 16 * 1024 * 1024,
        timeout: 880_000,
      });
      const table = extractTable(readFileSync(out, "utf8"));
      expect(stdout).toContain(table);
      const rows = table.split("\n").slice(2);
      expect(rows.length).toBe(21);
      for (const row of rows) {
        const [figure, ours, upstream, ratio] = row.split(/(?<!\\)\|/).slice(1, 5).map((c) => c.trim());
        expect(ours, figure).toMatch(/\d/);
        expect(upstream, figure).toMatch(/\d/);
        if (!figure!.startsWith("Driver with")) expect(ratio, figure).toMatch(/^\d+(\.\d+)?×$/);
      }
      // Five volumes fit in 128 MiB for both drivers, and every publish worked.
      expect(rows.find((r) => r.includes("inside a 128 MiB"))).toMatch(/0 OOM kills, 0 of 5 publishes failed.*0 OOM kills, 0 of 5 publishes failed/);
      expect(readFileSync(out, "utf8")).toContain("monis.app/mlog");
      expect(benchGroups().filter((g) => !groupsBefore.includes(g))).toEqual([]);
      expect(benchMounts()).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
