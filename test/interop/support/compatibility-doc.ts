// docs/compatibility.md from the parity test's outcomes: one row per class,
// what upstream's pair did with it, what ours did, and what the lint says.
// Only facts that do not change between runs go in (no version ids, no
// addresses), so a run regenerates the committed file byte for byte.
import type { ClassReport } from "../../../src/lint/check-class.ts";
import type { ParityCase } from "../parity-cases.ts";
import type { Answer, PairOutcome } from "./parity.ts";
import { FLAG_SETTINGS } from "./world.ts";

export interface CaseResult {
  case: ParityCase;
  outcomes: PairOutcome[];
  lint: ClassReport;
}

const DECISIONS: Record<string, string> = {
  same: "mounts the same files",
  normalised: "mounts; upstream's driver refuses it",
  refused: "refused here; upstream mounts a broken volume",
  limit: "refused here; upstream mounts it",
  "both-refuse": "both refuse",
  extension: "an extension of this provider (README): upstream's provider fails the mount or ignores the feature",
};

const LINT_TEXT: Record<ClassReport["verdict"], string> = { fine: "fine", refused: "refused here", differs: "mounts differently" };

/** Facts that vary between runs, masked. */
function stable(text: string): string {
  return text
    .replace(/\b[0-9a-f]{32}\b/g, "<version>")
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, "<uuid>")
    .replace(/\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?Z?\b/g, "<time>")
    .replace(/\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(:\d+)?\b/g, "<address>");
}

function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\s*\n\s*/g, " ");
}

const code = (text: string) => `\`${text.replace(/`/g, "'")}\``;

/**
 * An error as a user reads it, on one line: without the common prefix, and
 * for the Go SDK's multi-line dumps the lines before the response body.
 */
function errorText(error: { code: string; message: string }, showCode: boolean): string {
  const lines: string[] = [];
  for (const raw of error.message.replace(/^failed to mount objects, error: /, "").split("\n")) {
    const line = raw.trim();
    if (line.startsWith("{") || line.startsWith("To troubleshoot")) break;
    if (line !== "" && !/^-+$/.test(line)) lines.push(line);
  }
  // the resolver is the machine's, not the test's
  const text = stable(lines.join(" ")).replace(/(lookup \S+) on \S+: .*/, "$1: <resolver error>");
  return `${showCode ? `${error.code}: ` : ""}${code(text.length > 240 ? `${text.slice(0, 237)}...` : text)}`;
}

/** A path with control characters shown as escapes. */
const pathText = (path: string) => code(JSON.stringify(path).slice(1, -1));

function filesText(answer: Answer): string {
  if ("error" in answer) return "";
  if (answer.ok.files.length === 0) return "no files";
  return answer.ok.files.map((f) => `${pathText(f.path)} ${(f.mode & 0o7777).toString(8).padStart(4, "0")}`).join(", ");
}

const SETTING_TITLES: Record<string, string> = {
  defaults: "",
  "no-chain": "--construct-pem-chain=false",
  separate: "--write-cert-and-key-in-separate-files",
  "no-chain+separate": "both flags",
};

/** The same text for every flag setting once, else one part per distinct text. */
function perSetting(outcomes: PairOutcome[], text: (o: PairOutcome) => string): string {
  const groups = new Map<string, string[]>();
  for (const o of outcomes) groups.set(text(o), [...(groups.get(text(o)) ?? []), o.setting]);
  if (groups.size === 1) return [...groups.keys()][0]!;
  return [...groups.entries()].map(([t, settings]) => (settings.includes("defaults") ? t : `with ${settings.map((s) => SETTING_TITLES[s]).join(", ")}: ${t}`)).join("; ");
}

function upstreamText(c: ParityCase, o: PairOutcome): string {
  if ("error" in o.upstream) return `fails: ${errorText(o.upstream.error, false)}`;
  if (o.upstreamProblem) return `${filesText(o.upstream)}: ${stable(o.upstreamProblem)}`;
  return filesText(o.upstream);
}

