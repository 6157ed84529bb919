// The lint's output: one block per class for people, or one JSON document
// for pipelines. Names and messages come from the manifests, so in text every
// control character is shown escaped (a class named "x\n0 refused here" or
// one carrying terminal escape sequences cannot forge or hide a line); JSON
// escapes them itself.
import type { ClassReport, Finding } from "./check-class.ts";

/** Characters that would break a line or drive a terminal: C0, DEL, C1, line and paragraph separators, bidi controls. */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const SHORT_ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** `text` with every control character escaped (\n, \t, \u001b, ...), so it prints as one line of plain text. */
export function printable(text: unknown): string {
  return String(text).replace(UNPRINTABLE, (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

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

/** A message for one line: a line break and the indentation after it read as one space; other controls escaped. */
function messageLine(text: string): string {
  return printable(text.replace(/[ \t]*(\r\n|[\r\n])[ \t]*/g, " "));
}

function findingLines(f: Finding): string[] {
  const label = f.kind === "refused" ? "refused" : f.kind === "differs" ? "differs" : "note";
  const lines = [`  ${label}: ${printable(f.subject)}: ${messageLine(f.message)}`];
  if (f.kind === "refused" && f.upstream) lines.push(`    upstream: ${UPSTREAM_TEXT[f.upstream]}${f.upstreamDetail ? `: ${messageLine(f.upstreamDetail)}` : ""}`);
  return lines;
}

export function formatText(result: LintResult): string {
  const lines: string[] = [];
  for (const c of result.classes) {
    lines.push(`${printable(c.namespace)}/${printable(c.name)} (${printable(c.source)}): ${VERDICT_TEXT[c.verdict]}`);
    for (const f of c.findings) lines.push(...findingLines(f));
  }
  const s = result.summary;
  lines.push(`${s.classes} SecretProviderClass${s.classes === 1 ? "" : "es"}: ${s.fine} fine, ${s.refused} refused here, ${s.differs} mount differently from upstream`);
  return lines.join("\n") + "\n";
}

export function formatJson(result: LintResult): string {
  return JSON.stringify(result, null, 2) + "\n";
}
