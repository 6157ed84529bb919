// The provider stays bounded and fair under hostile SecretProviderClasses,
// through the provider program's socket with the emulator behind it:
// cloudEnvFileName can only name regular files in --cloud-env-file-dir (one
// refusal text for everything else, no FIFO or device ever opened, memory
// flat), oversized requests are refused before any Key Vault request naming
// the limit and its flag, and a hostile objects list is parsed off the event
// loop while other tenants' mounts and /healthz keep being served.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator, SeedDocument } from "../../src/emulator/index.ts";
import { objectsYaml } from "./client.ts";
import { startProvider, startTestEmulator, type RunningProvider } from "./env.ts";
import { podAttributes } from "./seed.ts";

const SP = { clientid: "61111111-1111-4111-8111-111111111111", clientsecret: "bounds-sp-secret" };
const SEED: SeedDocument = {
  vaults: [{ name: "kv-bounds", secrets: [{ name: "s1", value: "one" }, { name: "s2", value: "two" }] }],
  applications: [{ name: "sp", clientId: SP.clientid, clientSecret: SP.clientsecret, roleAssignments: [{ vault: "*", permissions: ["all"] }] }],
};
const MiB = 1024 * 1024;

let emulator: Emulator;
let address: string;
let provider: RunningProvider;
let cloudDir: string;
let outsideDir: string;
let base: string | undefined;

beforeAll(async () => {
  ({ emulator, address } = await startTestEmulator(SEED));
  base = mkdtempSync(join(tmpdir(), "provider-bounds-"));
  cloudDir = join(base, "clouds");
  outsideDir = join(base, "elsewhere");
  mkdirSync(cloudDir);
  mkdirSync(outsideDir);
  const cloud = JSON.stringify({
    name: "AzureStackCloud",
    activeDirectoryEndpoint: "https://login.microsoftonline.com/",
    keyVaultEndpoint: "https://vault.azure.net/",
    keyVaultDNSSuffix: "vault.azure.net",
  });
  writeFileSync(join(cloudDir, "good.json"), cloud);
  writeFileSync(join(outsideDir, "good.json"), cloud);
  writeFileSync(join(cloudDir, "big.json"), " ".repeat(100 * 1024) + cloud);
  execFileSync("mkfifo", [join(cloudDir, "fifo")]);
  mkdirSync(join(cloudDir, "subdir"));
  symlinkSync("/dev/zero", join(cloudDir, "zero"));
  symlinkSync(join(outsideDir, "good.json"), join(cloudDir, "outside-link"));
  provider = await startProvider(emulator, address, [`--cloud-env-file-dir=${cloudDir}`]);
}, 120_000);

afterAll(async () => {
  await provider?.stop();
  await emulator?.close();
  if (base) rmSync(base, { recursive: true, force: true });
});

const objects = objectsYaml([{ objectName: "s1", objectType: "secret" }]);
const attrs = (extra: Record<string, string>, pod = "pod-1") =>
  podAttributes({ keyvaultName: "kv-bounds", tenantID: emulator.tenantId, objects, ...extra }, { name: pod, namespace: "ns1", serviceAccount: "sa1" });
const keyVaultRequests = () => Object.entries(emulator.counters()).reduce((n, [k, v]) => (k.includes(":") ? n : n + v), 0);
const stackCloud = (file: string) => attrs({ cloudName: "AzureStackCloud", cloudEnvFileName: file });
const refusal = (path: string) =>
  `failed to mount objects, error: cloudName AzureStackCloud is not valid, error: cloudEnvFileName "${path}" cannot be used: ` +
  `it must name a readable regular file of at most 64 KiB in ${cloudDir} (the provider's --cloud-env-file-dir)`;

function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))!;
  return Number(/(\d+)/.exec(line)![1]) * 1024;
}

