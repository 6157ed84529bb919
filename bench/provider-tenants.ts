// Benchmark: what hostile tenants cost one provider. The provider runs as its
// image runs it (the bundle, with Dockerfile.provider's Node flags), in a memory cgroup of its own
// with the chart's limit, against the Key Vault emulator through the real
// Azure SDK. Each case starts a fresh provider and prints its RSS, the
// cgroup's usage (what the kubelet and the OOM killer count), and the size of
// /metrics:
//
//   vaults     2,000 made-up vault names from one identity, then idle
//   names      4,000 object names, then 4,000 vault names
//   nxdomain   300 vault names whose hosts do not resolve
//   lists      20 and 40 parallel 1 MiB objects lists from as many namespaces, after ordinary mounts:
//              16,000 objects (over the YAML budget), and the costliest the limits let through
//   keys       4 lists of one 30,000-key mapping (289 KB) beside an ordinary 140-object list
//
// Run as root (port 443 on a loopback address, cgroups), after `node scripts/bundle.ts provider`:
//   node bench/provider-tenants.ts [case ...] [--idle-ms=N] [--limit-mib=N] [--heap-snapshots] [--node-flag=F ...]
// --heap-snapshots writes a heap snapshot of the provider (after a full GC) at
// the end of each case, and prints the constructors holding the most memory.
import { readFileSync, readdirSync, rmSync, mkdtempSync } from "node:fs";
import { buildSync } from "esbuild";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { SeedDocument } from "../src/emulator/index.ts";
import { objectsYaml } from "../test/provider/client.ts";
import { DNS_HOOK, startProvider, startTestEmulator, type RunningProvider } from "../test/provider/env.ts";
import { podAttributes } from "../test/provider/seed.ts";
import { MemoryCgroup } from "./memory-cgroup.ts";
import { rssMiB } from "./samples.ts";
import { imageNodeFlags } from "./stacks.ts";

const BUNDLE = resolve(import.meta.dirname, "../dist/provider/secrets-store-csi-provider-azure.mjs");
const SP = { clientid: "71111111-1111-4111-8111-111111111111", clientsecret: "tenants-bench-secret" };
const VAULT = "kv-tenants";
const SEED: SeedDocument = {
  vaults: [{ name: VAULT, secrets: Array.from({ length: 140 }, (_, i) => ({ name: `s-${i}`, value: `value-${i}` })) }],
  applications: [{ name: "sp", clientId: SP.clientid, clientSecret: SP.clientsecret, roleAssignments: [{ vault: "*", permissions: ["all"] }] }],
};
const MiB = 1024 * 1024;

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => Number(args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback);
const IDLE_MS = option("idle-ms", 30_000);
const LIMIT_MIB = option("limit-mib", 192);
const HEAP_SNAPSHOTS = args.includes("--heap-snapshots");
/** --node-flag=X (repeatable): more Node flags for the provider, to try settings. */
const EXTRA_NODE_FLAGS = args.filter((a) => a.startsWith("--node-flag=")).map((a) => a.slice("--node-flag=".length));
const CASES = ["vaults", "names", "nxdomain", "lists", "keys"] as const;
type Case = (typeof CASES)[number];
const chosen = args.filter((a) => !a.startsWith("--")) as Case[];
for (const c of chosen) if (!CASES.includes(c)) throw new Error(`unknown case ${c} (cases: ${CASES.join(", ")})`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runLimited<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) await task(i);
    }),
  );
}

interface Reading {
  rss: number;
  cgroup: number;
  anon: number;
  /** Open file descriptors (sockets kept alive to vaults among them). */
  fds: number;
}

class Subject {
  readonly provider: RunningProvider;
  readonly group: MemoryCgroup;
  private peakRss = 0;
  private sampler: NodeJS.Timeout;
  private readonly dir: string;

