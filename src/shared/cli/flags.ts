// Command-line flags with the Go `flag` package's syntax (`-x`, `--x`,
// `--x=value`, `--x value`, bool flags only as `--x` or `--x=true`), because
// the upstream charts and users' manifests pass flags that way. Flags are
// validated once at start-up; an unknown flag or bad value is fatal.
import { parseDuration } from "./duration.ts";

export type FlagKind = "string" | "bool" | "int" | "duration";

export interface FlagSpec<K extends FlagKind = FlagKind> {
  kind: K;
  default: FlagValue<K>;
  usage: string;
  /** Extra validation; return an error message to reject the value. */
  validate?: (value: FlagValue<K>) => string | undefined;
}

type FlagValue<K extends FlagKind> = K extends "bool" ? boolean : K extends "string" ? string : number;

export type FlagSpecs = Record<string, FlagSpec>;
export type ParsedFlags<S extends FlagSpecs> = { [N in keyof S]: FlagValue<S[N]["kind"]> };

export class FlagError extends Error {}

const BOOL_TRUE = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const BOOL_FALSE = new Set(["0", "f", "F", "FALSE", "false", "False"]);

function convert(name: string, spec: FlagSpec, raw: string): FlagValue<FlagKind> {
  switch (spec.kind) {
    case "string":
      return raw;
    case "bool":
      if (BOOL_TRUE.has(raw)) return true;
      if (BOOL_FALSE.has(raw)) return false;
      throw new FlagError(`invalid boolean value "${raw}" for flag --${name}`);
    case "int": {
      if (!/^[+-]?\d+$/.test(raw)) throw new FlagError(`invalid integer value "${raw}" for flag --${name}`);
      return Number.parseInt(raw, 10);
    }
    case "duration":
      try {
        return parseDuration(raw);
      } catch {
        throw new FlagError(`invalid duration value "${raw}" for flag --${name} (examples: 30s, 2m, 1h)`);
      }
  }
}

/**
 * Parses argv against the specs. Flags named in `ignored` (for example klog's
 * `-v`) are accepted and dropped so upstream manifests keep working.
 */
export function parseFlags<S extends FlagSpecs>(argv: readonly string[], specs: S, ignored: readonly string[] = []): ParsedFlags<S> {
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) values[name] = spec.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("-") || arg === "-" || arg === "--") {
      throw new FlagError(`unexpected argument "${arg}": every option is a flag such as --endpoint=unix:///csi/csi.sock`);
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq >= 0 ? body.slice(0, eq) : body;
    let raw = eq >= 0 ? body.slice(eq + 1) : undefined;
    const spec = specs[name];
    if (!spec) {
      if (ignored.includes(name)) {
        if (raw === undefined && i + 1 < argv.length && !argv[i + 1]!.startsWith("-")) i++;
        continue;
      }
      throw new FlagError(`unknown flag --${name}; run with --help to list the flags`);
    }
    if (raw === undefined) {
      if (spec.kind === "bool") raw = "true";
      else if (i + 1 < argv.length) raw = argv[++i]!;
      else throw new FlagError(`flag --${name} needs a value`);
    }
    const value = convert(name, spec, raw);
    const problem = (spec.validate as ((v: unknown) => string | undefined) | undefined)?.(value);
    if (problem) throw new FlagError(`invalid value "${raw}" for flag --${name}: ${problem}`);
    values[name] = value;
  }
  return values as ParsedFlags<S>;
}

/** One line per flag, for --help. */
export function usage(program: string, specs: FlagSpecs): string {
  const lines = [`Usage of ${program}:`];
  for (const [name, spec] of Object.entries(specs)) {
    const def = spec.kind === "duration" ? `${spec.default as number}ms` : JSON.stringify(spec.default);
    lines.push(`  --${name} (${spec.kind}, default ${def})`, `      ${spec.usage}`);
  }
  return lines.join("\n");
}
