// The README's performance table is the one bench/RESULTS.md holds, and the
// table renders figures and ratios from the measured numbers.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { README_END, README_PATH, README_START, RESULTS_PATH, readmeSection, withSection } from "../../bench/readme.ts";
import { extractTable, renderTable, tableRows } from "../../bench/results.ts";
import { FULL, type StackFigures } from "../../bench/scenarios.ts";

function figures(scale: number): StackFigures {
  const memory = (rssMiB: number) => ({ rssMiB, cgroup: { usageMiB: rssMiB / 2, anonMiB: rssMiB / 3, tmpfsMiB: 1, maxUsageMiB: rssMiB } });
  return {
    driverStartMs: [10 * scale, 30 * scale, 20 * scale],
    providerStartMs: [5 * scale],
    driverIdle: memory(40 * scale),
    providerIdle: memory(20 * scale),
    driverAt: { volumes: memory(45 * scale), moreVolumes: memory(40 * scale + 250 / 1024) },
    providerAt: { volumes: memory(25 * scale), moreVolumes: memory(26 * scale) },
    publishSequentialMs: [70 * scale, 71 * scale, 72 * scale],
    publishConcurrentMs: [100 * scale],
    unpublishMs: [5 * scale],
    providerConcurrentMs: [180 * scale],
    providerColdMs: [170 * scale],
    soak: { mounts: 14_000, startRssMiB: 30, endRssMiB: 30 * scale, idleRssMiB: 29, peakRssMiB: 31 * scale },
    rotationReadsPerInterval: scale === 1 ? 500 : 10,
    limited: { volumes: 250, failedPublishes: 0, oomKills: 0, failCount: 0, peakMiB: 50, driverSurvived: true },
    boot: {
      oneIdentity: { publishMs: Array.from({ length: 110 }, (_, i) => (i + 1) * scale), keyVaultReads: scale === 1 ? 1100 : 10, challenges: scale === 1 ? 110 : 1, tokenRequests: scale === 1 ? 110 : 1 },
      ownIdentities: { publishMs: [50 * scale], keyVaultReads: 1100, challenges: scale === 1 ? 110 : 1, tokenRequests: 110 },
    },
  };
}

describe("the comparison table", () => {
  const rows = tableRows(figures(2), figures(1), FULL);
  const row = (prefix: string) => rows.find((r) => r.figure.startsWith(prefix))!;

  it("has every figure of the comparison, with both stacks and a ratio of ours to upstream", () => {
    for (const prefix of [
      "Driver idle RSS",
      "Provider idle RSS",
      "Driver RSS with 200 volumes",
      "Driver RSS with 250 volumes",
      "Provider RSS after serving 200",
      "Provider RSS over 14,000 Mounts",
      "Start to answering Probe",
      "Start to answering Version",
      "Publish, warm, sequential p50",
      "Publish, 20 concurrent p50",
      "Unpublish per volume",
      "Provider: 10 concurrent Mounts",
      "Provider: cold Mount",
      "Key Vault reads per rotation interval, 50 pods",
      "Driver with 250 volumes inside a 128 MiB memory cgroup",
      "Node boot, 110 pods publishing at once, one class, one identity: time to OK",
      "Node boot, 110 pods publishing at once, one class, one identity: Key Vault reads",
      "Node boot, 110 pods publishing at once, each its own identity: time to OK",
      "Node boot, 110 pods publishing at once, each its own identity: Key Vault reads",
    ]) {
      expect(row(prefix), prefix).toBeDefined();
    }
    expect(row("Driver idle RSS")).toMatchObject({ ours: expect.stringMatching(/^80\.0 MiB \(cgroup 40\.0 MiB: anon 26\.7 MiB\)$/), ratio: "2.0×" });
    expect(row("Start to answering Probe")).toMatchObject({ ours: "40 ms", upstream: "20 ms", ratio: "2.0×" });
    expect(row("Key Vault reads")).toMatchObject({ ours: "10", upstream: "500", ratio: "0.02×" });
    expect(row("Driver RSS growth per volume")).toMatchObject({ upstream: "1 KiB" });
    expect(row("Driver with 250 volumes").ours).toBe("0 OOM kills, 0 of 250 publishes failed (peak 50.0 MiB, failcnt 0)");
    expect(row("Node boot, 110 pods publishing at once, one class, one identity: time to OK")).toMatchObject({ ours: "110 ms / 218 ms", upstream: "55 ms / 109 ms", ratio: "2.0×" });
    expect(row("Node boot, 110 pods publishing at once, one class, one identity: Key Vault")).toMatchObject({ ours: "10 / 1 / 1", upstream: "1100 / 110 / 110", ratio: "0.01×" });
    expect(row("Node boot, 110 pods publishing at once, each its own identity: Key Vault reads / challenges / token requests")).toMatchObject({ ours: "1100 / 1 / 110", upstream: "1100 / 110 / 110", ratio: "1.0×" });
  });

  it("escapes cell text that would end a Markdown cell", () => {
    expect(renderTable([{ figure: "a | b", ours: "1", upstream: "2", ratio: "0.5×" }]).split("\n")[2]).toBe("| a \\| b | 1 | 2 | 0.5× |");
  });
});

describe("README performance section", () => {
  it("is the table of bench/RESULTS.md (regenerate with npm run bench:readme)", () => {
    const readme = readFileSync(README_PATH, "utf8");
    const results = readFileSync(RESULTS_PATH, "utf8");
    const section = readme.slice(readme.indexOf(README_START) + README_START.length, readme.indexOf(README_END)).trim();
    expect(section).toBe(readmeSection(results).trim());
    expect(section).toContain(extractTable(results));
    expect(extractTable(results).split("\n").length).toBeGreaterThan(10);
  });

  it("replaces only the text between the markers", () => {
    const readme = `# x\n\n${README_START}\nold\n${README_END}\n\nafter\n`;
    expect(withSection(readme, "new")).toBe(`# x\n\n${README_START}\nnew\n${README_END}\n\nafter\n`);
    expect(() => withSection("# no markers\n", "new")).toThrow(/no <!-- bench:upstream:start/);
  });
});
