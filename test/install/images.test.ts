// The container images, without a Docker engine: read each Dockerfile, build
// the bundles the way its build stage does (scripts/bundle.ts), copy into an
// empty directory exactly what its runtime stage copies, and start the program
// from there with Node 24 the way its ENTRYPOINT does. Nothing else is beside
// the bundle: no node_modules, no sources, no proto/ of the repository, so a
// dependency left out of the bundle or a file the Dockerfile forgets fails here.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, relative } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundlePrograms, REPO_ROOT, type BundleResult } from "../../scripts/bundle.ts";
import { csiServices, providerService } from "../../src/shared/grpc/proto.ts";
import { freePorts } from "../harness/processes.ts";
import { copies, entrypoint, env, labels, lastValue, parseDockerfile, type Stage } from "./dockerfile.ts";

const BUILD = { version: "v0.0.0-image-test", commit: "0123456789abcdef0123456789abcdef01234567", date: "2030-01-02T03:04:05Z" };

let buildDir: string;
let bundles: BundleResult[] = [];
const cleanup: string[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 24) throw new Error(`these tests run the bundles with the test's own Node, which is ${process.version}; Node 24 is required`);
  buildDir = mkdtempSync(join(tmpdir(), "sscsi-image-build-"));
  cleanup.push(buildDir);
  bundles = await bundlePrograms({ programs: ["driver", "controller", "provider"], outdir: join(buildDir, "dist"), buildInfo: BUILD, quiet: true });
}, 120_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await new Promise((r) => setTimeout(r, 50));
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

interface Image {
  dockerfile: string;
  program: "driver" | "provider";
  runtime: Stage;
  build: Stage;
}

function readImage(file: string, program: Image["program"]): Image {
  const parsed = parseDockerfile(join(REPO_ROOT, file));
  const build = parsed.stages.find((s) => s.name === "build");
  if (!build) throw new Error(`${file} has no stage named build`);
  return { dockerfile: file, program, build, runtime: parsed.stages.at(-1)! };
}

/**
 * Performs the runtime stage's COPY --from=build instructions into an empty
 * directory, with Docker's rules (a source directory's contents go into the
 * destination; a destination ending in / is a directory). Build-stage paths
 * under <WORKDIR>/dist come from our bundle output.
 */
function assemble(image: Image): string {
  const root = mkdtempSync(join(tmpdir(), `sscsi-image-${image.program}-`));
  cleanup.push(root);
  const workdir = lastValue(image.build, "WORKDIR");
  if (!workdir) throw new Error(`${image.dockerfile}: the build stage has no WORKDIR`);
  for (const c of copies(image.runtime)) {
    if (c.from !== "build") throw new Error(`${image.dockerfile}: the runtime stage copies ${c.sources.join(" ")} from ${c.from ?? "the build context"}, not from the build stage`);
    const dest = join(root, c.dest);
    const destIsDir = c.dest.endsWith("/") || c.sources.length > 1;
    for (const source of c.sources) {
      const rel = relative(workdir, source);
      if (!rel.startsWith("dist/")) throw new Error(`${image.dockerfile}: copies ${source}, which is not bundle output (${workdir}/dist/...)`);
      const from = join(buildDir, rel);
      if (!existsSync(from)) throw new Error(`${image.dockerfile}: copies ${source}, which the bundle step did not produce`);
      if (statSync(from).isDirectory()) {
        mkdirSync(dest, { recursive: true });
        cpSync(from, dest, { recursive: true });
      } else {
        const target = destIsDir ? join(dest, basename(from)) : dest;
        mkdirSync(join(target, ".."), { recursive: true });
        cpSync(from, target);
      }
    }
  }
  // mkdtemp makes the root 0700; an image's filesystem is world-readable.
  chmodSync(root, 0o755);
  return root;
}

