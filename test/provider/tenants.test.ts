// What a tenant names cannot grow the provider: made-up vault names (ones the
// emulator answers VaultNotFound, and ones whose host does not resolve) and
// made-up object names, through the provider program's socket with the
// emulator behind it over HTTPS and the real Azure SDK. The Key Vault clients
// stay within --max-cached-vaults, the metrics with object and vault names
// within --max-metric-series (the rest counted as _other), /metrics small,
// memory flat once the caches are full (the provider runs with a 64 MiB heap;
// before, 2,000 made-up vault names kept 115 MiB of live heap) and idle
// connections within their bound in all (before, a thousand of them, outside
// the heap). Figures of the same cases for the bundle under the image's Node
// flags in a memory cgroup: bench/provider-tenants.ts.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator, SeedDocument } from "../../src/emulator/index.ts";
import { MAX_IDLE_SOCKETS } from "../../src/provider/keyvault/connection-bounds.ts";
import { objectsYaml } from "./client.ts";
import { startProvider, startTestEmulator, type RunningProvider } from "./env.ts";
import { podAttributes } from "./seed.ts";

const SP = { clientid: "62222222-2222-4222-8222-222222222222", clientsecret: "tenants-sp-secret" };
const VAULT = "kv-tenants";
const SEED: SeedDocument = {
  vaults: [{ name: VAULT, secrets: [{ name: "s1", value: "one" }] }],
  applications: [{ name: "sp", clientId: SP.clientid, clientSecret: SP.clientsecret, roleAssignments: [{ vault: "*", permissions: ["all"] }] }],
};
const MiB = 1024 * 1024;
/** The provider's V8 heap limit in the default-flags case: what it keeps per made-up name must fit. */
const HEAP_LIMIT_MIB = 64;
const UNRESOLVED = Array.from({ length: 300 }, (_, i) => `kv-nowhere-${i}`);

let emulator: Emulator;
let address: string;

beforeAll(async () => {
  ({ emulator, address } = await startTestEmulator(SEED));
}, 120_000);

afterAll(async () => {
  await emulator?.close();
});

const attrs = (vault: string, objects: string) =>
  podAttributes({ keyvaultName: vault, tenantID: emulator.tenantId, objects }, { name: "pod-1", namespace: "ns1", serviceAccount: "sa1" });
const one = objectsYaml([{ objectName: "s1", objectType: "secret" }]);

/** Mounts that fail as expected; resolves with the gRPC codes seen. */
/** The process's open sockets, once at most `bound` (closed connections go in a later turn of its event loop), or after 2 s. */
async function socketsSettled(pid: number, bound: number): Promise<number> {
  const isSocket = (fd: string) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`, { encoding: "utf8" }).startsWith("socket:");
    } catch {
      return false; // closed since the directory was read
    }
  };
  const count = () => readdirSync(`/proc/${pid}/fd`).filter(isSocket).length;
  for (let i = 0; i < 40 && count() > bound; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  return count();
}

async function mountAll(provider: RunningProvider, count: number, attributes: (i: number) => Record<string, string>, concurrency = 40): Promise<Set<number>> {
  const codes = new Set<number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) {
        const err = await provider.client.mountError({ attributes: attributes(i), secrets: SP });
        codes.add(err.code);
      }
    }),
  );
  return codes;
}

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))!;
  return Number(/(\d+)/.exec(line)![1]) / 1024;
}

const gauge = (metrics: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metrics)?.[1]);
const series = (metrics: string, name: string) => metrics.split("\n").filter((l) => l.startsWith(`${name}{`));
const namesIn = (lines: string[], label: string) => new Set(lines.map((l) => new RegExp(`${label}="([^"]*)"`).exec(l)?.[1]));

