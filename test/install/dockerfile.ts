// A small Dockerfile reader for the image tests: enough of the syntax to
// find the stages, what the runtime stage copies from the build stage, and
// how it starts the program. No Docker engine is involved.
import { readFileSync } from "node:fs";

export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

export interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

export interface Dockerfile {
  globalArgs: Map<string, string>;
  stages: Stage[];
}

/** Splits into instructions: comments dropped, backslash continuations joined. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = "";
  let start = 0;
  text.split("\n").forEach((raw, index) => {
    const line = raw.replace(/\r$/, "");
    if (pending === "" && /^\s*#/.test(line)) return;
    if (pending !== "" && /^\s*#/.test(line)) return; // comments inside continuations are dropped too
    if (pending === "") start = index + 1;
    if (line.endsWith("\\")) {
      pending += line.slice(0, -1) + " ";
      return;
    }
    const full = (pending + line).trim();
    pending = "";
    if (full === "") return;
    const m = /^(\S+)\s*(.*)$/.exec(full)!;
    out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!, line: start });
  });
  if (pending.trim() !== "") throw new Error("Dockerfile ends inside a line continuation");
  return out;
}

function substitute(text: string, args: Map<string, string>): string {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b)!;
    const value = args.get(name);
    if (value === undefined) throw new Error(`Dockerfile uses \${${name}} without a default`);
    return value;
  });
}

export function parseDockerfile(path: string): Dockerfile {
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of instructions(readFileSync(path, "utf8"))) {
    if (ins.keyword === "FROM") {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`${path}:${ins.line}: cannot read FROM ${ins.args}`);
      stages.push({ from: substitute(m[1]!, globalArgs), name: m[2], instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword !== "ARG") throw new Error(`${path}:${ins.line}: ${ins.keyword} before the first FROM`);
      const [name, value] = ins.args.split("=", 2);
      globalArgs.set(name!.trim(), (value ?? "").trim());
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

export interface Copy {
  from: string | undefined;
  sources: string[];
  dest: string;
}

/** COPY instructions of a stage (shell form only, which is what our Dockerfiles use). */
export function copies(stage: Stage): Copy[] {
  return stage.instructions
    .filter((i) => i.keyword === "COPY" || i.keyword === "ADD")
    .map((i) => {
      if (i.keyword === "ADD") throw new Error(`line ${i.line}: ADD is not used in our images; use COPY`);
      const words = i.args.split(/\s+/);
      let from: string | undefined;
      while (words[0]?.startsWith("--")) {
        const option = words.shift()!;
        if (option.startsWith("--from=")) from = option.slice("--from=".length);
        else if (!option.startsWith("--chmod=") && !option.startsWith("--chown=") && option !== "--link") {
          throw new Error(`line ${i.line}: COPY option ${option} is not understood by this reader`);
        }
      }
      if (words.length < 2) throw new Error(`line ${i.line}: COPY needs a source and a destination`);
      return { from, sources: words.slice(0, -1), dest: words.at(-1)! };
    });
}

/** The exec-form ENTRYPOINT of a stage as an argv array. */
export function entrypoint(stage: Stage): string[] {
  const ins = stage.instructions.filter((i) => i.keyword === "ENTRYPOINT").at(-1);
  if (!ins) throw new Error("the stage has no ENTRYPOINT");
  const argv = JSON.parse(ins.args) as unknown;
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === "string")) throw new Error(`ENTRYPOINT must be exec form, got ${ins.args}`);
  return argv as string[];
}

/** ENV key=value pairs of a stage, in order. */
export function env(stage: Stage): Map<string, string> {
  const out = new Map<string, string>();
  for (const ins of stage.instructions.filter((i) => i.keyword === "ENV")) {
    for (const m of ins.args.matchAll(/(\w+)=("([^"]*)"|\S*)/g)) out.set(m[1]!, m[3] ?? m[2]!);
  }
  return out;
}

export function lastValue(stage: Stage, keyword: string): string | undefined {
  return stage.instructions.filter((i) => i.keyword === keyword).at(-1)?.args;
}

/** LABEL key="value" pairs of a stage. */
export function labels(stage: Stage): Map<string, string> {
  const out = new Map<string, string>();
  for (const ins of stage.instructions.filter((i) => i.keyword === "LABEL")) {
    for (const m of ins.args.matchAll(/([\w.-]+)=("([^"]*)"|\S*)/g)) out.set(m[1]!, m[3] ?? m[2]!);
  }
  return out;
}