/** uid:gid of USER (numeric only: our images use numbers so Kubernetes can check runAsNonRoot). */
function user(image: Image): { uid: number; gid: number } {
  const value = lastValue(image.runtime, "USER") ?? "0";
  const m = /^(\d+)(?::(\d+))?$/.exec(value);
  if (!m) throw new Error(`${image.dockerfile}: USER ${value} is not numeric`);
  return { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
}

interface Started {
  child: ChildProcess;
  output: () => string;
}

/** Starts ENTRYPOINT + args from the assembled root, with only the image's ENV and user. */
function start(image: Image, root: string, args: string[]): Started {
  const [cmd, ...argv] = entrypoint(image.runtime);
  expect(cmd).toBe("node");
  // Node's own flags come before the script.
  const scriptAt = argv.findIndex((a) => !a.startsWith("-"));
  const flags = argv.slice(0, scriptAt);
  const [script, ...rest] = argv.slice(scriptAt);
  const childEnv: Record<string, string> = { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: "/nonexistent" };
  for (const [k, v] of env(image.runtime)) childEnv[k] = v;
  const { uid, gid } = user(image);
  const canSwitch = process.getuid?.() === 0;
  const child = spawn(process.execPath, [...flags, join(root, script!), ...rest, ...args], {
    cwd: "/",
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
    ...(canSwitch ? { uid, gid } : {}),
  });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  return { child, output: () => out };
}

async function waitFor(what: string, started: Started, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (started.child.exitCode !== null) throw new Error(`${what}: the program exited with ${started.child.exitCode}:\n${started.output()}`);
    if (await check().catch(() => false)) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms:\n${started.output()}`);
}

async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return { status: res.status, body: await res.text() };
}

function unary<T>(client: grpc.Client, method: string, request: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, (req: object, opts: grpc.CallOptions, cb: (err: Error | null, res: T) => void) => void>)[method]!;
    fn.call(client, request, { deadline: new Date(Date.now() + 5000) }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

async function stop(started: Started): Promise<number | null> {
  started.child.kill("SIGTERM");
  const t0 = Date.now();
  while (started.child.exitCode === null && started.child.signalCode === null && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
  return started.child.exitCode;
}

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

/** The SecretSync controller, which the driver's image holds beside the driver. */
const CONTROLLER = { bundleName: "secrets-store-sync-controller.mjs", installDir: "/opt/secrets-store-sync-controller", workers: [] as string[] };

// file, program, bundle, install directory, worker scripts beside the bundle, other programs in the image, V8 flags
const IMAGES: [string, Image["program"], string, string, string[], (typeof CONTROLLER)[], string[]][] = [
  ["Dockerfile.driver", "driver", "secrets-store-csi-driver.mjs", "/opt/secrets-store-csi-driver", [], [CONTROLLER], ["--lite-mode", "--no-icu-timezone-data"]],
  [
    "Dockerfile.provider",
    "provider",
    "secrets-store-csi-provider-azure.mjs",
    "/opt/secrets-store-csi-provider-azure",
    ["objects-worker.mjs"],
    [],
    ["--lite-mode", "--invocation-count-for-feedback-allocation=1", "--no-icu-timezone-data"],
  ],
];

describe.each(IMAGES)("%s", (file, program, bundleName, installDir, workers, others, nodeFlags) => {
  const image = readImage(file, program);

  it("builds on an exactly pinned Node 24 and bundles in the build stage", () => {
    const parsed = parseDockerfile(join(REPO_ROOT, file));
    for (const stage of parsed.stages) expect(stage.from).toMatch(/^node:24\.\d+\.\d+-[a-z]+-slim(@sha256:[a-f0-9]{64})?$/);
    const runs = image.build.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args);
    expect(runs.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    expect(runs.some((r) => r.includes(`node scripts/bundle.ts ${program}`))).toBe(true);
  });

  it("has a runtime stage with OCI labels, no npm and only bundle output copied in", () => {
    const l = labels(image.runtime);
    for (const key of ["title", "description", "version", "revision", "licenses"]) expect(l.has(`org.opencontainers.image.${key}`), key).toBe(true);
    const runs = image.runtime.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args);
    expect(runs.join("\n")).toMatch(/rm -rf \/usr\/local\/lib\/node_modules/);
    expect(runs.join("\n")).not.toMatch(/\bnpm (ci|install)\b/);
    expect(copies(image.runtime).every((c) => c.from === "build")).toBe(true);
    // V8 in lite mode, the provider's feedback on first call (measured: docs/performance.md), then the bundle.
    expect(entrypoint(image.runtime)).toEqual(["node", ...nodeFlags, `${installDir}/${bundleName}`]);
  });

  it("copies the bundle, its worker scripts, its on-demand chunks, its proto files and its licence notices, and nothing else", () => {
    const root = assemble(image);
    const files = listFiles(root);
    const programs = [{ bundleName, installDir, workers }, ...others];
    const chunks = files.filter((f) => programs.some((p) => f.startsWith(`${p.installDir.slice(1)}/chunks/`)));
    // Code loaded on first use only: the PKCS#12 reader in every program.
    for (const p of programs) expect(chunks.some((f) => f.startsWith(p.installDir.slice(1)) && /\/pkcs12-[A-Z0-9]+\.mjs$/.test(f)), p.bundleName).toBe(true);
    expect(chunks.every((f) => f.endsWith(".mjs"))).toBe(true);
    expect(files.filter((f) => !chunks.includes(f))).toEqual(
      programs
        .flatMap((p) => [
          `${p.installDir}/${p.bundleName}`,
          ...p.workers.map((w) => `${p.installDir}/${w}`),
          `${p.installDir}/THIRD-PARTY-NOTICES.txt`,
          `${p.installDir}/proto/csi.proto`,
          `${p.installDir}/proto/pluginregistration.proto`,
          `${p.installDir}/proto/provider.proto`,
        ])
        .map((p) => p.slice(1))
        .sort(),
    );
    for (const p of programs) {
      const notices = readFileSync(join(root, p.installDir, "THIRD-PARTY-NOTICES.txt"), "utf8");
      expect(notices).toMatch(/@grpc\/grpc-js@\S+ \(Apache-2\.0\)/);
    }
  });

  it("prints the version stamped at build time", () => {
    const root = assemble(image);
    const script = entrypoint(image.runtime).find((a) => a.endsWith(".mjs"));
    const run = spawnSync(process.execPath, [...nodeFlags, join(root, script!), "--version"], { encoding: "utf8", env: { PATH: "/usr/bin:/bin" }, cwd: "/" });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    const printed = JSON.parse(run.stdout) as Record<string, string>;
    if (program === "driver") expect(printed).toEqual({ BuildVersion: BUILD.version, GitCommit: BUILD.commit, BuildDate: BUILD.date });
    else expect(printed).toEqual({ version: BUILD.version, buildDate: BUILD.date });
  });
});

describe("what the bundles load at start-up (docs/performance.md)", () => {
  const bundle = (program: string) => bundles.find((b) => b.program === program)!;
  const startup = (program: string) => [...bundle(program).startupPackages.keys()];
  const code = (program: string) =>
    listFiles(bundle(program).dir)
      .filter((f) => f.endsWith(".mjs"))
      .map((f) => readFileSync(join(bundle(program).dir, f), "utf8"))
      .join("\n");

  it("keeps the Azure SDK, PKCS#12, YAML and Kubernetes client code out of the provider's start-up, on demand", () => {
    expect(startup("provider").filter((p) => p.startsWith("@azure/") || ["node-forge", "yaml", "@kubernetes/client-node"].includes(p))).toEqual([]);
    expect([...bundle("provider").packages.keys()]).toEqual(expect.arrayContaining(["@azure/identity", "@azure/keyvault-secrets", "node-forge", "yaml"]));
  });

  it("keeps the Kubernetes client package, undici, yaml and PKCS#12 out of the driver's start-up", () => {
    expect(startup("driver").filter((p) => ["@kubernetes/client-node", "undici", "yaml", "node-forge"].includes(p))).toEqual([]);
  });

  it("leaves out prom-client's Pushgateway and AggregatorRegistry", () => {
    for (const program of ["driver", "provider"]) expect(code(program), program).not.toMatch(/Pushgateway|AggregatorRegistry/);
  });

  it("never reads FormData in the provider, whose first read loads Node's fetch", () => {
    expect(code("provider")).not.toMatch(/\b(typeof|instanceof) FormData\b/);
  });
});

describe("Dockerfile.driver at run time", () => {
  const image = readImage("Dockerfile.driver", "driver");

  it("runs as root (it mounts tmpfs) and checks for mount/umount and the mount helper's Perl", () => {
    expect(user(image).uid).toBe(0);
    const run = image.runtime.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args).join("\n");
    expect(run).toMatch(/mount --version && umount --version/);
    expect(run).toContain("/usr/bin/perl -e");
  });

  it("serves CSI Identity and Node on its socket, /healthz and /metrics, without an API server", async () => {
    const root = assemble(image);
    const run = join(root, "run");
    mkdirSync(run);
    const socket = join(run, "csi.sock");
    const [healthPort, metricsPort] = await freePorts("127.0.0.1", 2);
    const started = start(image, root, [
      `--endpoint=unix://${socket}`,
      "--nodeid=image-test-node",
      `--health-addr=127.0.0.1:${healthPort}`,
      `--metrics-addr=127.0.0.1:${metricsPort}`,
      `--provider-volume=${join(root, "providers")}`,
      "--additional-provider-volume-paths=",
      "-v=5",
    ]);
    const readyMs = await waitFor("driver /healthz", started, async () => (await httpGet(`http://127.0.0.1:${healthPort}/healthz`)).status === 200);
    const { Identity, Node } = csiServices();
    const identity = new Identity(`unix://${socket}`, grpc.credentials.createInsecure());
    const node = new Node(`unix://${socket}`, grpc.credentials.createInsecure());
    try {
      expect(await unary(identity, "GetPluginInfo", {})).toMatchObject({ name: "secrets-store.csi.k8s.io", vendor_version: BUILD.version });
      await unary(identity, "Probe", {});
      expect(await unary(node, "NodeGetInfo", {})).toMatchObject({ node_id: "image-test-node" });
    } finally {
      identity.close();
      node.close();
    }
    const health = await httpGet(`http://127.0.0.1:${healthPort}/healthz`);
    expect(health.status).toBe(200);
    const metrics = await httpGet(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(metrics.body).toContain("# TYPE node_publish_total counter");
    const rss = rssKiB(started.child.pid!);
    console.log(`driver bundle: healthy ${readyMs} ms after spawn, RSS ${(rss / 1024).toFixed(1)} MiB`);
    expect(await stop(started)).toBe(0);
  });
});

