// The lint's output: one block per class for people, or one JSON document
// for pipelines.
import type { ClassReport, Finding } from "./check-class.ts";

export interface LintResult {
  classes: ClassReport[];
  summary: { classes: number; fine: number; refused: number; differs: number };
}

export function summarise(classes: ClassReport[]): LintResult {
  const count = (v: ClassReport["verdict"]) => classes.filter((c) => c.verdict === v).length;
  return { classes, summary: { classes: classes.length, fine: count("fine"), refused: count("refused"), differs: count("differs") } };
}

const VERDICT_TEXT: Record<ClassReport["verdict"], string> = {
  fine: "fine",
  refused: "refused here",
  differs: "mounts differently from upstream",
};

const UPSTREAM_TEXT: Record<NonNullable<Finding["upstream"]>, string> = {
  refuses: "fails too",
  breaks: "mounts a broken volume",
  mounts: "mounts it",
  unknown: "not known",
};

function findingLines(f: Finding): string[] {
  const label = f.kind === "refused" ? "refused" : f.kind === "differs" ? "differs" : "note";
  const lines = [`  ${label}: ${f.subject}: ${f.message}`];
  if (f.kind === "refused" && f.upstream) lines.push(`    upstream: ${UPSTREAM_TEXT[f.upstream]}${f.upstreamDetail ? `: ${f.upstreamDetail}` : ""}`);
  return lines;
}

export function formatText(result: LintResult): string {
  const lines: string[] = [];
  for (const c of result.classes) {
    lines.push(`${c.namespace}/${c.name} (${c.source}): ${VERDICT_TEXT[c.verdict]}`);
    for (const f of c.findings) lines.push(...findingLines(f));
  }
  const s = result.summary;
  lines.push(`${s.classes} SecretProviderClass${s.classes === 1 ? "" : "es"}: ${s.fine} fine, ${s.refused} refused here, ${s.differs} mount differently from upstream`);
  return lines.join("\n") + "\n";
}

export function formatJson(result: LintResult): string {
  return JSON.stringify(result, null, 2) + "\n";
}