describe("cloudEnvFileName", () => {
  it("a regular cloud file in --cloud-env-file-dir is read per mount", async () => {
    const res = await provider.client.mount({ attributes: stackCloud(join(cloudDir, "good.json")), secrets: SP });
    expect(Buffer.from(res.files[0]!.contents).toString()).toBe("one");
  });

  it("anything else gets one text that reveals nothing about the path, before any Key Vault request", async () => {
    const paths = [
      "/dev/zero",
      "/etc/passwd",
      "/proc/self/environ",
      join(cloudDir, "zero"),
      join(cloudDir, "fifo"),
      join(cloudDir, "subdir"),
      join(cloudDir, "big.json"),
      join(cloudDir, "missing.json"),
      join(cloudDir, "outside-link"),
      join(cloudDir, "..", "elsewhere", "good.json"),
      "relative/cloud.json",
    ];
    const before = keyVaultRequests();
    for (const path of paths) {
      const err = await provider.client.mountError({ attributes: stackCloud(path), secrets: SP });
      expect([err.code, err.details]).toEqual([status.INVALID_ARGUMENT, refusal(path)]);
    }
    expect(keyVaultRequests()).toBe(before);
    // the operator's log says why
    expect(provider.output()).toMatch(/"reason":"not a regular file".*refused a cloudEnvFileName/);
  });

  it("/dev/zero, a FIFO and a directory are refused fast, memory stays flat, and a concurrent normal mount is not stalled", async () => {
    // warm up: the code paths are loaded before memory is measured
    await provider.client.mountError({ attributes: stackCloud(join(cloudDir, "zero")), secrets: SP });
    const rssBefore = rssBytes(provider.pid);
    const started = Date.now();
    const hostile = [join(cloudDir, "zero"), "/dev/zero", join(cloudDir, "fifo"), join(cloudDir, "subdir")].flatMap((path) =>
      Array.from({ length: 6 }, (_, i) => ({ path, pod: `hostile-${i}` })),
    );
    const refusals = hostile.map(({ path, pod }) =>
      provider.client.mountError({ attributes: { ...stackCloud(path), "csi.storage.k8s.io/pod.name": pod }, secrets: SP }, 30_000).then((err) => {
        expect(err.details).toBe(refusal(path));
        return Date.now() - started;
      }),
    );
    const normal = provider.client.mount({ attributes: stackCloud(join(cloudDir, "good.json")), secrets: SP }, 30_000).then((res) => {
      expect(Buffer.from(res.files[0]!.contents).toString()).toBe("one");
      return Date.now() - started;
    });
    const [normalMs, ...refusedMs] = await Promise.all([normal, ...refusals]);
    // libuv's thread pool is free: another cloud file read works right after
    await provider.client.mount({ attributes: stackCloud(join(cloudDir, "good.json")), secrets: SP });
    const growth = rssBytes(provider.pid) - rssBefore;
    const slowest = Math.max(...refusedMs);
    console.log(`cloud file refusals: ${hostile.length} refused, slowest after ${slowest} ms; normal mount ${normalMs} ms; RSS growth ${(growth / MiB).toFixed(2)} MiB`);
    expect(growth).toBeLessThan(10 * MiB);
    // generous bounds that a blocked read or a filled thread pool would break (the deadline is 30 s)
    expect(slowest).toBeLessThan(10_000);
    expect(normalMs).toBeLessThan(10_000);
  });
});