describe("the SecretSync controller in Dockerfile.driver", () => {
  const image = readImage("Dockerfile.driver", "driver");

  it("is where the chart's command runs it, prints its version and explains a missing pod identity, as an unprivileged user", () => {
    const root = assemble(image);
    const chart = readFileSync(join(REPO_ROOT, "charts", "secrets-store-csi-driver-azure", "templates", "sync-controller-deployment.yaml"), "utf8");
    const command = /command: (\[.*\])/.exec(chart)?.[1];
    // The controller runs with the driver image's Node flags (the benchmarks start it so).
    const driverFlags = entrypoint(image.runtime).slice(1, -1);
    expect(driverFlags).toEqual(["--lite-mode", "--no-icu-timezone-data"]);
    expect(JSON.parse(command!)).toEqual(["node", ...driverFlags, `${CONTROLLER.installDir}/${CONTROLLER.bundleName}`]);
    // The image's files are readable by the chart's user (65532).
    const asUser = process.getuid?.() === 0 ? { uid: 65532, gid: 65532 } : {};
    const script = join(root, CONTROLLER.installDir, CONTROLLER.bundleName);
    const version = spawnSync(process.execPath, [...driverFlags, script, "--version"], { encoding: "utf8", env: { PATH: "/usr/bin:/bin" }, cwd: "/", ...asUser });
    expect(version.stderr).toBe("");
    expect(JSON.parse(version.stdout)).toEqual({ BuildVersion: BUILD.version, GitCommit: BUILD.commit, BuildDate: BUILD.date });
    const unnamed = spawnSync(process.execPath, [...driverFlags, script], { encoding: "utf8", env: { PATH: "/usr/bin:/bin" }, cwd: "/", ...asUser });
    expect(unnamed.status).toBe(2);
    expect(unnamed.stderr).toContain("SYNC_CONTROLLER_POD_NAME and SYNC_CONTROLLER_POD_UID must be set");
  });

  it("keeps the Kubernetes client package, yaml and PKCS#12 out of its start-up", () => {
    const controller = bundles.find((b) => b.program === "controller")!;
    expect([...controller.startupPackages.keys()].filter((p) => ["@kubernetes/client-node", "undici", "yaml", "node-forge", "@azure/identity"].includes(p))).toEqual([]);
  });
});

