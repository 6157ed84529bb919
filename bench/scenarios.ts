// The measurements, run the same way for each stack: start-up, idle memory,
// publish and unpublish latency with 200 and 250 volumes, provider Mount
// latency (warm concurrent, cold identity), provider memory over many mounts,
// Key Vault reads per rotation interval, and 250 volumes under a 128 MiB
// memory limit. Each driver instance gets its own kubelet directory; the
// status objects it wrote are removed before the next one starts.
import { join } from "node:path";
import { mkdir } from "node:fs/promises";
import type { KubeConfig } from "@kubernetes/client-node";
import { ProviderClient } from "../test/provider/client.ts";
import { freePort } from "../test/provider/env.ts";
import { csiClient, type CsiClient } from "../test/support/csi-client.ts";
import { sleep } from "../test/support/fake-provider.ts";
import { bootIdentity, coldIdentity, POD_IDENTITY, type KeyVault, type ServicePrincipal } from "./keyvault.ts";
import { MemoryCgroup, type CgroupMemory } from "./memory-cgroup.ts";
import { startProgram, type RunningProgram } from "./program.ts";
import { runConcurrently, runInWaves, timed } from "./samples.ts";
import type { Stack } from "./stacks.ts";
import { publish, SPC_PARAMETERS, unpublish, verifyMountResponse, verifyVolume, Workload } from "./workload.ts";

export interface Sizes {
  /** Fresh starts of each program for the start-up figure. */
  starts: number;
  /** Volumes published one at a time (warm), each this long after the last was answered. */
  sequential: number;
  sequentialGapMs: number;
  /** Volumes mounted at the first memory reading, and at the second. */
  volumes: number;
  moreVolumes: number;
  /** Publishes in flight at once (kubelet starting a batch of pods). */
  concurrency: number;
  rotationPods: number;
  rotationIntervals: number;
  rotationIntervalSeconds: number;
  /** Rounds of 10 concurrent provider Mounts; new identities for cold mounts. */
  providerRounds: number;
  coldMounts: number;
  /** Provider Mounts in the memory soak, and how long it idles afterwards. */
  soakMounts: number;
  soakIdleMs: number;
  /** Wait before a memory reading, so start-up and GC settle. */
  settleMs: number;
  limitMiB: number;
  /** Pods publishing at once in the node-boot figure (kubelet's default maximum per node is 110). */
  bootPods: number;
}

/** Cold Mounts made before the provider's memory soak (the rest after it). */
export const COLD_MOUNTS_BEFORE_SOAK = 5;

/**
 * Rounds of a cold Mount's requests (challenge, token, ten reads) sent to the
 * emulator before each stack's cold Mounts. The emulator is a Node program
 * that warms up like any other, and both stacks share it, one after the
 * other: unwarmed, the first stack's first cold Mounts paid for compiling its
 * token path and the second's did not. Key Vault and Entra ID are warm.
 */
export const EMULATOR_WARM_UP_ROUNDS = 20;

export const FULL: Sizes = {
  starts: 5,
  // Enough one-volume calls that a p50 or median moves with the code, not
  // with what else the shared machine ran for a second (30 and 5 did not).
  sequential: 100,
  // One volume at a time, nothing of the last still running: back to back,
  // 100 publishes measure upstream's API client instead (controller-runtime's
  // 20 requests a second once its burst of 30 is spent: 47 ms p50, against
  // 14-21 ms for 30 publishes), and ours pays the last status write.
  sequentialGapMs: 100,
  volumes: 200,
  moreVolumes: 250,
  concurrency: 20,
  rotationPods: 50,
  rotationIntervals: 3,
  rotationIntervalSeconds: 5,
  providerRounds: 5,
  coldMounts: 25,
  soakMounts: 14_000,
  soakIdleMs: 30_000,
  settleMs: 3_000,
  limitMiB: 128,
  bootPods: 110,
};

