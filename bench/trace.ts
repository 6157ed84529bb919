// node bench/trace.ts [--publishes=N [--gap-ms=N]] [--cold=N [--soak=N [--idle-ms=N]]] [--mounts=N] [--boot=N [--boot-identities]]
//                     [--upstream] [--samples] [--untraced] [--cpu-prof=DIR] [--driver-flags="..."] [--provider-flags="..."] [--driver-wrapper="..."] [--provider-wrapper="..."]   (as root)
//
// Where the time of one volume goes: our driver and provider bundles, run as
// the images run them (node --lite-mode) with bench/trace-hook.ts loaded,
// against the same Key Vault emulator and kube-apiserver as bench:upstream,
// in the same private network and mount namespace. The benchmark plays
// kubelet: warm publishes one at a time, their unpublishes, then Mounts by
// identities never seen before on the provider's socket. Each call's steps
// (the "sscsi:step" channel, HTTP requests, GC pauses) are matched to the call
// by time and printed as p50 / p90 per step, beside the call as the client saw
// it and the CPU time each program used per call. --boot=N first starts the
// programs afresh and publishes N volumes at once (a node booting), and
// prints when each step ran, from the first to the last (--boot-identities:
// each pod with an identity of its own). --upstream adds upstream's
// figures for the same calls (no steps: its programs cannot be traced this way).
// --cpu-prof=DIR also writes V8 CPU profiles of our two programs into DIR
// (with SSCSI_BUNDLE_MINIFY=0 in the environment, of unminified bundles);
// --driver-flags / --provider-flags run a program with other Node flags than
// its image's (an experiment: the figures to quote come from the image's);
// --gap-ms waits that long after each warm publish is answered before the
// next (bench:upstream's sequential figure waits 100 ms); --timeline also prints, for the median call of each kind, every span inside
// it in order (ms after the client sent the call, and its length): what ran
// one after the other and what overlapped.
// --soak=N splits the cold Mounts as bench:upstream does: five, then N warm
// Mounts ten at a time and --idle-ms of idling, then the rest. --samples
// prints each cold Mount in order with the provider's longer spans inside it;
// --untraced runs our programs without the hook (client times only, as
// bench:upstream sees them: the hook keeps every span in memory).
// --driver-wrapper / --provider-wrapper run a program under a command, e.g. "valgrind
// --tool=callgrind" to count its instructions (two runs with different
// --mounts, or --publishes, give the instructions per call, whatever else
// the machine does).
import { readFileSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { transformSync } from "esbuild";
import { bundlePrograms } from "../scripts/bundle.ts";
import { ensureBinaries, startCluster, type Cluster } from "../test/harness/cluster.ts";
import { loadKubeConfig } from "../test/harness/kube.ts";
import { REPO, removeTestTree, requireRoot } from "../test/support/driver-process.ts";
import { bootIdentity, coldIdentity, EMULATED_HOSTS, POD_IDENTITY, startKeyVault, type KeyVault, type ServicePrincipal } from "./keyvault.ts";
import { MemoryCgroup } from "./memory-cgroup.ts";
import { stopAllPrograms } from "./program.ts";
import { inPrivateNamespaces, runInPrivateNamespaces, setUpPrivateNetwork } from "./private-network.ts";
import { quantile, runConcurrently } from "./samples.ts";
import { COLD_MOUNTS_BEFORE_SOAK, EMULATOR_WARM_UP_ROUNDS, FULL, StackRun, type Environment } from "./scenarios.ts";
import { ourStack, upstreamStack, type Stack } from "./stacks.ts";
import type { Span } from "./trace-hook.ts";
import { SPC_PARAMETERS, verifyMountResponse, Workload } from "./workload.ts";

/**
 * The hook as JavaScript: --lite-mode turns WebAssembly off, and with it
 * Node's own TypeScript stripping.
 */
function writeHook(dir: string): string {
  const file = join(dir, "trace-hook.mjs");
  writeFileSync(file, transformSync(readFileSync(join(REPO, "bench", "trace-hook.ts"), "utf8"), { loader: "ts", format: "esm" }).code);
  return file;
}

interface Plan {
  dir: string;
  bundles: { driver: string; provider: string; emulator: string };
  upstreamBin?: string;
  publishes: number;
  gapMs: number;
  cold: number;
  mounts: number;
  boot: number;
  bootIdentities: boolean;
  cpuProf?: string;
  timeline: boolean;
  samples: boolean;
  untraced: boolean;
  soak: number;
  idleMs: number;
  flags: { driver?: string[]; provider?: string[] };
  driverWrapper?: string[];
  providerWrapper?: string[];
}

/** One call as the client saw it (ms since the epoch). */
interface Call {
  what: string;
  start: number;
  end: number;
}

interface Traced {
  calls: Call[];
  /** CPU ms per call of each program, by phase. */
  cpu: Record<string, { driver: number; provider: number }>;
  /** RSS of each program once every call was made (MiB). */
  rss: { driver: number; provider: number };
  spans: { driver: Span[]; provider: Span[] };
}

function parseArgs(argv: readonly string[]) {
  const out: { publishes: number; gapMs: number; cold: number; mounts: number; boot: number; bootIdentities: boolean; upstream: boolean; timeline: boolean; samples: boolean; untraced: boolean; soak: number; idleMs: number; cpuProf?: string; flags: Plan["flags"]; driverWrapper?: string[]; providerWrapper?: string[] } = {
    boot: 0,
    bootIdentities: false,
    publishes: 50,
    gapMs: 0,
    cold: 10,
    mounts: 50,
    upstream: false,
    timeline: false,
    samples: false,
    untraced: false,
    soak: 0,
    idleMs: 0,
    flags: {},
  };
  for (const arg of argv) {
    const cut = arg.indexOf("=");
    const [key, value] = cut < 0 ? [arg, undefined] : [arg.slice(0, cut), arg.slice(cut + 1)];
    if (key === "--publishes") out.publishes = Number(value);
    else if (key === "--gap-ms") out.gapMs = Number(value);
    else if (key === "--cold") out.cold = Number(value);
    else if (key === "--mounts") out.mounts = Number(value);
    else if (key === "--boot") out.boot = Number(value);
    else if (key === "--boot-identities") out.bootIdentities = true;
    else if (key === "--upstream") out.upstream = true;
    else if (key === "--timeline") out.timeline = true;
    else if (key === "--samples") out.samples = true;
    else if (key === "--untraced") out.untraced = true;
    else if (key === "--soak") out.soak = Number(value);
    else if (key === "--idle-ms") out.idleMs = Number(value);
    else if (key === "--driver-flags" && value !== undefined) out.flags.driver = value.split(" ").filter(Boolean);
    else if (key === "--provider-flags" && value !== undefined) out.flags.provider = value.split(" ").filter(Boolean);
    else if (key === "--driver-wrapper" && value !== undefined) out.driverWrapper = value.split(" ").filter(Boolean);
    else if (key === "--provider-wrapper" && value !== undefined) out.providerWrapper = value.split(" ").filter(Boolean);
    else if (key === "--cpu-prof" && value) out.cpuProf = resolve(value);
    else throw new Error(`bench/trace.ts: unknown argument ${arg} (known: --publishes=N, --gap-ms=N, --cold=N, --mounts=N, --boot=N, --boot-identities, --upstream, --timeline, --samples, --untraced, --soak=N, --idle-ms=N, --cpu-prof=DIR, --driver-flags=..., --provider-flags=..., --driver-wrapper=..., --provider-wrapper=...)`);
  }
  return out;
}

/** CPU time (user + system) of a process, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

function readSpans(file: string): Span[] {
  try {
    return readFileSync(file, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Span);
  } catch {
    return [];
  }
}

/** A new identity's Mount on the provider's socket, as the driver would send it for pod `i`. */
function mountRequest(namespace: string, i: number, identity: ServicePrincipal) {
  return {
    attributes: {
      ...SPC_PARAMETERS,
      "csi.storage.k8s.io/pod.name": `trace-${i}`,
      "csi.storage.k8s.io/pod.namespace": namespace,
      "csi.storage.k8s.io/pod.uid": `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
      "csi.storage.k8s.io/serviceAccount.name": "default",
      secretProviderClass: "bench-kv",
    },
    secrets: { clientid: identity.clientId, clientsecret: identity.clientSecret },
  };
}

async function traceStack(env: Environment, stack: Stack, plan: Plan, traceDir: string): Promise<Traced> {
  const workload = await Workload.create(env.kc, `bench-${stack.name}`, `node-${stack.name}`, Math.max(plan.publishes + 1, plan.boot));
  const run = new StackRun(env, stack, workload);
  const calls: Call[] = [];
  if (plan.boot > 0) {
    const provider = await run.provider();
    const driver = await run.driver(provider.socket);
    try {
      await Promise.all(
        Array.from({ length: plan.boot }, async (_, i) => {
          const start = performance.timeOrigin + performance.now();
          await driver.publish(i, plan.bootIdentities ? bootIdentity(stack.name, i) : undefined);
          calls.push({ what: "boot", start, end: performance.timeOrigin + performance.now() });
        }),
      );
      for (let i = 0; i < plan.boot; i++) await driver.unpublish(i);
    } finally {
      await driver.stop();
      provider.client.close();
      await provider.program.stop();
    }
  }
  const provider = await run.provider();
  const driver = await run.driver(provider.socket);
  const cpu: Traced["cpu"] = {};
  let rss: Traced["rss"] = { driver: 0, provider: 0 };
  const timedCall = async (what: string, call: () => Promise<unknown>) => {
    const start = performance.timeOrigin + performance.now();
    await call();
    calls.push({ what, start, end: performance.timeOrigin + performance.now() });
  };
  const phase = async (name: string, count: number, each: (k: number) => Promise<void>) => {
    const before = { driver: cpuMs(driver.program.pid), provider: cpuMs(provider.program.pid) };
    for (let k = 0; k < count; k++) await each(k);
    cpu[name] = { driver: (cpuMs(driver.program.pid) - before.driver) / count, provider: (cpuMs(provider.program.pid) - before.provider) / count };
  };
  try {
    // The first publish of programs just started (the identity's token, code loaded on first use, new connections).
    await phase("NodePublishVolume (the programs' first)", 1, () => timedCall("NodePublishVolume (the programs' first)", () => driver.publish(plan.publishes)));
    await driver.unpublish(plan.publishes);
    await phase("NodePublishVolume", plan.publishes, async (i) => {
      if (plan.gapMs > 0) await new Promise((r) => setTimeout(r, plan.gapMs));
      await timedCall("NodePublishVolume", () => driver.publish(i));
    });
    for (let i = 0; i < plan.publishes; i++) await driver.verify(i);
    await phase("NodeUnpublishVolume", plan.publishes, (i) => timedCall("NodeUnpublishVolume", () => driver.unpublish(i)));
    // As bench:upstream does: with --soak, the first cold Mounts come before
    // that many warm Mounts (10 at a time) and --idle-ms of idling, the rest after.
    const coldMount = (k: number) =>
      timedCall("Mount (new identity)", async () => verifyMountResponse(await provider.client.mount(mountRequest(workload.namespace, k, coldIdentity(stack.name, k)))));
    const coldBefore = plan.soak > 0 ? Math.min(plan.cold, COLD_MOUNTS_BEFORE_SOAK) : plan.cold;
    await env.keyVault.warmUp(EMULATOR_WARM_UP_ROUNDS);
    await phase("Mount (new identity)", coldBefore, coldMount);
    if (plan.soak > 0) {
      await runConcurrently(plan.soak, 10, async (i) => verifyMountResponse(await provider.client.mount(mountRequest(workload.namespace, i, POD_IDENTITY))));
      await new Promise((r) => setTimeout(r, plan.idleMs));
      await env.keyVault.warmUp(EMULATOR_WARM_UP_ROUNDS);
      await phase("Mount (new identity, after the soak)", plan.cold - coldBefore, (k) => coldMount(coldBefore + k));
    }
    await phase("Mount (warm)", plan.mounts, (k) =>
      timedCall("Mount (warm)", async () => verifyMountResponse(await provider.client.mount(mountRequest(workload.namespace, k, POD_IDENTITY)))),
    );
    rss = { driver: driver.program.rssMiB(), provider: provider.program.rssMiB() };
  } finally {
    await driver.stop();
    provider.client.close();
    await provider.program.stop();
  }
  return { calls, cpu, rss, spans: { driver: readSpans(join(traceDir, "driver.jsonl")), provider: readSpans(join(traceDir, "provider.jsonl")) } };
}

const fmt = (v: number) => (v >= 10 ? v.toFixed(1) : v.toFixed(2));

/** Steps of each kind of call: per call the sum of each step's spans inside it, then p50 / p90 over calls. */
/** The publishes of a node boot, all started together: their times, and when each step ran relative to the start. */
function bootReport(traced: Traced, upstream?: Traced): string {
  const calls = traced.calls.filter((c) => c.what === "boot");
  if (calls.length === 0) return "";
  const t0 = Math.min(...calls.map((c) => c.start));
  const t1 = Math.max(...calls.map((c) => c.end));
  const times = (list: Call[]) => {
    const ms = list.map((c) => c.end - c.start);
    return `p50 ${fmt(quantile(ms, 0.5))} ms, p99 ${fmt(quantile(ms, 0.99))} ms`;
  };
  const theirs = upstream?.calls.filter((c) => c.what === "boot") ?? [];
  const lines = [`\nNode boot: ${calls.length} publishes at once on programs just started, ours: ${times(calls)}${theirs.length ? `; upstream: ${times(theirs)}` : ""}`];
  for (const program of ["driver", "provider"] as const) {
    const steps = new Map<string, { count: number; ms: number; first: number; last: number }>();
    for (const span of traced.spans[program]) {
      if (span.start < t0 || span.start > t1) continue;
      const s = steps.get(span.step) ?? { count: 0, ms: 0, first: Infinity, last: 0 };
      s.count++;
      s.ms += span.ms;
      s.first = Math.min(s.first, span.start - t0);
      s.last = Math.max(s.last, span.start + span.ms - t0);
      steps.set(span.step, s);
    }
    lines.push(`  ${program} (step: how many, their total, from the first start to the last end, ms after the burst began):`);
    for (const [step, s] of [...steps].sort((a, b) => a[1].first - b[1].first)) {
      lines.push(`    ${step.slice(0, 60).padEnd(60)} ${String(s.count).padStart(5)}  ${fmt(s.ms).padStart(8)} ms   ${fmt(s.first).padStart(7)} → ${fmt(s.last).padStart(7)}`);
    }
  }
  return lines.join("\n");
}

/** Every span of the median call of each kind, in the order they started. */
function timelineReport(traced: Traced): string {
  const lines: string[] = [];
  const kinds = [...new Set(traced.calls.map((c) => c.what))].filter((k) => k !== "boot");
  for (const what of kinds) {
    const calls = traced.calls.filter((c) => c.what === what).sort((a, b) => a.end - a.start - (b.end - b.start));
    const call = calls[Math.floor((calls.length - 1) / 2)]!;
    lines.push(`\nTimeline of the median ${what} (${fmt(call.end - call.start)} ms at the client; ms after it sent the call, then the span's length):`);
    const spans = (["driver", "provider"] as const).flatMap((program) =>
      traced.spans[program].filter((s) => s.start >= call.start && s.start <= call.end).map((s) => ({ program, ...s })),
    );
    for (const s of spans.sort((a, b) => a.start - b.start)) {
      lines.push(`  ${fmt(s.start - call.start).padStart(7)}  +${fmt(s.ms).padStart(6)}  ${s.program.padEnd(8)} ${s.step.slice(0, 90)}`);
    }
  }
  return lines.join("\n");
}

/** Each call of one kind in order: its time at the client and the provider's spans of 1 ms or more inside it. */
function samplesReport(traced: Traced, what: string): string {
  const lines = [`\nEach ${what}, in order (ms at the client; the provider's spans of 1 ms or more, ms after the call was sent, and their length):`];
  for (const call of traced.calls.filter((c) => c.what === what)) {
    const spans = traced.spans.provider.filter((s) => s.start >= call.start && s.start <= call.end && s.ms >= 1);
    lines.push(`  ${fmt(call.end - call.start).padStart(6)}  ${spans.map((s) => `${s.step.slice(0, 50)} @${fmt(s.start - call.start)} +${fmt(s.ms)}`).join("; ")}`);
  }
  return lines.join("\n");
}

function report(name: string, traced: Traced, upstream?: Traced): string {
  const lines: string[] = [`RSS after the calls: driver ${traced.rss.driver.toFixed(1)} MiB, provider ${traced.rss.provider.toFixed(1)} MiB`];
  const kinds = [...new Set(traced.calls.map((c) => c.what))].filter((k) => k !== "boot");
  for (const what of kinds) {
    const calls = traced.calls.filter((c) => c.what === what);
    const clientMs = calls.map((c) => c.end - c.start);
    const theirs = upstream?.calls.filter((c) => c.what === what).map((c) => c.end - c.start);
    const cpu = traced.cpu[what];
    lines.push(
      `\n${what} (${calls.length} calls), ${name}: client p50 ${fmt(quantile(clientMs, 0.5))} ms, p90 ${fmt(quantile(clientMs, 0.9))} ms` +
        (theirs?.length ? `; upstream p50 ${fmt(quantile(theirs, 0.5))} ms, p90 ${fmt(quantile(theirs, 0.9))} ms` : "") +
        (cpu ? `; CPU per call: driver ${fmt(cpu.driver)} ms, provider ${fmt(cpu.provider)} ms` : ""),
    );
    for (const program of ["driver", "provider"] as const) {
      const perStep = new Map<string, number[]>();
      calls.forEach((call, k) => {
        for (const span of traced.spans[program]) {
          if (span.start < call.start || span.start > call.end) continue;
          const list = perStep.get(span.step) ?? Array.from({ length: calls.length }, () => 0);
          list[k]! += span.ms;
          perStep.set(span.step, list);
        }
      });
      if (perStep.size === 0) continue;
      lines.push(`  ${program}:`);
      const rows = [...perStep].map(([step, ms]) => ({ step, p50: quantile(ms, 0.5), p90: quantile(ms, 0.9), seen: ms.filter((v) => v > 0).length }));
      for (const r of rows) lines.push(`    ${r.step.padEnd(64)} p50 ${fmt(r.p50).padStart(6)} ms  p90 ${fmt(r.p90).padStart(6)} ms  (in ${r.seen} of ${calls.length})`);
      if (program === "driver") {
        const handler = perStep.get(`csi ${what}`);
        if (handler) {
          const outside = calls.map((c, k) => c.end - c.start - handler[k]!);
          lines.push(`    ${"client's time outside the handler".padEnd(64)} p50 ${fmt(quantile(outside, 0.5)).padStart(6)} ms  p90 ${fmt(quantile(outside, 0.9)).padStart(6)} ms`);
        }
      }
    }
  }
  return lines.join("\n");
}

async function inside(plan: Plan): Promise<void> {
  if (!inPrivateNamespaces()) throw new Error("bench/trace.ts: --inside runs only in the benchmark's own namespaces");
  setUpPrivateNetwork(plan.dir, EMULATED_HOSTS);
  const cgroups = await MemoryCgroup.create(`sscsi-trace-${process.pid}`);
  let cluster: Cluster | undefined;
  let keyVault: KeyVault | undefined;
  try {
    const kvDir = join(plan.dir, "keyvault");
    await mkdir(kvDir);
    [cluster, keyVault] = await Promise.all([startCluster(), startKeyVault(plan.bundles.emulator, kvDir, plan.cold, plan.boot)]);
    const env: Environment = {
      dir: plan.dir,
      kc: loadKubeConfig(cluster.kubeconfigPath),
      kubeconfig: cluster.kubeconfigPath,
      keyVault,
      cgroups,
      sizes: FULL,
      log: (line) => console.log(`bench/trace: ${line}`),
    };
    const traceDir = join(plan.dir, "trace");
    await mkdir(traceDir);
    const ours = ourStack(plan.bundles, {
      nodeFlags: (program) => [
        ...(plan.untraced ? [] : ["--import", writeHook(plan.dir)]),
        ...(plan.cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${join(plan.cpuProf, program)}`] : []),
      ],
      env: (program) => ({ SSCSI_TRACE_FILE: join(traceDir, `${program}.jsonl`) }),
      imageFlags: (program) => plan.flags[program],
      wrapper: (program) => (program === "provider" ? plan.providerWrapper : plan.driverWrapper),
    });
    env.log(`ours: ${plan.publishes} warm publishes and unpublishes, ${plan.cold} Mounts by new identities, ${plan.mounts} warm Mounts`);
    const traced = await traceStack(env, ours, plan, traceDir);
    let theirs: Traced | undefined;
    if (plan.upstreamBin) {
      env.log("upstream: the same calls");
      theirs = await traceStack(env, upstreamStack(plan.upstreamBin), plan, traceDir);
    }
    console.log(bootReport(traced, theirs));
    console.log(report("ours", traced, theirs));
    if (plan.timeline) console.log(timelineReport(traced));
    if (plan.samples) console.log(samplesReport(traced, "Mount (new identity)"));
  } finally {
    await stopAllPrograms();
    await keyVault?.stop();
    await cluster?.stop();
    await cgroups.removeTree();
  }
}

async function outside(argv: readonly string[]): Promise<void> {
  requireRoot();
  const args = parseArgs(argv);
  const dir = await mkdtemp(join(tmpdir(), "bench-trace-"));
  let ok = false;
  try {
    await ensureBinaries();
    let upstreamBin: string | undefined;
    if (args.upstream) {
      const env = { ...process.env, PATH: `${process.env.PATH ?? ""}:/usr/local/go/bin` };
      const { stdout } = await promisify(execFile)("bash", [join(REPO, "test", "harness", "install-upstream.sh")], { env, maxBuffer: 64 * 1024 * 1024 });
      upstreamBin = stdout.trim().split("\n").pop()!;
    }
    // With --cpu-prof the bundles and their source maps stay beside the profiles, to read them against the sources.
    const outdir = args.cpuProf ? join(args.cpuProf, "dist") : join(dir, "dist");
    const results = await bundlePrograms({ outdir, quiet: true, sourcemap: args.cpuProf !== undefined });
    const file = (name: string) => results.find((r) => r.program === name)!.file;
    const plan: Plan = { dir, bundles: { driver: file("driver"), provider: file("provider"), emulator: file("emulator") }, upstreamBin, publishes: args.publishes, gapMs: args.gapMs, cold: args.cold, mounts: args.mounts, boot: args.boot, bootIdentities: args.bootIdentities, cpuProf: args.cpuProf, timeline: args.timeline, samples: args.samples, untraced: args.untraced, soak: args.soak, idleMs: args.idleMs, flags: args.flags, driverWrapper: args.driverWrapper, providerWrapper: args.providerWrapper };
    const code = await runInPrivateNamespaces(fileURLToPath(import.meta.url), ["--inside", JSON.stringify(plan)]);
    if (code !== 0) throw new Error(`bench/trace.ts: the run inside the private namespaces failed (exit ${code})`);
    ok = true;
  } finally {
    if (ok) await removeTestTree(dir);
    else console.error(`bench/trace.ts: logs kept in ${dir}`);
  }
}

const argv = process.argv.slice(2);
try {
  if (argv[0] === "--inside") await inside(JSON.parse(argv[1]!) as Plan);
  else await outside(argv);
} catch (err) {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
}