describe("Dockerfile.provider at run time", () => {
  const image = readImage("Dockerfile.provider", "provider");

  it("runs as an unprivileged user", () => {
    expect(user(image)).toEqual({ uid: 65532, gid: 65532 });
  });

  it("serves the provider API on its socket, /healthz and /metrics as that user", async () => {
    const root = assemble(image);
    const socketDir = join(root, "provider");
    mkdirSync(socketDir);
    if (process.getuid?.() === 0) chownSync(socketDir, user(image).uid, user(image).gid);
    const socket = join(socketDir, "azure.sock");
    // on loopback: --healthz-port / --prometheus-port would bind every interface
    const [healthPort, metricsPort] = await freePorts("127.0.0.1", 2);
    const started = start(image, root, [
      `--endpoint=unix://${socket}`,
      `--healthz-addr=127.0.0.1:${healthPort}`,
      `--metrics-addr=127.0.0.1:${metricsPort}`,
      "--construct-pem-chain=false",
      "--write-cert-and-key-in-separate-files=true",
      "-v=2",
    ]);
    const readyMs = await waitFor("provider /healthz", started, async () => (await httpGet(`http://127.0.0.1:${healthPort}/healthz`)).status === 200);
    if (process.getuid?.() === 0) expect(statSync(socket).uid).toBe(user(image).uid);
    const Provider = providerService();
    const client = new Provider(`unix://${socket}`, grpc.credentials.createInsecure());
    try {
      expect(await unary(client, "Version", { version: "v1alpha1" })).toMatchObject({ version: "v1alpha1", runtime_version: BUILD.version });
      // a large objects list is parsed by the worker thread beside the bundle
      const objects = ["array:", ...Array.from({ length: 2000 }, (_, i) => `  - |\n    objectName: o-${i}\n    objectType: secret`)].join("\n");
      const attributes = JSON.stringify({ "csi.storage.k8s.io/pod.name": "p", "csi.storage.k8s.io/pod.namespace": "n", keyvaultName: "kv-x", tenantID: "t", objects });
      const refused = await unary(client, "Mount", { attributes, secrets: JSON.stringify({ clientid: "a", clientsecret: "b" }), target_path: "/t", permission: "420" }).catch((err: grpc.ServiceError) => err);
      expect((refused as grpc.ServiceError).details).toContain("objects lists 2000 objects, more than the 1000 this provider accepts in one mount (--max-objects-per-mount)");
    } finally {
      client.close();
    }
    const metrics = await httpGet(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(metrics.body).toMatch(/grpc_request_count\{[^}]*grpc_method="\/v1alpha1\.CSIDriverProvider\/Version"/);
    const rss = rssKiB(started.child.pid!);
    console.log(`provider bundle: healthy ${readyMs} ms after spawn, RSS ${(rss / 1024).toFixed(1)} MiB`);
    expect(await stop(started)).toBe(0);
  });
});

describe(".dockerignore", () => {
  const patterns = readFileSync(join(REPO_ROOT, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));

  // Docker's rule: the last matching pattern wins; "!" re-includes.
  function ignored(path: string): boolean {
    let result = false;
    for (const raw of patterns) {
      const negate = raw.startsWith("!");
      const p = (negate ? raw.slice(1) : raw).replace(/\/$/, "");
      const hit =
        p === "**" ||
        path === p ||
        path.startsWith(`${p}/`) ||
        (p.startsWith("**/") && (path.split("/").includes(p.slice(3)) || path.endsWith(p.slice(2).replace("*", ""))));
      if (hit) result = !negate;
    }
    return result;
  }

  it("sends the builder what the build stages copy and leaves out node_modules, dist and tests", () => {
    for (const file of ["Dockerfile.driver", "Dockerfile.provider"]) {
      for (const c of copies(readImage(file, "driver").build)) {
        if (c.from) continue;
        for (const s of c.sources) expect(ignored(s.replace(/^\.\//, "").replace(/\/$/, "")), `${file} copies ${s}`).toBe(false);
      }
    }
    for (const p of ["node_modules/pino/index.js", "src/node_modules/x.js", "dist/driver/x.mjs", "test/install/images.test.ts", ".git/HEAD", "charts/x/values.yaml"]) {
      expect(ignored(p), p).toBe(true);
    }
  });
});