export const QUICK: Sizes = {
  starts: 1,
  sequential: 2,
  sequentialGapMs: 0,
  volumes: 4,
  moreVolumes: 5,
  concurrency: 20,
  rotationPods: 3,
  rotationIntervals: 1,
  rotationIntervalSeconds: 2,
  providerRounds: 1,
  coldMounts: 1,
  soakMounts: 30,
  soakIdleMs: 500,
  settleMs: 300,
  limitMiB: 128,
  bootPods: 5,
};

export interface Memory {
  rssMiB: number;
  cgroup: CgroupMemory;
}

export interface StackFigures {
  driverStartMs: number[];
  providerStartMs: number[];
  driverIdle: Memory;
  providerIdle: Memory;
  driverAt: { volumes: Memory; moreVolumes: Memory };
  providerAt: { volumes: Memory; moreVolumes: Memory };
  publishSequentialMs: number[];
  publishConcurrentMs: number[];
  unpublishMs: number[];
  /** Wall time of each round of 10 concurrent Mounts. */
  providerConcurrentMs: number[];
  providerColdMs: number[];
  soak: { mounts: number; startRssMiB: number; endRssMiB: number; idleRssMiB: number; peakRssMiB: number };
  rotationReadsPerInterval: number;
  limited: { volumes: number; failedPublishes: number; oomKills: number; failCount: number; peakMiB: number; driverSurvived: boolean };
  /** A node booting: every pod publishing at once, just after the driver and provider started. */
  boot: { oneIdentity: BootFigures; ownIdentities: BootFigures };
}

export interface BootFigures {
  /** Each publish's time to OK. */
  publishMs: number[];
  keyVaultReads: number;
  /** Requests the vault answered with its challenge: a new client's first, without a token. */
  challenges: number;
  tokenRequests: number;
}

export interface Environment {
  dir: string;
  kc: KubeConfig;
  kubeconfig: string;
  keyVault: KeyVault;
  cgroups: MemoryCgroup;
  sizes: Sizes;
  log: (line: string) => void;
}

const MiB = 1024 * 1024;

export class StackRun {
  private instances = 0;
  private readonly env: Environment;
  private readonly stack: Stack;
  private readonly workload: Workload;
  constructor(env: Environment, stack: Stack, workload: Workload) {
    this.env = env;
    this.stack = stack;
    this.workload = workload;
  }

  private dir(what: string): string {
    return join(this.env.dir, this.stack.name, `${what}-${++this.instances}`);
  }

  async provider(options: { cgroup?: MemoryCgroup } = {}): Promise<{ program: RunningProgram; socket: string; client: ProviderClient }> {
    const dir = this.dir("provider");
    await mkdir(dir, { recursive: true });
    const socket = join(dir, "azure.sock");
    const client = new ProviderClient(`unix:${socket}`);
    const cmd = this.stack.provider({ socket, caFile: this.env.keyVault.caFile, metricsPort: await freePort(), healthPort: await freePort() });
    const program = await startProgram(`${this.stack.name} provider`, cmd, {
      logPath: join(dir, "provider.log"),
      socket,
      cgroup: options.cgroup,
      ready: () => once(new ProviderClient(`unix:${socket}`), (c) => c.version()),
    });
    return { program, socket, client };
  }

  async driver(providerSocket: string, options: { cgroup?: MemoryCgroup; rotationInterval?: string } = {}) {
    const dir = this.dir("driver");
    const kubeletDir = join(dir, "kubelet");
    await mkdir(join(kubeletDir, "pods"), { recursive: true });
    const socket = join(dir, "csi.sock");
    const csi: CsiClient = csiClient(socket);
    const cmd = this.stack.driver({
      socket,
      nodeId: this.workload.nodeName,
      providerDir: join(providerSocket, ".."),
      kubeletDir,
      kubeconfig: this.env.kubeconfig,
      rotationInterval: options.rotationInterval ?? "1h",
      metricsPort: await freePort(),
      healthPort: await freePort(),
    });
    const program = await startProgram(`${this.stack.name} driver`, cmd, {
      logPath: join(dir, "driver.log"),
      socket,
      cgroup: options.cgroup,
      ready: () => once(csiClient(socket), (c) => c.call("Identity", "Probe", {}, 1_000)),
    });
    const volume = (i: number, identity?: ServicePrincipal) => this.workload.volume(kubeletDir, i, identity);
    return {
      program,
      csi,
      publish: (i: number, identity?: ServicePrincipal) => publish(csi, volume(i, identity)),
      verify: (i: number) => verifyVolume(volume(i)),
      unpublish: (i: number) => unpublish(csi, volume(i)),
      stop: async () => {
        csi.close();
        await program.stop();
        await this.workload.deletePodStatuses();
      },
    };
  }

