// Builds one minified ESM bundle per program with esbuild, so an image needs
// only Node, the bundle and proto/ (no node_modules):
//
//   dist/driver/secrets-store-csi-driver.mjs
//   dist/controller/secrets-store-sync-controller.mjs (shipped in the driver's image)
//   dist/provider/secrets-store-csi-provider-azure.mjs
//   dist/provider/objects-worker.mjs           (its worker thread, started from beside the bundle)
//   dist/emulator/keyvault-emulator.mjs        (when src/emulator/main.ts exists)
//
// Beside each bundle: chunks/ (code the program loads only on demand, such as
// @kubernetes/client-node for kubeconfigs with exec plugins), proto/*.proto (loaded at run time by src/shared/grpc/proto.ts)
// and THIRD-PARTY-NOTICES.txt (licences of every bundled package).
//
// Usage: node scripts/bundle.ts [driver|controller|provider|emulator ...] [--outdir DIR] [--sourcemap] [--analyze]
//
// Build identity (printed by --version) comes from the environment:
//   SSCSI_BUILD_VERSION  default v<package.json version>
//   SSCSI_GIT_COMMIT     default `git rev-parse HEAD`, else "unknown"
//   SSCSI_BUILD_DATE     default SOURCE_DATE_EPOCH, else now (UTC, ISO 8601)
// and is compiled into the bundle in place of the process.env reads in
// src/shared/cli/version.ts.
import { execFileSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export interface Program {
  /** Folder under src/ and under dist/. */
  name: "driver" | "controller" | "provider" | "emulator";
  /** File name of the bundle (the program's name in images and logs). */
  output: string;
  /** Whether a missing entry point is an error (false: skipped with a note). */
  required: boolean;
  /**
   * Worker thread entry points, bundled on their own beside the program (a
   * worker that loaded the whole program would cost its memory twice).
   */
  workers?: ReadonlyArray<{ entry: string; output: string }>;
  /** Global names replaced at build time (esbuild's define), with why in PROGRAMS. */
  globals?: Readonly<Record<string, string>>;
}

export const PROGRAMS: readonly Program[] = [
  { name: "driver", output: "secrets-store-csi-driver.mjs", required: true },
  { name: "controller", output: "secrets-store-sync-controller.mjs", required: true },
  {
    name: "provider",
    output: "secrets-store-csi-provider-azure.mjs",
    required: true,
    workers: [{ entry: "src/provider/objects/objects-worker.ts", output: "objects-worker.mjs" }],
    // The Azure SDK's HTTP pipeline asks `typeof FormData` on every request;
    // Node's FormData is a lazy global whose first use loads its whole fetch
    // implementation (undici): about 60 ms and 14 MiB of RSS that never go
    // away, for a body type the provider never sends. Both uses are guarded
    // by that typeof, so the bundle sees no FormData and skips them.
    globals: { FormData: "undefined" },
  },
  { name: "emulator", output: "keyvault-emulator.mjs", required: false },
];

export interface BuildInfo {
  version: string;
  commit: string;
  date: string;
}

export interface BundleOptions {
  programs?: readonly Program["name"][];
  outdir?: string;
  sourcemap?: boolean;
  buildInfo?: Partial<BuildInfo>;
  /** Print nothing (tests). */
  quiet?: boolean;
}

export interface BundleResult {
  program: Program["name"];
  dir: string;
  file: string;
  bytes: number;
  gzipBytes: number;
  packages: Map<string, number>;
  /** The part of `packages` that loads at start-up: the entry and what it imports statically. */
  startupPackages: Map<string, number>;
}

// Bundled CommonJS code calls require() for Node built-ins and reads
// __dirname/__filename; ESM has none of them, so the bundle defines them.
const BANNER = [
  'import { createRequire as __sscsiCreateRequire } from "node:module";',
  'import { fileURLToPath as __sscsiFileURLToPath } from "node:url";',
  'import { dirname as __sscsiDirname } from "node:path";',
  "const require = __sscsiCreateRequire(import.meta.url);",
  "const __filename = __sscsiFileURLToPath(import.meta.url);",
  "const __dirname = __sscsiDirname(__filename);",
].join("\n");

const BUILTINS = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

/**
 * Node's own modules are loaded with require(), not import. The ESM face of a
 * built-in reads every export once, and node:http's exports include lazy
 * getters (WebSocket, MessageEvent, ...) that load Node's internal undici:
 * about 20 ms of start-up and several MiB the programs never use.
 */
const BUILTINS_VIA_REQUIRE: esbuild.Plugin = {
  name: "builtins-via-require",
  setup(build) {
    build.onResolve({ filter: /^(node:)?[a-z_/0-9]+$/ }, (args) =>
      BUILTINS.has(args.path) && args.kind === "import-statement" ? { path: args.path, namespace: "builtin-require" } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: "builtin-require" }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path.startsWith("node:") ? args.path : `node:${args.path}`)});`,
      loader: "js",
    }));
  },
};

// Optional add-ons that dependencies require() inside try/catch and do without
// when missing (ws: bufferutil, utf-8-validate; debug: supports-color). They are
// not installed, so esbuild leaves the require in place and it fails softly at
// run time. Any other import left outside the bundle is an error.
const OPTIONAL_MISSING = new Set(["bufferutil", "utf-8-validate", "supports-color"]);

function git(args: string[]): string | undefined {
  try {
    return execFileSync("git", args, { cwd: REPO_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export function resolveBuildInfo(overrides: Partial<BuildInfo> = {}): BuildInfo {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
  const epoch = process.env.SOURCE_DATE_EPOCH;
  const when = epoch && /^\d+$/.test(epoch) ? new Date(Number(epoch) * 1000) : new Date();
  return {
    version: overrides.version ?? (process.env.SSCSI_BUILD_VERSION || `v${pkg.version}`),
    commit: overrides.commit ?? (process.env.SSCSI_GIT_COMMIT || git(["rev-parse", "HEAD"]) || "unknown"),
    date: overrides.date ?? (process.env.SSCSI_BUILD_DATE || when.toISOString().replace(/\.\d{3}Z$/, "Z")),
  };
}

/** The package a bundled input file belongs to: "pino", "@grpc/grpc-js", or undefined for our sources. */
function packageOf(input: string): { name: string; root: string } | undefined {
  const idx = input.lastIndexOf("node_modules/");
  if (idx < 0) return undefined;
  const rest = input.slice(idx + "node_modules/".length).split("/");
  const name = rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  return { name, root: join(REPO_ROOT, input.slice(0, idx + "node_modules/".length) + name) };
}

const LICENCE_FILE = /^(licen[cs]e|copying|notice)(\.(md|txt|markdown))?$/i;

function thirdPartyNotices(roots: Map<string, string>): string {
  const parts = [
    "Third-party software bundled into this program.",
    "Each entry gives the package, its version, its licence and the licence text it ships.",
    "",
  ];
  for (const [name, root] of [...roots.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    let version = "?";
    let license = "see below";
    try {
      const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version?: string; license?: unknown };
      version = pkg.version ?? version;
      if (typeof pkg.license === "string") license = pkg.license;
    } catch {
      // A package without package.json still gets its licence text below.
    }
    parts.push("=".repeat(78), `${name}@${version} (${license})`, "=".repeat(78));
    const texts = existsSync(root) ? readdirSync(root).filter((f) => LICENCE_FILE.test(f)).sort() : [];
    if (texts.length === 0) parts.push(`(no licence file shipped; package.json declares ${license})`);
    for (const t of texts) parts.push(readFileSync(join(root, t), "utf8").trimEnd());
    parts.push("");
  }
  return parts.join("\n");
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

export async function bundlePrograms(options: BundleOptions = {}): Promise<BundleResult[]> {
  const outdir = resolve(REPO_ROOT, options.outdir ?? "dist");
  const info = resolveBuildInfo(options.buildInfo);
  const wanted = options.programs ?? PROGRAMS.map((p) => p.name);
  const log = options.quiet ? () => undefined : (line: string) => console.log(line);
  const protoFiles = readdirSync(join(REPO_ROOT, "proto")).filter((f) => f.endsWith(".proto"));
  if (protoFiles.length === 0) throw new Error("bundle: proto/ holds no .proto files");

  const results: BundleResult[] = [];
  for (const name of wanted) {
    const program = PROGRAMS.find((p) => p.name === name);
    if (!program) throw new Error(`bundle: unknown program "${name}" (known: ${PROGRAMS.map((p) => p.name).join(", ")})`);
    const entry = join(REPO_ROOT, "src", program.name, "main.ts");
    if (!existsSync(entry)) {
      if (program.required || options.programs) throw new Error(`bundle: entry point ${relative(REPO_ROOT, entry)} does not exist`);
      log(`bundle: ${program.name}: skipped (no ${relative(REPO_ROOT, entry)})`);
      continue;
    }
    const dir = join(outdir, program.name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const file = join(dir, program.output);

    const built = await esbuild.build({
      absWorkingDir: REPO_ROOT,
      // Worker threads are entry points of their own: a worker loads only the
      // chunks it imports, not the whole program.
      entryPoints: [
        { in: entry, out: program.output.replace(/\.mjs$/, "") },
        ...(program.workers ?? []).map((w) => ({ in: join(REPO_ROOT, w.entry), out: w.output.replace(/\.mjs$/, "") })),
      ],
      outdir: dir,
      outExtension: { ".js": ".mjs" },
      // What a program imports only on demand (import()) goes into chunks/
      // and is read from disk the first time it is needed, never at start-up.
      splitting: true,
      chunkNames: "chunks/[name]-[hash]",
      bundle: true,
      platform: "node",
      target: "node24",
      format: "esm",
      // SSCSI_BUNDLE_MINIFY=0 keeps names and lines readable in a CPU profile (bench/trace.ts --cpu-prof)
      minify: process.env.SSCSI_BUNDLE_MINIFY !== "0",
      // No keepNames: it wraps every named function and class, closures made
      // per request included, in a call that redefines its name, 12.7% of the
      // provider's instructions per warm Mount (callgrind, 100 Mounts). What
      // tells errors apart keeps working renamed: the SDK's, MSAL's and our
      // error classes set their names explicitly, and the provider's error
      // classes are tested against the bundle (test/provider/error-classes.test.ts).
      keepNames: false,
      sourcemap: options.sourcemap ? "linked" : false,
      legalComments: "none",
      banner: { js: BANNER },
      define: {
        "process.env.SSCSI_BUILD_VERSION": JSON.stringify(info.version),
        "process.env.SSCSI_GIT_COMMIT": JSON.stringify(info.commit),
        "process.env.SSCSI_BUILD_DATE": JSON.stringify(info.date),
        ...program.globals,
      },
      metafile: true,
      plugins: [BUILTINS_VIA_REQUIRE],
      logLevel: "silent",
    });
    for (const w of built.warnings) log(`bundle: ${program.name}: warning: ${w.text}${w.location ? ` (${w.location.file}:${w.location.line})` : ""}`);

    // Everything must be inside the bundle except Node's own modules.
    const externals = new Set<string>();
    const packages = new Map<string, number>();
    const roots = new Map<string, string>();
    for (const output of Object.values(built.metafile.outputs)) {
      for (const imp of output.imports) {
        if (imp.external && !BUILTINS.has(imp.path) && !OPTIONAL_MISSING.has(imp.path)) externals.add(imp.path);
      }
      for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
        const pkg = packageOf(input);
        const key = pkg?.name ?? `src/${program.name} + src/shared`;
        packages.set(key, (packages.get(key) ?? 0) + bytesInOutput);
        if (pkg && bytesInOutput > 0) roots.set(pkg.name, pkg.root);
      }
    }
    // What loads at start-up: the entry and the chunks it imports statically
    // (the rest is import()ed on demand).
    const startupPackages = new Map<string, number>();
    const outputs = built.metafile.outputs;
    const entryOutput = Object.keys(outputs).find((o) => resolve(o) === file);
    const pending = entryOutput ? [entryOutput] : [];
    for (const seen = new Set<string>(pending); pending.length > 0; ) {
      const output = outputs[pending.pop()!]!;
      for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
        const key = packageOf(input)?.name ?? `src/${program.name} + src/shared`;
        startupPackages.set(key, (startupPackages.get(key) ?? 0) + bytesInOutput);
      }
      for (const imp of output.imports) {
        if (imp.kind === "import-statement" && !imp.external && !seen.has(imp.path)) {
          seen.add(imp.path);
          pending.push(imp.path);
        }
      }
    }
    if (externals.size > 0) {
      throw new Error(`bundle: ${program.name} left non-builtin imports outside the bundle: ${[...externals].join(", ")}`);
    }

    mkdirSync(join(dir, "chunks"), { recursive: true });
    mkdirSync(join(dir, "proto"));
    for (const p of protoFiles) cpSync(join(REPO_ROOT, "proto", p), join(dir, "proto", p));
    writeFileSync(join(dir, "THIRD-PARTY-NOTICES.txt"), thirdPartyNotices(roots));
    chmodSync(file, 0o755);

    const code = readFileSync(file);
    const result: BundleResult = {
      program: program.name,
      dir,
      file,
      bytes: statSync(file).size,
      gzipBytes: gzipSync(code).length,
      packages,
      startupPackages,
    };
    results.push(result);
    log(
      `bundle: ${program.name}: ${relative(REPO_ROOT, file)} ${formatBytes(result.bytes)} (gzip ${formatBytes(result.gzipBytes)}), ` +
        `${roots.size} packages, proto: ${protoFiles.join(" ")}`,
    );
  }
  log(`bundle: version ${info.version}, commit ${info.commit}, date ${info.date}`);
  return results;
}

function parseArgs(argv: readonly string[]): BundleOptions & { analyze: boolean } {
  const programs: Program["name"][] = [];
  const options: BundleOptions & { analyze: boolean } = { analyze: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--sourcemap") options.sourcemap = true;
    else if (arg === "--analyze") options.analyze = true;
    else if (arg === "--outdir") options.outdir = argv[++i];
    else if (arg.startsWith("--outdir=")) options.outdir = arg.slice("--outdir=".length);
    else if (arg.startsWith("-")) throw new Error(`bundle: unknown option ${arg}`);
    else programs.push(arg as Program["name"]);
  }
  if (programs.length > 0) options.programs = programs;
  return options;
}

if (import.meta.main) {
  try {
    const options = parseArgs(process.argv.slice(2));
    const results = await bundlePrograms(options);
    if (options.analyze) {
      for (const r of results) {
        console.log(`\n${r.program}: largest parts`);
        for (const [pkg, bytes] of [...r.packages.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
          const onDemand = (r.startupPackages.get(pkg) ?? 0) === 0 ? "  (on demand)" : "";
          console.log(`  ${formatBytes(bytes).padStart(10)}  ${pkg}${onDemand}`);
        }
        const startup = [...r.startupPackages.values()].reduce((a, b) => a + b, 0);
        console.log(`  loaded at start-up: ${formatBytes(startup)} of ${formatBytes([...r.packages.values()].reduce((a, b) => a + b, 0))}`);
      }
    }
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}