function hereText(c: ParityCase, o: PairOutcome): string {
  if ("error" in o.ours) return `${o.outcome === "both-refuse" ? "fails" : "refused"}: ${errorText(o.ours.error, true)}`;
  if (o.outcome === "same") return "the same files and versions";
  if (o.outcome === "extension" && o.ours.ok.files.length > 0 && o.ours.ok.object_version.some((v) => v.version.startsWith("(missing)"))) {
    return `${filesText(o.ours)}; ${o.ours.ok.object_version.filter((v) => v.version.startsWith("(missing)")).map((v) => `${code(v.id)} reported ${code(v.version)}`).join(", ")}`;
  }
  if (o.outcome === "extension" && o.ours.ok.files.length === 0) {
    return `no files; ${o.ours.ok.object_version.map((v) => `${code(v.id)} reported ${code(v.version)}`).join(", ")}`;
  }
  return filesText(o.ours);
}

function lintText(report: ClassReport): string {
  const refusal = report.findings.find((f) => f.kind === "refused");
  const upstream = refusal?.upstream ? ` (upstream ${refusal.upstream === "refuses" ? "fails too" : refusal.upstream === "breaks" ? "breaks it" : refusal.upstream === "mounts" ? "mounts it" : "?"})` : "";
  const warned = report.verdict !== "refused" && report.findings.some((f) => f.kind !== "refused" && f.subject !== "identity") ? ", warns" : "";
  return `${LINT_TEXT[report.verdict]}${upstream}${warned}`;
}

export function compatibilityMarkdown(results: CaseResult[]): string {
  const count = (outcome: string) => results.filter((r) => r.case.expect.outcome === outcome).length;
  const lines: string[] = [
    "# Compatibility with the upstream Azure provider and driver, as tested",
    "",
    "<!-- Generated by test/interop/provider-parity.test.ts; do not edit. Regenerate with",
    "     SSCSI_WRITE_COMPATIBILITY=1 npx vitest run test/interop/provider-parity.test.ts -->",
    "",
    "Every row is a SecretProviderClass sent as the same Mount request to upstream's Azure provider",
    "(secrets-store-csi-driver-provider-azure v1.8.2, the Go binary built from the Go module proxy) and to this",
    "provider, against one Key Vault emulator, under four settings of the provider flags",
    `(${FLAG_SETTINGS.map((s) => code(s.id)).join(", ")}: \`--construct-pem-chain\` and \`--write-cert-and-key-in-separate-files\`).`,
    "Where upstream's answer is a valid volume, this provider's answer is byte-identical: the same paths, modes,",
    "contents and object versions, in the same order. Whether upstream's answer is a valid volume follows the rules",
    "of upstream's driver v1.6.0 (at least one object version, clean relative paths, no path written twice, no",
    "file that is also a directory) plus readable files (not mode 0) and no dropped mode bits; the driver interop",
    "tests (`test/interop/driver-interop.cluster.test.ts`) confirm those against the real upstream driver.",
    "",
    `${results.length} classes: ${count("same")} mount the same files, ${count("normalised")} mount here although upstream's driver`,
    `refuses them, ${count("refused")} are refused here because upstream mounts a broken volume, ${count("limit")} are refused here by a`,
    `bound or an unsupported feature of this provider, ${count("both-refuse")} fail on both, and ${count("extension")} use an extension of this`,
    "provider (objectName patterns, objectTags, optional) that upstream's provider fails on or ignores.",
    "",
    "Error texts below leave out the prefix every Mount error has (`failed to mount objects, error: `). Upstream",
    "returns every error as gRPC `Unknown`; this provider's codes are in front of its texts. The last column is",
    "what `secrets-store-csi-lint` says about the class before any pod mounts it (it cannot know what Key Vault",
    "holds, so classes that fail only when Key Vault answers are `fine` to it).",
    "",
    "| Decision | Meaning |",
    "|---|---|",
    ...Object.entries(DECISIONS).map(([k, v]) => `| ${k} | ${v} |`),
  ];
  const groups = [...new Set(results.map((r) => r.case.group))];
  for (const group of groups) {
    lines.push("", `## ${group}`, "", "| Class | Decision | Upstream v1.8.2 | Here | Lint |", "|---|---|---|---|---|");
    for (const r of results.filter((x) => x.case.group === group)) {
      const upstream = perSetting(r.outcomes, (o) => upstreamText(r.case, o));
      const here = perSetting(r.outcomes, (o) => hereText(r.case, o));
      lines.push(`| ${cell(r.case.title)} (${code(r.case.id)}) | ${r.case.expect.outcome} | ${cell(upstream)} | ${cell(here)} | ${cell(lintText(r.lint))} |`);
    }
  }
  return lines.join("\n") + "\n";
}