  async cgroup(name: string, limitMiB?: number): Promise<MemoryCgroup> {
    return MemoryCgroup.create(`${this.stack.name}-${name}-${this.instances}`, {
      parent: this.env.cgroups,
      ...(limitMiB === undefined ? {} : { limitBytes: limitMiB * MiB }),
    });
  }
}

/**
 * One call on a client of its own: a gRPC channel whose first connection
 * failed waits out a reconnect backoff (about a second), which would be
 * counted as start-up time.
 */
async function once<C extends { close(): void }>(client: C, call: (c: C) => Promise<unknown>): Promise<void> {
  try {
    await call(client);
  } finally {
    client.close();
  }
}

function memory(program: RunningProgram, cgroup: MemoryCgroup): Memory {
  return { rssMiB: program.rssMiB(), cgroup: cgroup.memory() };
}

/** Mount attributes for the provider directly (what the driver would send for pod `i`). */
function mountArgs(stack: string, i: number, identity: ServicePrincipal = POD_IDENTITY) {
  return {
    attributes: {
      ...SPC_PARAMETERS,
      "csi.storage.k8s.io/pod.name": `soak-${i}`,
      "csi.storage.k8s.io/pod.namespace": `bench-${stack}`,
      "csi.storage.k8s.io/pod.uid": `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
      "csi.storage.k8s.io/serviceAccount.name": "default",
      secretProviderClass: "bench-kv",
    },
    secrets: { clientid: identity.clientId, clientsecret: identity.clientSecret },
  };
}

export async function measureStack(env: Environment, stack: Stack): Promise<StackFigures> {
  const s = env.sizes;
  const log = (line: string) => env.log(`[${stack.name}] ${line}`);
  const workload = await Workload.create(env.kc, `bench-${stack.name}`, `node-${stack.name}`, s.moreVolumes + s.sequential);
  const run = new StackRun(env, stack, workload);
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

  log(`start-up, ${s.starts} fresh starts of each program`);
  const providerStartMs: number[] = [];
  const driverStartMs: number[] = [];
  for (let k = 0; k < s.starts; k++) {
    const provider = await run.provider();
    providerStartMs.push(provider.program.startMs);
    const driver = await run.driver(provider.socket);
    driverStartMs.push(driver.program.startMs);
    await driver.stop();
    provider.client.close();
    await provider.program.stop();
  }

  log("idle memory, then publishes");
  const providerGroup = await run.cgroup("provider");
  const provider = await run.provider({ cgroup: providerGroup });
  const driverGroup = await run.cgroup("driver");
  const driver = await run.driver(provider.socket, { cgroup: driverGroup });
  await sleep(s.settleMs);
  const driverIdle = memory(driver.program, driverGroup);
  const providerIdle = memory(provider.program, providerGroup);

  // The first mount fetches the identity's token; it is not counted.
  const warmUp = s.moreVolumes + s.sequential - 1;
  await driver.publish(warmUp);
  await driver.unpublish(warmUp);
  const publishSequentialMs: number[] = [];
  for (const i of range(s.moreVolumes, s.moreVolumes + s.sequential)) {
    await sleep(s.sequentialGapMs);
    publishSequentialMs.push(await timed(() => driver.publish(i)));
  }
  for (const i of range(s.moreVolumes, s.moreVolumes + s.sequential)) await driver.verify(i);
  for (const i of range(s.moreVolumes, s.moreVolumes + s.sequential)) await driver.unpublish(i);

  const publishConcurrentMs = await runInWaves(range(0, s.volumes), s.concurrency, (i) => driver.publish(i));
  await sleep(s.settleMs);
  const driverAtVolumes = memory(driver.program, driverGroup);
  const providerAtVolumes = memory(provider.program, providerGroup);
  await runInWaves(range(s.volumes, s.moreVolumes), s.concurrency, (i) => driver.publish(i));
  await sleep(s.settleMs);
  const driverAtMore = memory(driver.program, driverGroup);
  const providerAtMore = memory(provider.program, providerGroup);
  for (const i of range(0, s.moreVolumes)) await driver.verify(i);
  log(`driver ${driverIdle.rssMiB.toFixed(1)} -> ${driverAtMore.rssMiB.toFixed(1)} MiB RSS with ${s.moreVolumes} volumes`);

  const unpublishMs: number[] = [];
  for (const i of range(0, s.moreVolumes)) unpublishMs.push(await timed(() => driver.unpublish(i)));
  await driver.stop();
  await driverGroup.remove();

  log("provider: concurrent and cold Mounts");
  const providerConcurrentMs: number[] = [];
  for (let r = 0; r < s.providerRounds; r++) {
    const mountAll = () => Promise.all(range(0, 10).map((i) => provider.client.mount(mountArgs(stack.name, r * 10 + i)).then(verifyMountResponse)));
    providerConcurrentMs.push(await timed(mountAll));
  }
  // Five identities are served before the memory soak, as they always were
  // (their credentials stay cached, so the soak's figures keep their
  // meaning); the rest of the cold Mounts come after its last reading.
  const providerColdMs: number[] = [];
  const coldMount = async (k: number) => {
    providerColdMs.push(await timed(() => provider.client.mount(mountArgs(stack.name, 0, coldIdentity(stack.name, k))).then(verifyMountResponse)));
  };
  const coldBeforeSoak = Math.min(s.coldMounts, COLD_MOUNTS_BEFORE_SOAK);
  await env.keyVault.warmUp(EMULATOR_WARM_UP_ROUNDS);
  for (let k = 0; k < coldBeforeSoak; k++) await coldMount(k);

  log(`provider: memory over ${s.soakMounts} Mounts`);
  const startRssMiB = provider.program.rssMiB();
  let peakRssMiB = startRssMiB;
  let done = 0;
  await runConcurrently(s.soakMounts, 10, async (i) => {
    verifyMountResponse(await provider.client.mount(mountArgs(stack.name, i)));
    if (++done % 1000 === 0) {
      peakRssMiB = Math.max(peakRssMiB, provider.program.rssMiB());
      log(`  ${done} mounts, RSS ${provider.program.rssMiB().toFixed(1)} MiB`);
    }
  });
  const endRssMiB = provider.program.rssMiB();
  await sleep(s.soakIdleMs);
  const idleRssMiB = provider.program.rssMiB();
  await env.keyVault.warmUp(EMULATOR_WARM_UP_ROUNDS);
  for (let k = coldBeforeSoak; k < s.coldMounts; k++) await coldMount(k);
  log(`cold samples: ${providerColdMs.map((x) => x.toFixed(1)).join(" ")}`);
  provider.client.close();
  await provider.program.stop();
  await providerGroup.remove();

  log(`rotation: ${s.rotationPods} pods of one class, ${s.rotationIntervals} intervals of ${s.rotationIntervalSeconds}s`);
  const rotationReadsPerInterval = await rotationReads(run, env, range(0, s.rotationPods));

  log(`node boot: ${s.bootPods} pods at once, one identity; then each with its own identity`);
  const boot = {
    oneIdentity: await nodeBoot(run, env, range(0, s.bootPods), () => POD_IDENTITY),
    ownIdentities: await nodeBoot(run, env, range(0, s.bootPods), (i) => bootIdentity(stack.name, i)),
  };

  log(`${s.moreVolumes} volumes inside a ${s.limitMiB} MiB memory cgroup`);
  const limited = await underLimit(run, env, range(0, s.moreVolumes));

  return {
    driverStartMs,
    providerStartMs,
    driverIdle,
    providerIdle,
    driverAt: { volumes: driverAtVolumes, moreVolumes: driverAtMore },
    providerAt: { volumes: providerAtVolumes, moreVolumes: providerAtMore },
    publishSequentialMs,
    publishConcurrentMs,
    unpublishMs,
    providerConcurrentMs,
    providerColdMs,
    soak: { mounts: s.soakMounts, startRssMiB, endRssMiB, idleRssMiB, peakRssMiB: Math.max(peakRssMiB, endRssMiB) },
    rotationReadsPerInterval,
    limited,
    boot,
  };
}

/**
 * A node booting (or a node's pods all rescheduled onto it): a driver and a
 * provider just started, every pod's volume published at once, each its own
 * volume of one class. Counts Key Vault reads, challenges and token requests.
 */
async function nodeBoot(run: StackRun, env: Environment, pods: number[], identity: (i: number) => ServicePrincipal): Promise<BootFigures> {
  const provider = await run.provider();
  const driver = await run.driver(provider.socket);
  try {
    await env.keyVault.resetCounters();
    const publishMs = await Promise.all(pods.map((i) => timed(() => driver.publish(i, identity(i)))));
    const [keyVaultReads, challenges, tokenRequests] = [await env.keyVault.reads(), await env.keyVault.challenges(), await env.keyVault.tokens()];
    for (const i of pods) await driver.verify(i);
    for (const i of pods) await driver.unpublish(i);
    return { publishMs, keyVaultReads, challenges, tokenRequests };
  } finally {
    await driver.stop();
    provider.client.close();
    await provider.program.stop();
  }
}

/**
 * Key Vault reads per rotation interval when pods share one class and one
 * identity. kubelet republishes every mounted volume about once a minute
 * (requiresRepublish); here every interval, which is when upstream's driver
 * re-fetches (interval elapsed since the last content change). Our driver
 * also refreshes on its own interval timer.
 */
async function rotationReads(run: StackRun, env: Environment, pods: number[]): Promise<number> {
  const s = env.sizes;
  const provider = await run.provider();
  const driver = await run.driver(provider.socket, { rotationInterval: `${s.rotationIntervalSeconds}s` });
  try {
    await runInWaves(pods, s.concurrency, (i) => driver.publish(i));
    for (const i of pods) await driver.verify(i);
    await env.keyVault.resetCounters();
    const start = Date.now();
    for (let k = 1; k <= s.rotationIntervals; k++) {
      await sleep(Math.max(0, start + k * s.rotationIntervalSeconds * 1000 - Date.now()));
      await runConcurrently(pods.length, 10, (j) => driver.publish(pods[j]!));
    }
    const reads = await env.keyVault.reads();
    for (const i of pods) await driver.unpublish(i);
    return reads / s.rotationIntervals;
  } finally {
    await driver.stop();
    provider.client.close();
    await provider.program.stop();
  }
}

/** Publishes `pods` with the driver inside a memory limit; counts failed publishes and OOM kills. */
async function underLimit(run: StackRun, env: Environment, pods: number[]): Promise<StackFigures["limited"]> {
  const s = env.sizes;
  const provider = await run.provider();
  const group = await run.cgroup("driver-limited", s.limitMiB);
  const driver = await run.driver(provider.socket, { cgroup: group });
  let failedPublishes = 0;
  try {
    await runInWaves(pods, s.concurrency, (i) => driver.publish(i).catch(() => void failedPublishes++));
    await sleep(s.settleMs);
    const figures = {
      volumes: pods.length,
      failedPublishes,
      oomKills: group.oomKills(),
      failCount: group.failCount(),
      peakMiB: group.memory().maxUsageMiB,
      driverSurvived: !driver.program.exited(),
    };
    if (figures.driverSurvived) for (const i of pods) await driver.unpublish(i).catch(() => undefined);
    return figures;
  } finally {
    await driver.stop();
    provider.client.close();
    await provider.program.stop();
    await group.remove();
  }
}

