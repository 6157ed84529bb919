// The provider stays bounded and fair under hostile SecretProviderClasses,
// through the provider program's socket with the emulator behind it:
// cloudEnvFileName can only name regular files in --cloud-env-file-dir (one
// refusal text for everything else, no FIFO or device ever opened, memory
// flat), oversized requests are refused before any Key Vault request naming
// the limit and its flag, and a hostile objects list is parsed off the event
// loop while other tenants' mounts and /healthz keep being served; hostile
// YAML is refused before it is built, and the parser's worker is shared
// fairly between namespaces.
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
  // files that exist and are read, but are not cloud files: refused with the same text as a missing one
  writeFileSync(join(cloudDir, "not-json.json"), "root:x:0:0:root:/root:/bin/bash\n");
  writeFileSync(join(cloudDir, "empty-object.json"), "{}");
  writeFileSync(join(cloudDir, "http-login.json"), cloud.replace("https://login", "http://login"));
  writeFileSync(join(cloudDir, "bad-suffix.json"), cloud.replace('"vault.azure.net"', '"vault azure net"'));
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
  `it must name a readable regular file of at most 64 KiB in ${cloudDir} (the provider's --cloud-env-file-dir), ` +
  "a JSON cloud environment with activeDirectoryEndpoint (https), keyVaultEndpoint and keyVaultDNSSuffix";

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
      join(cloudDir, "not-json.json"),
      join(cloudDir, "empty-object.json"),
      join(cloudDir, "http-login.json"),
      join(cloudDir, "bad-suffix.json"),
    ];
    const before = keyVaultRequests();
    for (const path of paths) {
      const err = await provider.client.mountError({ attributes: stackCloud(path), secrets: SP });
      expect([err.code, err.details]).toEqual([status.INVALID_ARGUMENT, refusal(path)]);
    }
    expect(keyVaultRequests()).toBe(before);
    // the operator's log says why
    for (const reason of ["not a regular file", "not a JSON object of cloud environment endpoints", 'no \\"activeDirectoryEndpoint\\"', "activeDirectoryEndpoint is not an https:// URL", "keyVaultDNSSuffix is not a host name"]) {
      expect(provider.output()).toContain(`"reason":"${reason}"`);
    }
  });

  it("/dev/zero, a FIFO and a directory are refused fast, memory stays flat, and a concurrent normal mount is not stalled", async () => {
    // warm up: the code paths are loaded before memory is measured
    await provider.client.mountError({ attributes: stackCloud(join(cloudDir, "zero")), secrets: SP });
    const rssBefore = rssBytes(provider.pid);
    const hostile = [join(cloudDir, "zero"), "/dev/zero", join(cloudDir, "fifo"), join(cloudDir, "subdir")].flatMap((path) =>
      Array.from({ length: 6 }, (_, i) => ({ path, pod: `hostile-${i}` })),
    );
    // Answers, not durations, prove that nothing blocked: an open of the FIFO
    // waits for a writer forever, a read of /dev/zero never ends, and 24 of
    // them would fill libuv's 4 threads so the normal mount's file read could
    // not start. Each call then ends at its 30 s deadline as DEADLINE_EXCEEDED,
    // not with the refusal text or the file's contents checked here.
    const refusals = hostile.map(({ path, pod }) =>
      provider.client.mountError({ attributes: { ...stackCloud(path), "csi.storage.k8s.io/pod.name": pod }, secrets: SP }, 30_000).then((err) => {
        expect([err.code, err.details]).toEqual([status.INVALID_ARGUMENT, refusal(path)]);
      }),
    );
    const normal = provider.client.mount({ attributes: stackCloud(join(cloudDir, "good.json")), secrets: SP }, 30_000).then((res) => {
      expect(Buffer.from(res.files[0]!.contents).toString()).toBe("one");
    });
    await Promise.all([normal, ...refusals]);
    // libuv's thread pool is free: another cloud file read works right after
    await provider.client.mount({ attributes: stackCloud(join(cloudDir, "good.json")), secrets: SP });
    const growth = rssBytes(provider.pid) - rssBefore;
    console.log(`cloud file refusals: ${hostile.length} refused; RSS growth ${(growth / MiB).toFixed(2)} MiB`);
    expect(growth).toBeLessThan(10 * MiB);
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

/**
 * The costliest list the limits let through: 1,000 objects with 600-byte
 * aliases (about 700 KiB, every object parsed), refused on the last one.
 */
function costlyList(tag: string): string {
  const items = Array.from({ length: 1000 }, (_, i) => ({
    objectName: `h-${i}`,
    objectType: i === 999 ? "bogus" : "secret",
    objectAlias: `${tag}/${"a".repeat(200)}/${"b".repeat(200)}/${"c".repeat(200)}/${i}`,
  }));
  return objectsYaml(items);
}
const COSTLY_REFUSAL = /^failed to mount objects, error: failed to get objectType:bogus, objectName:h-999, objectVersion:: Invalid vaultObjectTypes/;

/** An ordinary class of another tenant: 140 objects, above the 8 KiB parsed in place, so it goes to the worker. */
function ordinaryList(): string {
  const text = objectsYaml(Array.from({ length: 140 }, (_, i) => ({ objectName: i % 2 ? "s1" : "s2", objectType: "secret", objectAlias: `config/ordinary-file-${i}.txt` })));
  expect(text.length).toBeGreaterThan(8 * 1024);
  return text;
}

const tenantAttrs = (objectsText: string, namespace: string, pod: string) =>
  podAttributes({ keyvaultName: "kv-bounds", tenantID: emulator.tenantId, objects: objectsText }, { name: pod, namespace, serviceAccount: "sa1" });

describe("a hostile objects list does not hold the event loop", () => {
  it("another tenant's warm mounts and /healthz are served while the costliest lists are parsed and refused", async () => {
    // another tenant, warm: its token and Key Vault client are cached
    const warm = () => provider.client.mount({ attributes: attrs({}, "tenant-b"), secrets: SP });
    await warm();
    // Distinct lists (identical ones in flight would share one parse), each as costly as the limits let a list be.
    const HOSTILE_LISTS = 4;
    const hostileLists = Array.from({ length: HOSTILE_LISTS }, (_, i) => costlyList(`event-loop-${i}`));
    const hostileObjects = hostileLists[0]!;
    expect(JSON.stringify(attrs({ objects: hostileObjects })).length).toBeLessThan(MiB);

    // What happened, in the order it happened. The provider parses large lists
    // one at a time in its worker, so from the hostile tenant's first refusal
    // to its last it is busy parsing the others: whatever completes in that
    // stretch was served while a hostile parse ran. The warm mounts are the
    // proof that the event loop stayed free: they share the connection the
    // hostile lists arrive on, and with the lists parsed on the event loop none
    // completes in that stretch (0 of them in such a build, against hundreds).
    const events: string[] = [];
    let refused = 0;
    const hostile = hostileLists.map((objects, i) =>
      // one namespace each: a namespace may have only two lists waiting for the worker
      provider.client.mountError({ attributes: tenantAttrs(objects, `hostile-${i}`, "pod-h"), secrets: SP }).then((err) => {
        events.push("hostile refused");
        refused++;
        return err;
      }),
    );
    // The other tenant and the kubelet's probe keep coming while the hostile calls are pending.
    const keepGoing = async (what: string, call: () => Promise<void>) => {
      while (refused < HOSTILE_LISTS) {
        await call();
        events.push(what);
      }
    };
    const probe = async () => {
      const res = await fetch(`http://127.0.0.1:${provider.healthPort}/healthz`);
      expect(res.status).toBe(200);
      await res.text();
    };
    const others = [keepGoing("warm mount done", async () => void (await warm())), keepGoing("healthz answered", probe)];
    const errors = await Promise.all(hostile);
    await Promise.all(others);
    for (const err of errors) {
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toMatch(COSTLY_REFUSAL);
    }
    // The stretch from the first to the last refusal: the other lists being parsed.
    const during = events.slice(events.indexOf("hostile refused"), events.lastIndexOf("hostile refused"));
    const count = (what: string) => during.filter((e) => e === what).length;
    console.log(
      `while ${HOSTILE_LISTS - 1} hostile ${(hostileObjects.length / 1024).toFixed(0)} KiB lists were parsed one after another: ${count("warm mount done")} warm mounts of another tenant done, ` +
        `/healthz answered ${count("healthz answered")} times`,
    );
    expect(count("hostile refused")).toBe(HOSTILE_LISTS - 1);
    // Counts, not durations: a parse costs many warm mounts' or probes' worth of
    // CPU on any machine, so these floors hold with a wide margin however busy
    // the machine is (on the shared 2-core machine, beside CPU hogs: dozens of each).
    expect(count("warm mount done")).toBeGreaterThanOrEqual(2);
    // /healthz kept answering all along (it has its own connection, so these
    // count answers, not the loop's freedom, which the warm mounts prove)
    expect(count("healthz answered")).toBeGreaterThanOrEqual(3);
  });
});

describe("hostile YAML is refused before it is built, naming the limit", () => {
  it("a 289 KB mapping of 30,000 keys, 40,000 keys, 16,000 objects in 1 MiB and deep nesting: InvalidArgument, no Key Vault request", async () => {
    const keys = (n: number) => ["array: []", ...Array.from({ length: n }, (_, i) => `k${i}: v`)].join("\n");
    const hostile = [
      keys(30_000),
      keys(40_000),
      objectsYaml(Array.from({ length: 16_000 }, (_, i) => ({ objectName: `h-${i}`, objectType: "secret" }))),
      `array: ${"[".repeat(50_000)}`,
    ];
    const before = keyVaultRequests();
    for (const [i, text] of hostile.entries()) {
      const err = await provider.client.mountError({ attributes: tenantAttrs(text, `yaml-${i}`, "pod"), secrets: SP });
      expect([err.code, err.details]).toEqual([
        status.INVALID_ARGUMENT,
        "failed to mount objects, error: the objects list has more than 6256 YAML nodes (keys, values, list entries), far more than 1000 objects need (--max-objects-per-mount); list fewer objects, or fewer keys per object",
      ]);
    }
    // one object with 30,000 keys: the object's own budget
    const item = `array:\n  - |\n${Array.from({ length: 30_000 }, (_, i) => `    k${i}: v`).join("\n")}\n`;
    const itemErr = await provider.client.mountError({ attributes: tenantAttrs(item, "yaml-item", "pod"), secrets: SP });
    expect(itemErr.details).toBe(
      "failed to mount objects, error: unmarshal failed for keyVaultObjects at index 0, error: the object's YAML has more than 256 YAML nodes (keys, values, list entries), far more than one object needs; list fewer objects, or fewer keys per object",
    );
    expect(keyVaultRequests()).toBe(before);
  });
});

describe("the parser's worker is shared fairly", () => {
  it("with four namespaces' costly lists queued, another namespace's ordinary list is parsed and mounted while theirs still wait", async () => {
    // two per namespace: the most that may wait (8 in all, 2 per namespace)
    const waiting = async () => Number(/^objects_lists_waiting (\S+)$/m.exec(await provider.metrics())?.[1]);
    const events: string[] = [];
    const hostile = ["tenant-1", "tenant-2", "tenant-3", "tenant-4"].flatMap((namespace) =>
      Array.from({ length: 2 }, (_, i) =>
        provider.client.mountError({ attributes: tenantAttrs(costlyList(`${namespace}-${i}`), namespace, `pod-${i}`), secrets: SP }, 300_000).then((err) => {
          events.push(err.code === status.INVALID_ARGUMENT ? "hostile parsed" : `hostile ${err.code}`);
          expect(err.details).toMatch(COSTLY_REFUSAL);
        }),
      ),
    );
    // All eight are in: one in the worker and seven waiting, or, where the
    // worker answered one before the machine had delivered the last, six.
    let queued = 0;
    for (let tries = 0; (queued = await waiting()) + events.length < 7; tries++) {
      expect(tries, "the costly lists did not all get queued").toBeLessThan(600);
      await new Promise((r) => setTimeout(r, 50));
    }
    // enough still wait that first-come order would make the ordinary list wait for more than five
    expect(queued, "costly lists waiting when the ordinary list is sent").toBeGreaterThanOrEqual(5);
    const answeredBefore = events.length;
    const ordinary = provider.client.mount({ attributes: tenantAttrs(ordinaryList(), "tenant-ordinary", "pod"), secrets: SP }, 300_000).then((res) => {
      events.push("ordinary mounted");
      return res;
    });
    const res = await ordinary;
    expect(res.files).toHaveLength(140);
    const parsedBefore = events.indexOf("ordinary mounted") - answeredBefore;
    await Promise.all(hostile);
    console.log(
      `costly lists answered while the ordinary list waited: ${parsedBefore} (${queued} were waiting, ${answeredBefore} answered before it was sent); order: ${events.join(", ")}`,
    );
    // the ordinary list waited for at most the one being parsed and one of each other namespace (first come, first served: all that waited)
    expect(parsedBefore).toBeLessThanOrEqual(5);
    expect(events.filter((e) => e === "hostile parsed")).toHaveLength(8);
  }, 600_000);
});