describe("limits, checked before any Key Vault request", () => {
  let small: RunningProvider;
  beforeAll(async () => {
    small = await startProvider(emulator, address, [
      "--max-objects-per-mount=3",
      "--max-files-per-mount=2",
      "--max-request-bytes=4096",
      "--write-cert-and-key-in-separate-files=true",
    ]);
  }, 60_000);
  afterAll(async () => small?.stop());

  const many = (n: number, extra: Record<string, string | number> = {}) =>
    objectsYaml(Array.from({ length: n }, (_, i) => ({ objectName: `o-${i}`, objectType: "secret", ...extra })));

  it("the defaults refuse 1001 objects, 5050 history files and more than 1 MiB, each naming its flag", async () => {
    const before = keyVaultRequests();
    const objectsErr = await provider.client.mountError({ attributes: attrs({ objects: many(1001) }), secrets: SP });
    expect([objectsErr.code, objectsErr.details]).toEqual([
      status.INVALID_ARGUMENT,
      "failed to mount objects, error: objects lists 1001 objects, more than the 1000 this provider accepts in one mount (--max-objects-per-mount); split them over several SecretProviderClasses",
    ]);
    const filesErr = await provider.client.mountError({ attributes: attrs({ objects: many(50, { objectVersionHistory: 100 }) }), secrets: SP });
    expect(filesErr.details).toBe(
      "failed to mount objects, error: objects would give up to 5050 files (objectVersionHistory N counts N+1), more than the 5000 this provider returns for one mount (--max-files-per-mount)",
    );
    // the 40,000-item list of the report: refused on its size, before it is parsed
    const huge = many(40_000);
    const started = Date.now();
    const hugeErr = await provider.client.mountError({ attributes: attrs({ objects: huge }), secrets: SP });
    console.log(`40,000 objects (${(huge.length / MiB).toFixed(1)} MiB) refused in ${Date.now() - started} ms`);
    expect(hugeErr.code).toBe(status.INVALID_ARGUMENT);
    expect(hugeErr.details).toMatch(
      /^failed to mount objects, error: the mount request carries \d+ KiB of parameters and secrets, more than the 1024 KiB this provider accepts \(--max-request-bytes\)/,
    );
    expect(keyVaultRequests()).toBe(before);
  });

  it("the flags change the limits", async () => {
    const before = keyVaultRequests();
    expect((await small.client.mountError({ attributes: attrs({ objects: many(4) }), secrets: SP })).details).toContain(
      "objects lists 4 objects, more than the 3 this provider accepts in one mount (--max-objects-per-mount)",
    );
    expect((await small.client.mountError({ attributes: attrs({ objects: many(1, { objectVersionHistory: 2 }) }), secrets: SP })).details).toContain(
      "objects would give up to 3 files (objectVersionHistory N counts N+1), more than the 2 this provider returns for one mount (--max-files-per-mount)",
    );
    const big = await small.client.mountError({ attributes: attrs({ padding: "x".repeat(5000) }), secrets: SP });
    expect(big.details).toContain("more than the 4 KiB this provider accepts (--max-request-bytes)");
    expect(keyVaultRequests()).toBe(before);
  });
});

describe("a hostile objects list does not hold the event loop", () => {
  it("another tenant's warm mount and /healthz are served while a 1 MiB list is parsed and refused", async () => {
    // another tenant, warm: its token and Key Vault client are cached
    const warm = () => provider.client.mount({ attributes: attrs({}, "tenant-b"), secrets: SP });
    await warm();
    // just under --max-request-bytes, so it is parsed (off the event loop) and refused on its count
    const items = Array.from({ length: 16_000 }, (_, i) => ({ objectName: `h-${i}`, objectType: "secret" }));
    const hostileObjects = objectsYaml(items);
    expect(JSON.stringify(attrs({ objects: hostileObjects })).length).toBeLessThan(MiB);

    const events: string[] = [];
    const healthLatencies: number[] = [];
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const t = performance.now();
        const res = await fetch(`http://127.0.0.1:${provider.healthPort}/healthz`);
        expect(res.status).toBe(200);
        healthLatencies.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const lagMax = async () => Number(/^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(await provider.metrics())?.[1]) * 1000;
    await lagMax(); // the maximum restarts at every scrape
    const started = performance.now();
    const hostile = provider.client.mountError({ attributes: attrs({ objects: hostileObjects }, "tenant-a"), secrets: SP }).then((err) => {
      events.push("hostile refused");
      return { err, ms: performance.now() - started };
    });
    // the warm mount starts after the hostile one is on its way
    await new Promise((r) => setTimeout(r, 20));
    const warmStarted = performance.now();
    const warmMs = await warm().then(() => {
      events.push("warm mount done");
      return performance.now() - warmStarted;
    });
    const { err, ms: hostileMs } = await hostile;
    polling = false;
    await poll;
    const providerLagMs = await lagMax();
    expect(err.details).toBe(
      "failed to mount objects, error: objects lists 16000 objects, more than the 1000 this provider accepts in one mount (--max-objects-per-mount); split them over several SecretProviderClasses",
    );
    const maxHealth = Math.max(...healthLatencies);
    console.log(
      `hostile 1 MiB list refused after ${hostileMs.toFixed(0)} ms; warm mount ${warmMs.toFixed(1)} ms; ` +
        `/healthz ${healthLatencies.length} probes, max ${maxHealth.toFixed(1)} ms; the provider's event loop lag at most ${providerLagMs.toFixed(1)} ms`,
    );
    // causality, not timing: the warm mount did not wait for the hostile parse...
    expect(events).toEqual(["warm mount done", "hostile refused"]);
    // ...and no health probe waited for it either
    expect(healthLatencies.length).toBeGreaterThan(1);
    expect(maxHealth).toBeLessThan(hostileMs / 2);
    expect(providerLagMs).toBeLessThan(hostileMs / 2);
  });
});
