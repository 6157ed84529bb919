// Benchmark: NodePublishVolume / NodeUnpublishVolume latency through the
// driver's real socket onto real tmpfs mounts, driver memory, and provider
// calls per rotation interval when many pods share one identity.
// Standalone mode (no API server) with an in-process provider, so the figures
// are the driver's own cost. Run as root: node bench/driver-publish.ts [mounts]
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { csiClient } from "../test/support/csi-client.ts";
import { removeTestTree, standaloneDriverFlags, startDriverProcess } from "../test/support/driver-process.ts";
import { sleep, startFakeProvider, type FakeMountRequest } from "../test/support/fake-provider.ts";

const MOUNTS = Number(process.argv[2] ?? 200);
const CONCURRENCY = 20;
const SEQUENTIAL = 50;

function percentiles(samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  const p = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!.toFixed(2);
  return `p50 ${p(0.5)} ms  p90 ${p(0.9)} ms  p99 ${p(0.99)} ms  max ${s.at(-1)!.toFixed(2)} ms  (n=${s.length})`;
}

/** CPU time (user + system) the process has used, in ms: a figure that load on the machine distorts less than latency. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))!;
  return Number(line.split(/\s+/)[1]) / 1024;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("run as root: the benchmark mounts tmpfs");
  const base = await mkdtemp(join(tmpdir(), "bench-publish-"));
  await mkdir(join(base, "spc"));
  await mkdir(join(base, "providers"));
  await writeFile(
    join(base, "spc", "spc.yaml"),
    "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: bench, namespace: bench}\nspec: {provider: fake, parameters: {objects: x}}\n",
  );
  const refreshCalls: FakeMountRequest[] = [];
  const files = Array.from({ length: 10 }, (_, i) => ({ path: `secret-${i}`, mode: 0o644, contents: `value-${i}-`.padEnd(256, "x") }));
  const provider = await startFakeProvider(join(base, "providers", "fake.sock"), (req) => {
    if (req.current_object_version.length > 0) refreshCalls.push(req);
    return { object_version: files.map((f) => ({ id: `secret/${f.path}`, version: "1" })), files };
  });
  const driver = await startDriverProcess(join(base, "csi.sock"), [...standaloneDriverFlags(base, "bench"), "--enable-secret-rotation", "--rotation-poll-interval=2s"]);
  const csi = csiClient(driver.socketPath);
  const rssIdle = rssMiB(driver.child.pid!);
  const request = (i: number) => ({
    volume_id: `v${i}`,
    target_path: join(base, "pods", `pod-${i}`, "mount"),
    volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
    readonly: true,
    volume_context: {
      secretProviderClass: "bench",
      "csi.storage.k8s.io/pod.name": `pod-${i}`,
      "csi.storage.k8s.io/pod.namespace": "bench",
      "csi.storage.k8s.io/pod.uid": `uid-${i}`,
      "csi.storage.k8s.io/serviceAccount.name": "app",
    },
  });
  try {
    for (let i = 0; i < MOUNTS + SEQUENTIAL; i++) await mkdir(join(base, "pods", `pod-${i}`), { recursive: true });
    // One at a time first: the driver's own latency, without queueing.
    const sequential: number[] = [];
    const cpuBefore = cpuMs(driver.child.pid!);
    for (let i = MOUNTS; i < MOUNTS + SEQUENTIAL; i++) {
      const t = performance.now();
      await csi.call("Node", "NodePublishVolume", request(i));
      sequential.push(performance.now() - t);
    }
    const cpuPerPublish = (cpuMs(driver.child.pid!) - cpuBefore) / SEQUENTIAL;
    const sequentialUnpublish: number[] = [];
    for (let i = MOUNTS; i < MOUNTS + SEQUENTIAL; i++) {
      const t = performance.now();
      await csi.call("Node", "NodeUnpublishVolume", { volume_id: `v${i}`, target_path: request(i).target_path });
      sequentialUnpublish.push(performance.now() - t);
    }
    const publish: number[] = [];
    for (let i = 0; i < MOUNTS; i += CONCURRENCY) {
      await Promise.all(
        Array.from({ length: Math.min(CONCURRENCY, MOUNTS - i) }, async (_, j) => {
          const t = performance.now();
          await csi.call("Node", "NodePublishVolume", request(i + j));
          publish.push(performance.now() - t);
        }),
      );
    }
    const rssMounted = rssMiB(driver.child.pid!);
    const republish: number[] = [];
    for (let i = 0; i < Math.min(MOUNTS, 100); i++) {
      const t = performance.now();
      await csi.call("Node", "NodePublishVolume", request(i));
      republish.push(performance.now() - t);
    }
    refreshCalls.length = 0;
    await sleep(6_500);
    const intervals = 3;
    const unpublish: number[] = [];
    for (let i = 0; i < MOUNTS; i++) {
      const t = performance.now();
      await csi.call("Node", "NodeUnpublishVolume", { volume_id: `v${i}`, target_path: request(i).target_path });
      unpublish.push(performance.now() - t);
    }
    console.log(`driver benchmark: ${MOUNTS} volumes of 10 files each, ${CONCURRENCY} concurrent publishes, Node ${process.version}`);
    console.log(`  NodePublishVolume (first mount, sequential): ${percentiles(sequential)}; driver CPU ${cpuPerPublish.toFixed(2)} ms per publish`);
    console.log(`  NodeUnpublishVolume (sequential, empty node): ${percentiles(sequentialUnpublish)}`);
    console.log(`  NodePublishVolume (first mount, ${CONCURRENCY} concurrent): ${percentiles(publish)}`);
    console.log(`  NodePublishVolume (republish):   ${percentiles(republish)}`);
    console.log(`  NodeUnpublishVolume:             ${percentiles(unpublish)}`);
    console.log(`  driver RSS: ${rssIdle.toFixed(1)} MiB idle, ${rssMounted.toFixed(1)} MiB with ${MOUNTS} volumes mounted`);
    console.log(
      `  rotation: ${refreshCalls.length} provider calls in ~${intervals} intervals for ${MOUNTS} volumes of one identity ` +
        `(one call per pod per interval would be ${MOUNTS * intervals})`,
    );
  } finally {
    csi.close();
    await driver.stop();
    await provider.stop();
    await removeTestTree(base);
  }
}

await main();