  constructor(provider: RunningProvider, group: MemoryCgroup, dir: string) {
    this.provider = provider;
    this.group = group;
    this.dir = dir;
    this.sampler = setInterval(() => {
      try {
        this.peakRss = Math.max(this.peakRss, rssMiB(provider.pid));
      } catch {
        // exited
      }
    }, 20);
  }

  read(): Reading {
    const m = this.group.memory();
    return { rss: rssMiB(this.provider.pid), cgroup: m.usageMiB, anon: m.anonMiB, fds: readdirSync(`/proc/${this.provider.pid}/fd`).length };
  }

  peak(): { rss: number; cgroup: number } {
    return { rss: this.peakRss, cgroup: this.group.memory().maxUsageMiB };
  }

  /** V8's heap (used and committed) and memory outside it (Buffers, TLS), from the provider's own metrics. */
  async heap(): Promise<string> {
    const text = await this.provider.metrics();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN) / MiB;
    return `heap used ${value("nodejs_heap_size_used_bytes").toFixed(1)} of ${value("nodejs_heap_size_total_bytes").toFixed(1)} MiB, external ${value("nodejs_external_memory_bytes").toFixed(1)} MiB`;
  }

  async metricsBytes(): Promise<number> {
    return Buffer.byteLength(await this.provider.metrics());
  }

  /** A heap snapshot (V8 runs a full GC first); returns the biggest holders by constructor. */
  async heapSummary(label: string): Promise<string> {
    const before = new Set(readdirSync(this.dir));
    process.kill(this.provider.pid, "SIGUSR2");
    for (let i = 0; i < 600; i++) {
      await sleep(100);
      const fresh = readdirSync(this.dir).filter((f) => f.endsWith(".heapsnapshot") && !before.has(f));
      if (fresh.length) {
        const path = join(this.dir, fresh[0]!);
        // the snapshot is complete once it parses
        for (let tries = 0; tries < 240; tries++) {
          await sleep(500);
          const summary = summariseSnapshot(path, label);
          if (summary) return summary;
        }
        return `${label}: the heap snapshot did not complete`;
      }
    }
    return `${label}: no heap snapshot written`;
  }

  async stop(): Promise<void> {
    clearInterval(this.sampler);
    await this.provider.stop();
    await this.group.remove();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Self size per constructor name of a .heapsnapshot, the 12 largest; undefined while the file is incomplete. */
function summariseSnapshot(path: string, label: string): string | undefined {
  let snap;
  try {
    snap = JSON.parse(readFileSync(path, "utf8")) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
    };
  } catch {
    return undefined;
  }
  const fields = snap.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const types = snap.snapshot.meta.node_types[0];
  const totals = new Map<string, { size: number; count: number }>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!]!;
    const name = type === "object" || type === "closure" ? snap.strings[snap.nodes[i + nameAt]!]! : `(${type})`;
    const size = snap.nodes[i + sizeAt]!;
    total += size;
    const t = totals.get(name) ?? { size: 0, count: 0 };
    t.size += size;
    t.count++;
    totals.set(name, t);
  }
  const top = [...totals].sort((a, b) => b[1].size - a[1].size).slice(0, 12);
  rmSync(path, { force: true });
  return [
    `${label}: live heap ${(total / MiB).toFixed(1)} MiB`,
    ...top.map(([name, t]) => `    ${(t.size / MiB).toFixed(2).padStart(7)} MiB  ${String(t.count).padStart(8)}  ${name.slice(0, 60)}`),
  ].join("\n");
}

