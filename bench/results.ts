// The comparison table (figures, and ours / upstream as a ratio) and the
// generated bench/RESULTS.md around it. The table sits between markers so the
// README's performance section can be regenerated from it (bench/readme.ts).
import { EMULATOR_WARM_UP_ROUNDS, type BootFigures, type Sizes, type StackFigures } from "./scenarios.ts";
import { median, quantile } from "./samples.ts";

export const TABLE_START = "<!-- bench:table:start -->";
export const TABLE_END = "<!-- bench:table:end -->";

export interface Row {
  figure: string;
  ours: string;
  upstream: string;
  ratio: string;
}

const mib = (v: number) => `${v.toFixed(1)} MiB`;
const ms = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v < 10 ? 1 : 0)} ms`);
const ratio = (ours: number, upstream: number) => (upstream > 0 ? `${(ours / upstream).toFixed(ours / upstream < 0.1 ? 2 : 1)}×` : "—");
const p50 = (samples: number[]) => quantile(samples, 0.5);

/** RSS with the cgroup's usage beside it, and the part of it that cannot be reclaimed (anonymous, tmpfs). */
function memoryCell(m: StackFigures["driverIdle"], withTmpfs = false): string {
  const tmpfs = withTmpfs ? `, tmpfs ${mib(m.cgroup.tmpfsMiB)}` : "";
  return `${mib(m.rssMiB)} (cgroup ${mib(m.cgroup.usageMiB)}: anon ${mib(m.cgroup.anonMiB)}${tmpfs})`;
}

function kibPerVolume(f: StackFigures, volumes: number): number {
  return ((f.driverAt.moreVolumes.rssMiB - f.driverIdle.rssMiB) * 1024) / volumes;
}

export function tableRows(ours: StackFigures, upstream: StackFigures, sizes: Sizes): Row[] {
  const both = (figure: string, pick: (f: StackFigures) => number, show: (v: number) => string): Row => ({
    figure,
    ours: show(pick(ours)),
    upstream: show(pick(upstream)),
    ratio: ratio(pick(ours), pick(upstream)),
  });
  const memory = (figure: string, pick: (f: StackFigures) => StackFigures["driverIdle"], withTmpfs = false): Row => ({
    figure,
    ours: memoryCell(pick(ours), withTmpfs),
    upstream: memoryCell(pick(upstream), withTmpfs),
    ratio: ratio(pick(ours).rssMiB, pick(upstream).rssMiB),
  });
  const soak = (f: StackFigures) => `${mib(f.soak.startRssMiB)} → ${mib(f.soak.endRssMiB)} (peak ${mib(f.soak.peakRssMiB)}; after ${sizes.soakIdleMs / 1000} s idle ${mib(f.soak.idleRssMiB)})`;
  const limited = (f: StackFigures) =>
    `${f.limited.oomKills} OOM kills, ${f.limited.failedPublishes} of ${f.limited.volumes} publishes failed` +
    `${f.limited.driverSurvived ? "" : ", driver killed"} (peak ${mib(f.limited.peakMiB)}, failcnt ${f.limited.failCount})`;
  const v = sizes.volumes;
  const w = sizes.moreVolumes;
  return [
    memory("Driver idle RSS (cluster mode)", (f) => f.driverIdle),
    memory("Provider idle RSS", (f) => f.providerIdle),
    memory(`Driver RSS with ${v} volumes mounted (cluster mode, real provider)`, (f) => f.driverAt.volumes, true),
    memory(`Driver RSS with ${w} volumes mounted`, (f) => f.driverAt.moreVolumes, true),
    both(`Driver RSS growth per volume (idle → ${w})`, (f) => kibPerVolume(f, w), (x) => `${x.toFixed(0)} KiB`),
    memory(`Provider RSS after serving ${v} volumes`, (f) => f.providerAt.volumes),
    memory(`Provider RSS after serving ${w} volumes`, (f) => f.providerAt.moreVolumes),
    {
      figure: `Provider RSS over ${sizes.soakMounts.toLocaleString("en-US")} Mounts (start → end)`,
      ours: soak(ours),
      upstream: soak(upstream),
      ratio: ratio(ours.soak.endRssMiB, upstream.soak.endRssMiB),
    },
    both("Start to answering Probe (driver), median", (f) => median(f.driverStartMs), ms),
    both("Start to answering Version (provider), median", (f) => median(f.providerStartMs), ms),
    both("Publish, warm, sequential p50 (full stacks)", (f) => p50(f.publishSequentialMs), ms),
    both(`Publish, ${sizes.concurrency} concurrent p50`, (f) => p50(f.publishConcurrentMs), ms),
    both("Unpublish per volume p50", (f) => p50(f.unpublishMs), ms),
    both("Provider: 10 concurrent Mounts of the same 10 objects (wall, median)", (f) => median(f.providerConcurrentMs), ms),
    both("Provider: cold Mount (new identity), median", (f) => median(f.providerColdMs), ms),
    both(`Key Vault reads per rotation interval, ${sizes.rotationPods} pods sharing a class`, (f) => f.rotationReadsPerInterval, (x) => x.toFixed(0)),
    ...bootRows(`Node boot, ${sizes.bootPods} pods publishing at once, one class, one identity`, ours.boot.oneIdentity, upstream.boot.oneIdentity),
    ...bootRows(`Node boot, ${sizes.bootPods} pods publishing at once, each its own identity`, ours.boot.ownIdentities, upstream.boot.ownIdentities),
    { figure: `Driver with ${w} volumes inside a ${sizes.limitMiB} MiB memory cgroup`, ours: limited(ours), upstream: limited(upstream), ratio: "—" },
  ];
}

/** Time to OK (p50 / p99, the ratio of the p99s) and what the backend saw. */
function bootRows(figure: string, ours: BootFigures, upstream: BootFigures): Row[] {
  const times = (b: BootFigures) => `${ms(quantile(b.publishMs, 0.5))} / ${ms(quantile(b.publishMs, 0.99))}`;
  const backend = (b: BootFigures) => `${b.keyVaultReads} / ${b.challenges} / ${b.tokenRequests}`;
  return [
    { figure: `${figure}: time to OK, p50 / p99`, ours: times(ours), upstream: times(upstream), ratio: ratio(quantile(ours.publishMs, 0.99), quantile(upstream.publishMs, 0.99)) },
    { figure: `${figure}: Key Vault reads / challenges / token requests`, ours: backend(ours), upstream: backend(upstream), ratio: ratio(ours.keyVaultReads, upstream.keyVaultReads) },
  ];
}

export function renderTable(rows: readonly Row[]): string {
  const escape = (cell: string) => cell.replace(/\|/g, "\\|");
  return [
    "| Figure | Ours | Upstream | Ours / upstream |",
    "|---|---|---|---|",
    ...rows.map((r) => `| ${escape(r.figure)} | ${escape(r.ours)} | ${escape(r.upstream)} | ${r.ratio} |`),
  ].join("\n");
}

/** The text between the table markers of a generated results file. */
export function extractTable(markdown: string, source = "the results file"): string {
  const start = markdown.indexOf(TABLE_START);
  const end = markdown.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`${source} has no ${TABLE_START} ... ${TABLE_END} section`);
  return markdown.slice(start + TABLE_START.length, end).trim();
}

export interface RunFacts {
  date: string;
  machine: string;
  node: string;
  go: string;
  kube: string;
  commit: string;
  ours: string;
  upstream: string;
  durationS: number;
  quick: boolean;
}

export function renderResults(rows: readonly Row[], facts: RunFacts, sizes: Sizes): string {
  return `# Ours side by side with upstream

