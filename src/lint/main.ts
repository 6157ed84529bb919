#!/usr/bin/env node
// secrets-store-csi-lint: checks SecretProviderClasses before a cluster swaps
// the upstream driver or Azure provider for ours. For each class it prints
// fine, refused here (why, what to change, and what upstream does), or
// mounts differently from upstream (what), using the driver's and the
// provider's own checks. Exit status: 0 when nothing is refused, 1 when a
// class is refused, 2 when the input cannot be read.
//
//   secrets-store-csi-lint FILE|DIR...            manifests (YAML or JSON)
//   secrets-store-csi-lint --kubeconfig=PATH      every namespace of a cluster
//   --output=json                                 one JSON document
//
// A file that cannot be read is named on stderr with why (exit status 2) and
// the others are still checked; each file is bounded in size and parse time.
import { FlagError, parseFlags, usage, type FlagSpecs } from "../shared/cli/flags.ts";
import { checkClass } from "./check-class.ts";
import { formatJson, formatText, printable, summarise } from "./report.ts";
import { classesFromCluster, classesFromPaths, SourceError, type FoundClass } from "./sources.ts";
import type { ManifestError } from "./read-manifest.ts";

const PROGRAM = "secrets-store-csi-lint";

const FLAGS = {
  kubeconfig: { kind: "string", default: "", usage: "read the SecretProviderClasses of every namespace of this cluster instead of files" },
  context: { kind: "string", default: "", usage: "kubeconfig context (default: the current one)" },
  output: { kind: "string", default: "text", usage: "text or json", validate: (v: string | number | boolean) => (v === "text" || v === "json" ? undefined : "must be text or json") },
  "cloud-name": { kind: "string", default: "AzurePublicCloud", usage: "the provider's --cloud-name, for classes that set no cloudName" },
  "max-file-bytes": {
    kind: "int",
    default: 4 * 1024 * 1024,
    usage: "largest manifest file read; larger ones are reported and skipped",
    validate: (v: string | number | boolean) => (Number(v) > 0 ? undefined : "must be greater than zero"),
  },
  timeout: {
    kind: "duration",
    default: 30_000,
    usage: "longest time one manifest file may take to parse; slower ones are reported and skipped",
    validate: (v: string | number | boolean) => (Number(v) > 0 ? undefined : "must be greater than zero"),
  },
} satisfies FlagSpecs;

/** Flags (with their values) apart from the FILE and DIR arguments. */
function splitArgs(argv: readonly string[]): { flags: string[]; paths: string[] } {
  const flags: string[] = [];
  const paths: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("-") || arg === "-") {
      paths.push(arg);
      continue;
    }
    flags.push(arg);
    const name = arg.replace(/^--?/, "");
    if (!name.includes("=") && name in FLAGS && i + 1 < argv.length) flags.push(argv[++i]!);
  }
  return { flags, paths };
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h") || argv.length === 0) {
    process.stdout.write(`Usage: ${PROGRAM} FILE|DIR... | --kubeconfig=PATH [--output=json]\n${usage(PROGRAM, FLAGS).split("\n").slice(1).join("\n")}\n`);
    return argv.length === 0 ? 2 : 0;
  }
  const { flags: flagArgs, paths } = splitArgs(argv);
  let flags;
  try {
    flags = parseFlags(flagArgs, FLAGS);
  } catch (err) {
    if (err instanceof FlagError) {
      console.error(`${PROGRAM}: ${err.message}`);
      return 2;
    }
    throw err;
  }
  if ((flags.kubeconfig === "") === (paths.length === 0)) {
    console.error(`${PROGRAM}: give either FILE|DIR arguments or --kubeconfig, not both or neither`);
    return 2;
  }
  let found: FoundClass[];
  let unreadable: ManifestError[] = [];
  try {
    if (flags.kubeconfig) found = await classesFromCluster(flags.kubeconfig, flags.context || undefined);
    else ({ found, errors: unreadable } = await classesFromPaths(paths, { maxFileBytes: flags["max-file-bytes"], timeoutMs: flags.timeout }));
  } catch (err) {
    if (err instanceof SourceError) {
      console.error(`${PROGRAM}: ${printable(err.message)}`);
      return 2;
    }
    throw err;
  }
  for (const e of unreadable) console.error(`${PROGRAM}: ${printable(e.path)}: ${printable(e.message)}`);
  const reports = [];
  for (const { spc, source } of found) reports.push(await checkClass(spc, source, { cloudName: flags["cloud-name"] }));
  const result = summarise(reports);
  process.stdout.write(flags.output === "json" ? formatJson(result) : formatText(result));
  if (unreadable.length > 0) return 2;
  return result.summary.refused > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`${PROGRAM}: ${printable(err instanceof Error ? err.message : String(err))}`);
    process.exitCode = 2;
  },
);
