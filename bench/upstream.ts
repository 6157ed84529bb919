// npm run bench:upstream [-- --quick] [-- --out FILE]
//
// Ours side by side with upstream, in one run. Outside: builds what it runs
// (kube-apiserver and etcd via install-tools.sh, upstream's driver v1.6.0 and
// Azure provider v1.8.2 via install-upstream.sh, both cached in the tools
// cache; our bundles into a temporary directory). Inside a network and mount
// namespace of its own: the Key Vault emulator, a kube-apiserver, then each
// stack's driver and provider in memory cgroups of their own. Prints the
// table and writes bench/RESULTS.md (a full run also regenerates the README's
// table); --quick runs tiny sizes as a smoke test and writes only to --out.
// Run as root: it mounts tmpfs, creates namespaces and memory cgroups.
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, mkdir } from "node:fs/promises";
import { cpus, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { bundlePrograms } from "../scripts/bundle.ts";
import { ensureBinaries, startCluster, type Cluster } from "../test/harness/cluster.ts";
import { loadKubeConfig } from "../test/harness/kube.ts";
import { REPO, removeTestTree, requireRoot } from "../test/support/driver-process.ts";
import { EMULATED_HOSTS, startKeyVault, type KeyVault } from "./keyvault.ts";
import { MemoryCgroup } from "./memory-cgroup.ts";
import { stopAllPrograms } from "./program.ts";
import { inPrivateNamespaces, runInPrivateNamespaces, setUpPrivateNetwork } from "./private-network.ts";
import { updateReadme } from "./readme.ts";
import { renderResults, renderTable, tableRows, type RunFacts } from "./results.ts";
import { FULL, measureStack, QUICK } from "./scenarios.ts";
import { ourStack, upstreamStack } from "./stacks.ts";

const run = promisify(execFile);
// SSCSI_INSTALL_UPSTREAM: another copy of the build script (one on a branch not merged yet).
const INSTALL_UPSTREAM = process.env.SSCSI_INSTALL_UPSTREAM ?? join(REPO, "test", "harness", "install-upstream.sh");

interface Plan {
  dir: string;
  kubeBin: string;
  upstreamBin: string;
  bundles: { driver: string; provider: string; emulator: string };
  quick: boolean;
  out: string;
  startedAt: number;
}

function parseArgs(argv: readonly string[]): { quick: boolean; out: string | undefined } {
  let quick = false;
  let out: string | undefined;
  for (const arg of argv) {
    if (arg === "--quick") quick = true;
    else if (arg.startsWith("--out=")) out = arg.slice("--out=".length);
    else throw new Error(`bench:upstream: unknown argument ${arg} (known: --quick, --out=FILE)`);
  }
  return { quick, out };
}

/** Runs install-upstream.sh (seconds once cached) and returns its bin directory. */
async function buildUpstream(): Promise<string> {
  const env = { ...process.env, PATH: `${process.env.PATH ?? ""}:/usr/local/go/bin` };
  try {
    const { stdout } = await run("bash", [INSTALL_UPSTREAM], { env, maxBuffer: 64 * 1024 * 1024 });
    return stdout.trim().split("\n").pop()!;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`bench:upstream: ${INSTALL_UPSTREAM} failed:\n${(e.stderr ?? e.message).trim().split("\n").slice(-20).join("\n")}`);
  }
}

