// Provider parity: every case of parity-cases.ts goes as the same Mount
// request to upstream's Azure provider (v1.8.2, the Go binary) and to ours,
// under each setting of --construct-pem-chain and
// --write-cert-and-key-in-separate-files, against one Key Vault emulator.
// Where upstream's answer is a valid volume, ours must be byte-identical
// (paths, modes, contents, object versions); every other decision is the
// one the case pins. secrets-store-csi-lint must predict each decision, and
// docs/compatibility.md is generated from the outcomes: the test fails when
// the committed file differs (SSCSI_WRITE_COMPATIBILITY=1 rewrites it).
import { readFile, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkClass } from "../../src/lint/check-class.ts";
import { PARITY_CASES, type ParityCase } from "./parity-cases.ts";
import { compatibilityMarkdown, type CaseResult } from "./support/compatibility-doc.ts";
import { caseParameters, runOnPair } from "./support/parity.ts";
import { FLAG_SETTINGS, POD, startWorld, type World } from "./support/world.ts";

const DOC = resolve(import.meta.dirname, "../../docs/compatibility.md");

let world: World;
const results = new Map<string, CaseResult>();

beforeAll(async () => {
  world = await startWorld();
}, 300_000);

afterAll(async () => {
  await world?.stop();
});

function expectedLint(c: ParityCase): NonNullable<ParityCase["lint"]> {
  if (c.lint) return c.lint;
  switch (c.expect.outcome) {
    case "same":
      return { verdict: "fine" };
    case "normalised":
      return { verdict: "differs" };
    case "refused":
      return { verdict: "refused", upstream: "breaks" };
    case "limit":
      return { verdict: "refused", upstream: "mounts" };
    case "both-refuse":
      return { verdict: "refused", upstream: "refuses" };
    case "extension":
      return { verdict: "differs" };
  }
}

describe("provider parity with upstream v1.8.2", () => {
  it("has at least 60 cases with unique ids, run under every provider flag setting", () => {
    expect(PARITY_CASES.length).toBeGreaterThanOrEqual(60);
    expect(new Set(PARITY_CASES.map((c) => c.id)).size).toBe(PARITY_CASES.length);
    expect(world.pairs.map((p) => p.setting.id)).toEqual(FLAG_SETTINGS.map((s) => s.id));
  });

  for (const c of PARITY_CASES) {
    it(`${c.id}: ${c.title}`, async () => {
      const outcomes = await Promise.all(world.pairs.map((pair) => runOnPair(c, world, pair)));
      const lint = await checkClass(
        { apiVersion: "secrets-store.csi.x-k8s.io/v1", kind: "SecretProviderClass", metadata: { name: c.id, namespace: POD.namespace }, spec: { provider: "azure", parameters: await caseParameters(c, world) } },
        "parity-cases.ts",
      );
      results.set(c.id, { case: c, outcomes, lint });

      for (const r of outcomes) {
        const detail = JSON.stringify({
          setting: r.setting,
          difference: r.difference,
          upstreamProblem: r.upstreamProblem,
          upstream: "error" in r.upstream ? r.upstream.error : r.upstream.ok.files.map((f) => f.path),
          ours: "error" in r.ours ? r.ours.error : r.ours.ok.files.map((f) => f.path),
        });
        expect(r.outcome, detail).toBe(c.expect.outcome);
        if (c.expect.outcome === "refused" || c.expect.outcome === "normalised") expect(r.upstreamProblem, detail).toMatch(c.expect.upstream);
        if (c.expect.outcome === "both-refuse" && c.expect.upstream && "error" in r.upstream) expect(r.upstream.error.message, detail).toMatch(c.expect.upstream);
        if ("here" in c.expect && c.expect.here instanceof RegExp && "error" in r.ours) expect(r.ours.error.message, detail).toMatch(c.expect.here);
      }

      // the lint predicts it from the class alone
      const want = expectedLint(c);
      const lintDetail = JSON.stringify(lint.findings);
      expect(lint.verdict, lintDetail).toBe(want.verdict);
      if (want.upstream) expect(lint.findings.find((f) => f.kind === "refused")?.upstream, lintDetail).toBe(want.upstream);
      if (lint.verdict === "refused" && "error" in outcomes[0]!.ours) {
        // the lint's refusal is the provider's own message
        expect(outcomes[0]!.ours.error.message, lintDetail).toContain(lint.findings.find((f) => f.kind === "refused")!.message);
      }
      const warning = "warning" in c.expect ? c.expect.warning : undefined;
      if (warning) expect(lint.findings.some((f) => f.kind !== "refused" && warning.test(f.message)), lintDetail).toBe(true);
    }, 180_000);
  }

  it("docs/compatibility.md is what this run generates", async () => {
    expect(results.size, "every case ran").toBe(PARITY_CASES.length);
    const generated = compatibilityMarkdown(PARITY_CASES.map((c) => results.get(c.id)!));
    if (process.env.SSCSI_WRITE_COMPATIBILITY === "1") await writeFile(DOC, generated);
    const committed = await readFile(DOC, "utf8").catch(() => "");
    expect(committed, "docs/compatibility.md is stale: regenerate it with SSCSI_WRITE_COMPATIBILITY=1 npx vitest run test/interop/provider-parity.test.ts").toBe(generated);
  });
});