async function start(emulator: Awaited<ReturnType<typeof startTestEmulator>>, name: string, extraEnv: NodeJS.ProcessEnv = {}, flags: string[] = []): Promise<Subject> {
  const parent = await MemoryCgroup.create(`provider-tenants-${process.pid}-${name}`, { limitBytes: LIMIT_MIB * MiB });
  const dir = mkdtempSync(join(tmpdir(), "provider-tenants-"));
  const nodeFlags = [...imageNodeFlags("Dockerfile.provider"), ...EXTRA_NODE_FLAGS, ...(HEAP_SNAPSHOTS ? ["--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${dir}`] : [])];
  process.env.SSCSI_PROVIDER_PROGRAM = BUNDLE;
  process.env.SSCSI_NODE_FLAGS = nodeFlags.join(" ");
  try {
    // --lite-mode has no WebAssembly, so Node cannot strip the types of dns-hook.ts: give it JavaScript
    const dnsHook = join(dir, "dns-hook.mjs");
    buildSync({ entryPoints: [DNS_HOOK], bundle: true, platform: "node", format: "esm", outfile: dnsHook, logLevel: "warning" });
    const provider = await startProvider(emulator.emulator, emulator.address, flags, { LOG_LEVEL: "info", ...extraEnv }, { wrap: (c, a) => parent.wrap(c, a), dnsHook });
    return new Subject(provider, parent, dir);
  } catch (err) {
    await parent.remove();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

const fmt = (r: Reading) => `RSS ${r.rss.toFixed(1)} MiB, cgroup ${r.cgroup.toFixed(1)} MiB (anon ${r.anon.toFixed(1)}), ${r.fds} fds`;

function attrs(vault: string, objects: string, pod = "pod-1", namespace = "ns1"): Record<string, string> {
  return podAttributes({ keyvaultName: vault, tenantID: emulatorTenant, objects }, { name: pod, namespace, serviceAccount: "sa1" });
}
let emulatorTenant = "";

/** An ordinary class of 140 secrets, above the 8 KiB parsed in place (so it goes to the worker). */
function ordinaryList(): string {
  const text = objectsYaml(Array.from({ length: 140 }, (_, i) => ({ objectName: `s-${i}`, objectType: "secret", objectAlias: `config/secret-file-${i}.txt` })));
  if (text.length <= 8 * 1024) throw new Error("the ordinary list must be above 8 KiB");
  return text;
}

/** The costliest list the limits let through: 1,000 objects with 1 KiB aliases (just under 1 MiB), refused on the last object. */
function costliestList(tag: string): string {
  const segment = (c: string) => c.repeat(235);
  return objectsYaml(
    Array.from({ length: 1000 }, (_, i) => ({
      objectName: `h-${i}`,
      objectType: i === 999 ? "bogus" : "secret",
      objectAlias: `${tag}/${segment("a")}/${segment("b")}/${segment("c")}/${segment("d")}/${i}`,
    })),
  );
}

const oneSecret = objectsYaml([{ objectName: "s-0", objectType: "secret" }]);
const madeUpVault = (i: number) => `kv-made-up-${i}`;

async function mountQuietly(subject: Subject, attributes: Record<string, string>, timeoutMs = 60_000): Promise<string> {
  try {
    await subject.provider.client.mount({ attributes, secrets: SP }, timeoutMs);
    return "OK";
  } catch (err) {
    return String((err as { code?: number }).code);
  }
}

async function idleAndReport(subject: Subject, what: string): Promise<void> {
  await sleep(IDLE_MS);
  console.log(`  after ${IDLE_MS / 1000} s idle: ${fmt(subject.read())}; ${await subject.heap()}`);
  if (HEAP_SNAPSHOTS) {
    console.log(await subject.heapSummary(`  heap after ${what}`));
    console.log(`  after the snapshot's full GC: ${fmt(subject.read())}; ${await subject.heap()}`);
  }
}

const run: Record<Case, (emulator: Awaited<ReturnType<typeof startTestEmulator>>) => Promise<void>> = {
  async vaults(emulator) {
    const subject = await start(emulator, "vaults");
    try {
      await subject.provider.client.mount({ attributes: attrs(VAULT, oneSecret), secrets: SP });
      const before = subject.read();
      console.log(`vaults: 2,000 made-up vault names, one identity`);
      console.log(`  warm: ${fmt(before)}; ${await subject.heap()}`);
      const codes = new Map<string, number>();
      await runLimited(2000, 20, async (i) => {
        const code = await mountQuietly(subject, attrs(madeUpVault(i), oneSecret));
        codes.set(code, (codes.get(code) ?? 0) + 1);
      });
      console.log(`  after: ${fmt(subject.read())}; peak RSS ${subject.peak().rss.toFixed(1)} MiB, cgroup ${subject.peak().cgroup.toFixed(1)} MiB; codes ${JSON.stringify(Object.fromEntries(codes))}`);
      await idleAndReport(subject, "2,000 vault names");
      console.log(`  /metrics ${(await subject.metricsBytes() / 1024).toFixed(1)} KiB; OOM kills ${subject.group.oomKills()}`);
    } finally {
      await subject.stop();
    }
  },

  async names(emulator) {
    const subject = await start(emulator, "names");
    try {
      await subject.provider.client.mount({ attributes: attrs(VAULT, oneSecret), secrets: SP });
      console.log(`names: 4,000 object names, then 4,000 vault names`);
      console.log(`  warm: ${fmt(subject.read())}; /metrics ${(await subject.metricsBytes() / 1024).toFixed(1)} KiB`);
      await runLimited(400, 10, async (i) => {
        const names = Array.from({ length: 10 }, (_, j) => ({ objectName: `made-up-object-${i * 10 + j}`, objectType: "secret" }));
        await mountQuietly(subject, attrs(VAULT, objectsYaml(names)));
      });
      console.log(`  after 4,000 object names: ${fmt(subject.read())}; /metrics ${(await subject.metricsBytes() / 1024).toFixed(1)} KiB`);
      await runLimited(4000, 20, (i) => mountQuietly(subject, attrs(madeUpVault(i), oneSecret)));
      const peak = subject.peak();
      console.log(`  after 4,000 vault names: ${fmt(subject.read())}; peak RSS ${peak.rss.toFixed(1)} MiB, cgroup ${peak.cgroup.toFixed(1)} MiB`);
      console.log(`  /metrics ${(await subject.metricsBytes() / 1024).toFixed(1)} KiB (${(await subject.provider.metrics()).split("\n").length} lines); OOM kills ${subject.group.oomKills()}`);
      await idleAndReport(subject, "4,000 + 4,000 names");
    } finally {
      await subject.stop();
    }
  },

  async nxdomain(emulator) {
    const names = Array.from({ length: 300 }, (_, i) => `kv-nowhere-${i}`);
    const subject = await start(emulator, "nxdomain", { SSCSI_EMULATOR_NXDOMAIN: names.map((n) => `${n}.vault.azure.net`).join(",") });
    try {
      await subject.provider.client.mount({ attributes: attrs(VAULT, oneSecret), secrets: SP });
      // the first made-up name loads the code paths of the refusal
      await mountQuietly(subject, attrs("kv-nowhere-warm", oneSecret));
      const before = subject.read();
      console.log(`nxdomain: 300 vault names that do not resolve`);
      console.log(`  warm: ${fmt(before)}`);
      await runLimited(names.length, 20, (i) => mountQuietly(subject, attrs(names[i]!, oneSecret)));
      const after = subject.read();
      console.log(`  after: ${fmt(after)} (RSS ${(after.rss - before.rss).toFixed(1)} MiB more)`);
      await idleAndReport(subject, "300 unresolvable names");
    } finally {
      await subject.stop();
    }
  },

  async lists(emulator) {
    const subject = await start(emulator, "lists");
    try {
      const objects140 = ordinaryList();
      await runLimited(250, 10, (i) => subject.provider.client.mount({ attributes: attrs(VAULT, objects140, `ordinary-${i}`), secrets: SP }));
      const before = subject.read();
      console.log(`lists: parallel 1 MiB objects lists from as many namespaces, after 250 ordinary mounts of 140 objects`);
      console.log(`  before: ${fmt(before)}; ${await subject.heap()}`);
      const many = objectsYaml(Array.from({ length: 16_000 }, (_, i) => ({ objectName: `h-${i}`, objectType: "secret" })));
      const kinds: Array<[string, (tag: string) => string]> = [
        ["16,000 objects (refused by the YAML budget)", (tag) => many.replace("h-0", `h-0-${tag}`)],
        ["1,000 objects with 1 KiB aliases (parsed, refused on the last)", costliestList],
      ];
      for (const [kind, list] of kinds) {
        for (const parallel of [20, 40]) {
          const codes = new Map<string, number>();
          await Promise.all(
            Array.from({ length: parallel }, async (_, i) => {
              // each tenant's list differs, so nothing is shared or cached
              const code = await mountQuietly(subject, attrs(VAULT, list(`${parallel}-${i}`), `hostile-${i}`, `tenant-${i}`), 120_000);
              codes.set(code, (codes.get(code) ?? 0) + 1);
            }),
          );
          const peak = subject.peak();
          console.log(
            `  ${parallel} parallel, ${kind}: codes ${JSON.stringify(Object.fromEntries(codes))}; peak RSS ${peak.rss.toFixed(1)} MiB, cgroup ${peak.cgroup.toFixed(1)} MiB; ` +
              `limit hit ${subject.group.failCount()} times, OOM kills ${subject.group.oomKills()}`,
          );
        }
      }
      console.log(`  now: ${fmt(subject.read())}`);
      await idleAndReport(subject, "the lists");
    } finally {
      await subject.stop();
    }
  },

  async keys(emulator) {
    const subject = await start(emulator, "keys");
    try {
      const mapping = ["array: []", ...Array.from({ length: 30_000 }, (_, i) => `k${i}: v`)].join("\n");
      const objects140 = ordinaryList();
      console.log(`keys: 4 lists of a 30,000-key mapping (${(mapping.length / 1024).toFixed(0)} KiB) from 4 tenants, then an ordinary 140-object list (${(objects140.length / 1024).toFixed(1)} KiB)`);
      const events: string[] = [];
      const started = performance.now();
      const hostile = Array.from({ length: 4 }, (_, i) =>
        mountQuietly(subject, attrs(VAULT, `${mapping}\n# ${i}\n`, `hostile-${i}`, `tenant-${i}`), 120_000).then((code) => {
          events.push(`hostile-${i} ${code} at ${((performance.now() - started) / 1000).toFixed(1)} s`);
        }),
      );
      await sleep(200);
      const ordinary = mountQuietly(subject, attrs(VAULT, objects140, "ordinary", "tenant-b"), 120_000).then((code) => {
        events.push(`ordinary ${code} at ${((performance.now() - started) / 1000).toFixed(1)} s`);
      });
      await Promise.all([...hostile, ordinary]);
      console.log(`  order: ${events.join("; ")}`);
      const peak = subject.peak();
      console.log(`  peak RSS ${peak.rss.toFixed(1)} MiB, cgroup ${peak.cgroup.toFixed(1)} MiB; OOM kills ${subject.group.oomKills()}`);
    } finally {
      await subject.stop();
    }
  },
};

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("run as root: the emulator listens on port 443 of a loopback address, and cgroups");
  readFileSync(BUNDLE); // fails early, naming the file, when the bundle is missing
  const emulator = await startTestEmulator(SEED);
  emulatorTenant = emulator.emulator.tenantId;
  console.log(`provider ${BUNDLE} with node ${imageNodeFlags("Dockerfile.provider").join(" ")}${EXTRA_NODE_FLAGS.map((f) => ` ${f}`).join("")}, memory cgroup limit ${LIMIT_MIB} MiB, Node ${process.version}`);
  try {
    for (const c of chosen.length ? chosen : CASES) await run[c](emulator);
  } finally {
    await emulator.emulator.close();
  }
}

await main();