async function outside(argv: readonly string[]): Promise<void> {
  requireRoot();
  const args = parseArgs(argv);
  const startedAt = Date.now();
  const dir = await mkdtemp(join(tmpdir(), "bench-upstream-"));
  let succeeded = false;
  try {
    console.log("bench:upstream: building (tools cache, upstream binaries, our bundles)");
    const [kubeBin, upstreamBin] = [await ensureBinaries(), await buildUpstream()];
    const results = await bundlePrograms({ outdir: join(dir, "dist"), quiet: true });
    const file = (name: string) => results.find((r) => r.program === name)!.file;
    const plan: Plan = {
      dir,
      kubeBin,
      upstreamBin,
      bundles: { driver: file("driver"), provider: file("provider"), emulator: file("emulator") },
      quick: args.quick,
      out: args.out ?? join(REPO, "bench", "RESULTS.md"),
      startedAt,
    };
    if (args.quick && args.out === undefined) throw new Error("bench:upstream: --quick needs --out=FILE (bench/RESULTS.md holds full runs only)");
    const code = await runInPrivateNamespaces(fileURLToPath(import.meta.url), ["--inside", JSON.stringify(plan)]);
    if (code !== 0) throw new Error(`bench:upstream: the run inside the private namespaces failed (exit ${code})`);
    if (!args.quick) {
      updateReadme();
      console.log("bench:upstream: README.md's performance table regenerated from bench/RESULTS.md");
    }
    console.log(`bench:upstream: done in ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
    succeeded = true;
  } finally {
    // The namespaces (and every mount in them) ended with the inner run; keep the logs of a failed one.
    if (succeeded) await removeTestTree(dir);
    else console.error(`bench:upstream: logs kept in ${dir}`);
  }
}

async function version(command: string, args: string[], pattern: RegExp): Promise<string> {
  try {
    const { stdout } = await run(command, args, { env: { ...process.env, PATH: `${process.env.PATH ?? ""}:/usr/local/go/bin` } });
    return pattern.exec(stdout)?.[1] ?? "unknown";
  } catch {
    return "unknown";
  }
}

function machine(): string {
  const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown CPU";
  return `${model}, ${cpus().length} cores, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Linux ${release()}`;
}

async function inside(plan: Plan): Promise<void> {
  if (!inPrivateNamespaces()) throw new Error("bench:upstream: --inside runs only in the benchmark's own namespaces");
  const sizes = plan.quick ? QUICK : FULL;
  setUpPrivateNetwork(plan.dir, EMULATED_HOSTS);
  const cgroups = await MemoryCgroup.create(`sscsi-bench-${process.pid}`);
  let cluster: Cluster | undefined;
  let keyVault: KeyVault | undefined;
  try {
    const kvDir = join(plan.dir, "keyvault");
    await mkdir(kvDir);
    [cluster, keyVault] = await Promise.all([startCluster(), startKeyVault(plan.bundles.emulator, kvDir, sizes.coldMounts, sizes.bootPods)]);
    const env = {
      dir: plan.dir,
      kc: loadKubeConfig(cluster.kubeconfigPath),
      kubeconfig: cluster.kubeconfigPath,
      keyVault,
      cgroups,
      sizes,
      log: (line: string) => console.log(`bench:upstream: ${line}`),
    };
    const oursStack = ourStack(plan.bundles);
    const theirs = upstreamStack(plan.upstreamBin);
    const ours = await measureStack(env, oursStack);
    const upstream = await measureStack(env, theirs);
    const rows = tableRows(ours, upstream, sizes);
    console.log(`\n${renderTable(rows)}\n`);
    const facts: RunFacts = {
      date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      machine: machine(),
      node: process.version,
      go: `Go ${await version("go", ["version", join(plan.upstreamBin, "upstream-provider-azure")], /: (go\S+)/)}`,
      kube: await version(join(plan.kubeBin, "kube-apiserver"), ["--version"], /Kubernetes (\S+)/),
      commit: await version("git", ["-C", REPO, "rev-parse", "--short", "HEAD"], /(\S+)/),
      ours: oursStack.description,
      upstream: theirs.description,
      durationS: (Date.now() - plan.startedAt) / 1000,
      quick: plan.quick,
    };
    writeFileSync(plan.out, renderResults(rows, facts, sizes));
    console.log(`bench:upstream: wrote ${plan.out}`);
  } finally {
    await stopAllPrograms();
    await keyVault?.stop();
    await cluster?.stop();
    await cgroups.removeTree();
  }
}


const argv = process.argv.slice(2);
try {
  if (argv[0] === "--inside") await inside(JSON.parse(argv[1]!) as Plan);
  else await outside(argv);
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
}
