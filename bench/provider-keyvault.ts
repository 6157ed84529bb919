// Benchmark: the Azure provider program against the Key Vault emulator through
// the real Azure SDK over HTTPS. Prints Mount latency percentiles, Key Vault
// and token request counts (emulator counters) and provider memory for:
// a cold mount, 50 concurrent mounts of the same 10 objects by one identity,
// warm sequential mounts, and 10 identities at once. Run as root (port 443 on
// a loopback address): node bench/provider-keyvault.ts
import { readdirSync, readFileSync } from "node:fs";
import { objectsYaml } from "../test/provider/client.ts";
import { startProvider, startTestEmulator } from "../test/provider/env.ts";

const VAULT = "bench-kv";
const TENANT = "00000000-0000-4000-8000-00000000c0de";
const OBJECTS = Array.from({ length: 10 }, (_, i) => `secret-${i}`);
const apps = Array.from({ length: 10 }, (_, i) => ({
  clientId: `7${String(i).padStart(7, "0")}-1111-4111-8111-111111111111`,
  clientSecret: `bench-secret-${i}`,
}));

function percentiles(samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  const p = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!.toFixed(1);
  return `p50 ${p(0.5)} ms  p90 ${p(0.9)} ms  p99 ${p(0.99)} ms  max ${s.at(-1)!.toFixed(1)} ms  (n=${s.length})`;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("run as root: the emulator listens on port 443 of a loopback address");
  const { emulator, address } = await startTestEmulator({
    tenantId: TENANT,
    vaults: [{ name: VAULT, secrets: OBJECTS.map((name) => ({ name, value: `value-of-${name}`.padEnd(512, ".") })) }],
    applications: apps.map((a, i) => ({ name: `app-${i}`, ...a, roleAssignments: [{ vault: VAULT, role: "Key Vault Secrets User" }] })),
  } as never);
  // A provider that does not start must not leave the emulator (and its data directory) behind.
  const provider = await startProvider(emulator, address).catch(async (err: unknown) => {
    await emulator.close();
    throw err;
  });
  const attributes = {
    keyvaultName: VAULT,
    tenantID: TENANT,
    objects: objectsYaml(OBJECTS.map((objectName) => ({ objectName, objectType: "secret" }))),
    "csi.storage.k8s.io/pod.name": "bench",
    "csi.storage.k8s.io/pod.namespace": "bench",
  };
  const mount = async (app: (typeof apps)[number]) => {
    const t = performance.now();
    await provider.client.mount({ attributes, secrets: { clientid: app.clientId, clientsecret: app.clientSecret } });
    return performance.now() - t;
  };
  const counts = () => {
    const c = emulator.counters();
    return `Key Vault reads ${c[`getSecret:${VAULT}`] ?? 0}, token requests ${c.token ?? 0}, 401 challenges ${c.challenge ?? 0}`;
  };
  const rss = () => {
    // The provider process is the one whose command line names this run's socket.
    const pid = readdirSync("/proc")
      .filter((d) => /^\d+$/.test(d))
      .find((d) => {
        try {
          return readFileSync(`/proc/${d}/cmdline`, "utf8").includes(provider.socket);
        } catch {
          return false;
        }
      });
    if (!pid) return "n/a";
    const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))!;
    return `${(Number(line.split(/\s+/)[1]) / 1024).toFixed(1)} MiB`;
  };
  try {
    console.log(`provider benchmark: ${OBJECTS.length} secrets of 512 bytes per mount, real Azure SDK over HTTPS to the emulator, Node ${process.version}`);
    emulator.resetCounters();
    const cold = await mount(apps[0]!);
    console.log(`  cold mount (token, challenge, 10 reads): ${cold.toFixed(1)} ms; ${counts()}`);

    emulator.resetCounters();
    const concurrent = await Promise.all(Array.from({ length: 50 }, () => mount(apps[0]!)));
    console.log(`  50 concurrent mounts, one identity:      ${percentiles(concurrent)}`);
    console.log(`      ${counts()} (one read per object per mount would be ${50 * OBJECTS.length})`);

    emulator.resetCounters();
    const sequential: number[] = [];
    for (let i = 0; i < 100; i++) sequential.push(await mount(apps[0]!));
    console.log(`  100 sequential warm mounts:              ${percentiles(sequential)}`);
    console.log(`      ${counts()}`);

    emulator.resetCounters();
    const identities = await Promise.all(apps.flatMap((app) => Array.from({ length: 5 }, () => mount(app))));
    console.log(`  10 identities x 5 concurrent mounts:     ${percentiles(identities)}`);
    console.log(`      ${counts()} (reads are never shared across identities: 10 x ${OBJECTS.length} expected)`);
    const metrics = await provider.metrics();
    const dedup = /keyvault_deduplicated_reads_total(?:\{[^}]*\})? (\d+)/.exec(metrics)?.[1];
    console.log(`  provider: deduplicated reads so far ${dedup ?? "n/a"}, RSS ${rss()}`);
  } finally {
    await provider.stop();
    await emulator.close();
  }
}

await main();