describe("made-up names are bounded by the flags", () => {
  let provider: RunningProvider;
  beforeAll(async () => {
    provider = await startProvider(emulator, address, ["--max-cached-vaults=16", "--max-metric-series=10"], {
      SSCSI_EMULATOR_NXDOMAIN: UNRESOLVED.map((n) => `${n}.vault.azure.net`).join(","),
    });
  }, 60_000);
  afterAll(async () => provider?.stop());

  it("vault names: at most --max-cached-vaults clients, --max-metric-series named series, the rest _other", async () => {
    await provider.client.mount({ attributes: attrs(VAULT, one), secrets: SP });
    const notFound = await mountAll(provider, 100, (i) => attrs(`kv-made-up-${i}`, one));
    const unresolved = await mountAll(provider, 50, (i) => attrs(UNRESOLVED[i]!, one));
    // 5: NOT_FOUND (VaultNotFound from Key Vault, and for a host that does not resolve)
    expect([...notFound, ...unresolved]).toEqual([5, 5]);
    const metrics = await provider.metrics();
    expect(gauge(metrics, "cached_vault_clients")).toBe(16);
    const http = series(metrics, "keyvault_http_requests_total");
    expect(http.filter((l) => !l.includes('vault="_other"'))).toHaveLength(10);
    expect(http.some((l) => l.includes('vault="_other"'))).toBe(true);
  });

  it("object names: at most --max-metric-series named keyvault_request series, the rest _other", async () => {
    const codes = await mountAll(provider, 30, (i) =>
      attrs(VAULT, objectsYaml(Array.from({ length: 10 }, (_, j) => ({ objectName: `missing-${i * 10 + j}`, objectType: "secret" })))),
    );
    expect([...codes]).toEqual([5]);
    const counts = series(await provider.metrics(), "keyvault_request_count");
    const names = namesIn(counts, "object_name");
    expect(names.has("_other")).toBe(true);
    // s1 (read before) and at most 9 more names of their own
    expect(names.size).toBeLessThanOrEqual(11);
    expect(counts.length).toBeLessThanOrEqual(10 + 3);
  });
});

describe("4,000 object names, then 4,000 vault names and 300 that do not resolve, with the default flags", () => {
  let provider: RunningProvider;
  beforeAll(async () => {
    provider = await startProvider(
      emulator,
      address,
      [],
      { SSCSI_EMULATOR_NXDOMAIN: UNRESOLVED.map((n) => `${n}.vault.azure.net`).join(",") },
      { nodeFlags: [`--max-old-space-size=${HEAP_LIMIT_MIB}`] },
    );
  }, 60_000);
  afterAll(async () => provider?.stop());

  it(`keep /metrics under 512 KiB and the provider within a ${HEAP_LIMIT_MIB} MiB heap`, async () => {
    await provider.client.mount({ attributes: attrs(VAULT, one), secrets: SP });
    await mountAll(provider, 400, (i) => attrs(VAULT, objectsYaml(Array.from({ length: 10 }, (_, j) => ({ objectName: `missing-${i * 10 + j}`, objectType: "secret" })))));
    const afterObjects = await provider.metrics();
    // the first 1,000 vault names fill the client cache (256 pairs); the next 3,000 and the unresolved ones must not grow the provider
    await mountAll(provider, 1000, (i) => attrs(`kv-made-up-${i}`, one));
    const filled = rssMiB(provider.pid);
    await mountAll(provider, 3000, (i) => attrs(`kv-made-up-${1000 + i}`, one));
    await mountAll(provider, UNRESOLVED.length, (i) => attrs(UNRESOLVED[i]!, one));
    const grown = rssMiB(provider.pid) - filled;
    // every vault name had its own connection; idle ones are bounded in all (the
    // rest of the provider's sockets: its servers and the test's client)
    const sockets = await socketsSettled(provider.pid, MAX_IDLE_SOCKETS + 16);
    const metrics = await provider.metrics();
    console.log(
      `/metrics ${(Buffer.byteLength(afterObjects) / 1024).toFixed(0)} KiB after 4,000 object names, ${(Buffer.byteLength(metrics) / 1024).toFixed(0)} KiB (${metrics.split("\n").length} lines) ` +
        `after 4,300 vault names; RSS ${filled.toFixed(1)} MiB with the caches full, ${grown >= 0 ? "+" : ""}${grown.toFixed(1)} MiB after 3,300 more vault names; ` +
        `heap used ${(gauge(metrics, "nodejs_heap_size_used_bytes") / MiB).toFixed(1)} MiB, ${sockets} sockets open`,
    );
    expect(sockets).toBeLessThanOrEqual(MAX_IDLE_SOCKETS + 16);
    expect(Buffer.byteLength(metrics)).toBeLessThan(512 * 1024);
    expect(namesIn(series(metrics, "keyvault_request_count"), "object_name").size).toBeLessThanOrEqual(101);
    expect(namesIn(series(metrics, "keyvault_http_requests_total"), "vault").size).toBeLessThanOrEqual(101);
    expect(gauge(metrics, "cached_vault_clients")).toBe(256);
    // the provider is still there and serves: nothing it kept per name outgrew its heap
    expect((await provider.client.mount({ attributes: attrs(VAULT, one), secrets: SP })).files).toHaveLength(1);
    expect(gauge(metrics, "nodejs_heap_size_used_bytes") / MiB).toBeLessThan(HEAP_LIMIT_MIB);
    expect(provider.output()).not.toContain("heap out of memory");
  }, 600_000);
});