Generated by \`npm run bench:upstream\`${facts.quick ? " --quick (smoke sizes, not figures to quote)" : ""}; do not edit by hand.
Read the ratios rather than the absolute times: the machine is shared with other work.

- Date: ${facts.date}; the run took ${Math.round(facts.durationS)} s.
- Machine: ${facts.machine}.
- Ours: commit ${facts.commit}; ${facts.ours}.
- Upstream: ${facts.upstream}; ${facts.go}. The driver's logging module monis.app/mlog v0.0.2 is not served by the Go
  module proxy and is replaced by a logging-only stand-in (test/interop/upstream/mlog-standin) that writes through klog;
  nothing else of the driver changes.
- Both stacks, one after the other, against the same Key Vault emulator (HTTPS, its own CA) and the same
  kube-apiserver ${facts.kube} + etcd; Node ${facts.node}.

${TABLE_START}
${renderTable(rows)}
${TABLE_END}

## Method

- Everything runs in a network and mount namespace of its own (\`unshare --net --mount\`): its /etc/hosts (a
  bind-mounted file) sends \`bench-kv.vault.azure.net\` and \`login.microsoftonline.com\` to the emulator on port 443 of
  the namespace's 127.0.0.1, so both providers use the public-cloud URLs unchanged; the upstream provider trusts the
  emulator's CA through \`SSL_CERT_FILE\`, ours through \`NODE_EXTRA_CA_CERTS\`. The drivers' tmpfs mounts stay
  inside the namespace.
- Each stack gets a namespace with one SecretProviderClass of ${10} Key Vault secrets (512 bytes each) and
  ${sizes.moreVolumes + sizes.sequential} pods bound to the stack's node (Pending: no kubelet). The benchmark plays
  kubelet: NodePublishVolume with the pod's attributes and a service principal in the publish secrets
  (nodePublishSecretRef), one volume per pod, on the driver's real CSI socket; the driver calls the real provider
  over its unix socket. Drivers run in cluster mode with an admin kubeconfig, secret rotation on (interval 1h, so
  no refresh runs during the latency and memory figures).
- Memory: RSS is the program's own VmRSS; "cgroup" is memory.usage_in_bytes of a cgroup v1 memory group the
  program was started in (anonymous memory, page cache it brought in, and the tmpfs pages the driver wrote into the
  volumes, as kubelet would charge its container; "anon" and "tmpfs" are the parts that cannot be reclaimed).
  The group's usage is below RSS because the program's binary (node, or the Go binary) was already in the page cache,
  charged to whoever read it first, while RSS counts its mapped pages. Readings are taken ${sizes.settleMs / 1000} s
  after the step. Every volume's files and every provider answer are checked against the vault's values.
- Start-up: ${sizes.starts} fresh starts of each program, from spawn until the first answered Probe (driver, with
  its kubeconfig) or Version (provider).
- Publish: warm (the identity's token already fetched) one at a time over ${sizes.sequential} volumes, each
  ${sizes.sequentialGapMs} ms after the last was answered (back to back, upstream's driver would be measured at its
  API client's rate limit, 20 requests a second after a burst of 30), then
  ${sizes.volumes} volumes in waves of ${sizes.concurrency} started together, then ${sizes.moreVolumes - sizes.volumes}
  more; unpublish one at a time over all ${sizes.moreVolumes}.
- Provider figures call the provider's socket directly: ${sizes.providerRounds} rounds of 10 concurrent Mounts of the
  same 10 objects by one identity (wall time of the round), ${sizes.coldMounts} Mounts by identities never seen
  before (5 of them before the next step, the rest after it), and ${sizes.soakMounts} Mounts, 10 in flight, each for
  another pod, with RSS read every 1,000. Before each stack's cold Mounts the benchmark itself sends the emulator
  ${EMULATOR_WARM_UP_ROUNDS} rounds of a cold Mount's requests (challenge, token, ten reads): it is a Node program
  that warms up too, and the stack measured first would otherwise pay for it.
- Rotation: ${sizes.rotationPods} pods sharing the class and identity, rotation interval
  ${sizes.rotationIntervalSeconds} s; every interval the benchmark republishes every volume as kubelet does with
  requiresRepublish (upstream re-fetches then); Key Vault secret reads counted by the emulator over
  ${sizes.rotationIntervals} intervals, divided by ${sizes.rotationIntervals}.
- Node boot: a driver and a provider started afresh, then ${sizes.bootPods} pods (kubelet's default maximum per node)
  publish at once, each its own volume of the one class: first all with the one identity, then each with an identity
  of its own (a service principal the provider has never seen). Time to OK of each publish; Key Vault secret reads
  and Entra ID token requests counted by the emulator.
- Memory limit: a fresh driver in a memory cgroup limited to ${sizes.limitMiB} MiB publishes ${sizes.moreVolumes}
  volumes in waves of ${sizes.concurrency}; OOM kills come from memory.oom_control, failcnt from memory.failcnt.
`;
}
