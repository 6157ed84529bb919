// npm run bench:secret-sync [-- --secretsyncs N --classes N --namespaces N --interval 30s --intervals 3]
//
// The SecretSync controller at scale: 2,000 SecretSyncs over 200
// SecretProviderClasses (20 namespaces, 10 classes each, 2 Key Vault secrets
// per class, 10 SecretSyncs per class, one workload-identity service account
// per namespace). Real parts: a kube-apiserver of our own with the chart's RBAC
// for the controller, the Key Vault emulator over HTTPS, our Azure provider,
// and the controller bundle started as the chart starts it (with the driver image's Node flags).
// Prints the controller's memory (idle, after the first sync of all, after the
// rotation intervals), the time from the first SecretSync created to every
// Secret written and to every status recorded, and Key Vault reads per
// rotation interval. A benchmark, not a test: it asserts nothing. Run as root
// (the emulator takes port 443 of a loopback address).
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import YAML from "yaml";
import { bundlePrograms } from "../scripts/bundle.ts";
import { parseDuration } from "../src/shared/cli/duration.ts";
import { startCluster } from "../test/harness/cluster.ts";
import { applyYaml, loadKubeConfig, rawRequest } from "../test/harness/kube.ts";
import { startProvider, startTestEmulator } from "../test/provider/env.ts";
import { controllerChartObjects } from "../test/controller/stack.ts";
import { readFileSync } from "node:fs";
import { rssMiB, runConcurrently } from "./samples.ts";
import { imageNodeFlags } from "./stacks.ts";

/** CPU time (user + system) a process has used, in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  // utime and stime are the 14th and 15th fields of /proc/<pid>/stat (12th and 13th after the command).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const { values: args } = parseArgs({
  options: {
    secretsyncs: { type: "string", default: "2000" },
    classes: { type: "string", default: "200" },
    namespaces: { type: "string", default: "20" },
    interval: { type: "string", default: "30s" },
    intervals: { type: "string", default: "3" },
  },
});
const SECRET_SYNCS = Number(args.secretsyncs);
const CLASSES = Number(args.classes);
const NAMESPACES = Number(args.namespaces);
const INTERVAL_MS = parseDuration(args.interval!);
const INTERVALS = Number(args.intervals);
const OBJECTS_PER_CLASS = 2;
const VAULT = "bench-sync-kv";
const CLIENT_ID = "b5555555-5555-4555-8555-555555555555";
const SYSTEM_NS = "bench-sync-system";
const SA = "app";

const log = (line: string) => console.log(`[bench:secret-sync] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ns = (i: number) => `bench-sync-${i}`;
const classOf = (c: number) => ({ namespace: ns(c % NAMESPACES), name: `class-${c}` });

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("run as root: the Key Vault emulator listens on port 443 of a loopback address");
  const dir = await mkdtemp(join(tmpdir(), "bench-sync-"));
  log("bundling the controller as the image holds it");
  const [bundle] = await bundlePrograms({ programs: ["controller"], outdir: join(dir, "dist"), quiet: true });
  const cluster = await startCluster();
  const cleanup: (() => Promise<unknown>)[] = [() => cluster.stop(), () => rm(dir, { recursive: true, force: true })];
  try {
    const kc = loadKubeConfig(cluster.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    await core.createNamespace({ body: { metadata: { name: SYSTEM_NS } } });
    await applyYaml(kc, controllerChartObjects(SYSTEM_NS).map((o) => YAML.stringify(o)).join("---\n"));
    for (let i = 0; i < NAMESPACES; i++) {
      await core.createNamespace({ body: { metadata: { name: ns(i) } } });
      await core.createNamespacedServiceAccount({ namespace: ns(i), body: { metadata: { name: SA } } });
    }

    const jwks = JSON.parse((await rawRequest(kc, "GET", "/openid/v1/jwks", undefined, { accept: "application/jwk-set+json" })).body) as { keys: unknown[] };
    const { issuer } = (await rawRequest(kc, "GET", "/.well-known/openid-configuration")).json as { issuer: string };
    const { emulator, address } = await startTestEmulator({});
    cleanup.unshift(() => emulator.close());
    await emulator.seed({
      vaults: [{ name: VAULT, secrets: Array.from({ length: CLASSES * OBJECTS_PER_CLASS }, (_, i) => ({ name: `object-${i}`, value: `value-${i}-`.padEnd(256, "x") })) }],
      serviceAccountIssuers: [{ issuer, jwks: jwks as never }],
      applications: [
        {
          name: "bench",
          clientId: CLIENT_ID,
          federatedCredentials: Array.from({ length: NAMESPACES }, (_, i) => ({ issuer, subject: `system:serviceaccount:${ns(i)}:${SA}` })),
          roleAssignments: [{ vault: VAULT, permissions: ["secrets"] }],
        },
      ],
    } as never);
    const provider = await startProvider(emulator, address, [], { LOG_LEVEL: "info" });
    cleanup.unshift(() => provider.stop());

    for (let c = 0; c < CLASSES; c++) {
      const { namespace, name } = classOf(c);
      const objects = ["array:", ...Array.from({ length: OBJECTS_PER_CLASS }, (_, k) => `  - |\n    objectName: object-${c * OBJECTS_PER_CLASS + k}\n    objectType: secret`)].join("\n");
      await custom.createNamespacedCustomObject({
        group: "secrets-store.csi.x-k8s.io",
        version: "v1",
        namespace,
        plural: "secretproviderclasses",
        body: { apiVersion: "secrets-store.csi.x-k8s.io/v1", kind: "SecretProviderClass", metadata: { name }, spec: { provider: "azure", parameters: { keyvaultName: VAULT, tenantID: emulator.tenantId, clientID: CLIENT_ID, objects } } },
      });
    }

    const user = `system:serviceaccount:${SYSTEM_NS}:secrets-store-sync-controller-manager`;
    const kubeconfig = await cluster.kubeconfigFor(user, ["system:serviceaccounts", `system:serviceaccounts:${SYSTEM_NS}`]);
    const controller = spawn(
      process.execPath,
      [
        // The chart runs the controller with the driver image's Node flags.
        ...imageNodeFlags("Dockerfile.driver"),
        bundle!.file,
        `--kubeconfig=${kubeconfig}`,
        `--provider-volume=${resolve(provider.socket, "..")}`,
        "--token-request-audience=api://AzureADTokenExchange",
        "--metrics-bind-address=127.0.0.1:0",
        "--health-probe-bind-address=127.0.0.1:0",
        `--rotation-poll-interval=${args.interval}`,
      ],
      {
        env: { PATH: process.env.PATH ?? "", NODE_ENV: "production", LOG_LEVEL: "info", SYNC_CONTROLLER_POD_NAME: "bench", SYNC_CONTROLLER_POD_UID: randomUUID(), SYNC_CONTROLLER_POD_NAMESPACE: SYSTEM_NS },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    controller.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    controller.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    cleanup.unshift(async () => {
      controller.kill("SIGTERM");
      await new Promise((r) => controller.once("exit", r));
    });
    await sleep(3000);
    if (controller.exitCode !== null) throw new Error(`the controller exited:\n${output}`);
    const idle = rssMiB(controller.pid!);
    const cpuAtStart = cpuSeconds(controller.pid!);
    log(`controller idle: ${idle.toFixed(1)} MiB RSS`);

    // The SecretSyncs, 20 requests at a time, as a bulk apply would.
    const started = Date.now();
    await runConcurrently(SECRET_SYNCS, 20, async (i) => {
      const { namespace, name } = classOf(i % CLASSES);
      await custom.createNamespacedCustomObject({
        group: "secret-sync.x-k8s.io",
        version: "v1alpha1",
        namespace,
        plural: "secretsyncs",
        body: {
          apiVersion: "secret-sync.x-k8s.io/v1alpha1",
          kind: "SecretSync",
          metadata: { name: `sync-${i}` },
          spec: {
            secretProviderClassName: name,
            serviceAccountName: SA,
            secretObject: {
              type: "Opaque",
              data: Array.from({ length: OBJECTS_PER_CLASS }, (_, k) => ({ sourcePath: `object-${(i % CLASSES) * OBJECTS_PER_CLASS + k}`, targetKey: `key-${k}` })),
            },
          },
        },
      });
    });
    const created = Date.now() - started;
    log(`${SECRET_SYNCS} SecretSyncs created in ${(created / 1000).toFixed(1)} s`);
    let secretsAt = 0;
    let statusAt = 0;
    let peak = idle;
    while (!statusAt) {
      await sleep(1000);
      peak = Math.max(peak, rssMiB(controller.pid!));
      if (!secretsAt) {
        const secrets = await core.listSecretForAllNamespaces({ labelSelector: "secrets-store.sync.x-k8s.io" });
        if (secrets.items.length >= SECRET_SYNCS) secretsAt = Date.now() - started;
      }
      const syncs = (await custom.listClusterCustomObject({ group: "secret-sync.x-k8s.io", version: "v1alpha1", plural: "secretsyncs" })) as {
        items: { status?: { conditions?: { type: string; status: string }[] } }[];
      };
      const done = syncs.items.filter((s) => s.status?.conditions?.some((c) => c.type === "SecretCreated" && c.status === "True")).length;
      if (secretsAt && done >= SECRET_SYNCS) statusAt = Date.now() - started;
      if (Date.now() - started > 20 * 60_000) throw new Error(`not synced after 20 minutes: ${done} of ${SECRET_SYNCS} statuses`);
    }
    const afterSync = rssMiB(controller.pid!);
    const cpuFirstSync = cpuSeconds(controller.pid!) - cpuAtStart;
    log(`every Secret written ${(secretsAt / 1000).toFixed(1)} s after the first SecretSync was created; every status recorded after ${(statusAt / 1000).toFixed(1)} s`);

    // Let the first ticks pass, then count Key Vault reads over whole intervals.
    await sleep(INTERVAL_MS * 1.2);
    emulator.resetCounters();
    const cpuBeforeRotation = cpuSeconds(controller.pid!);
    const metricsBefore = await metric(output, "secretsync_provider_calls_total");
    await sleep(INTERVAL_MS * INTERVALS);
    const counters = emulator.counters();
    const reads = counters[`getSecret:${VAULT}`] ?? 0;
    const calls = (await metric(output, "secretsync_provider_calls_total")) - metricsBefore;
    const steady = rssMiB(controller.pid!);
    const cpuPerInterval = (cpuSeconds(controller.pid!) - cpuBeforeRotation) / INTERVALS;
    const result = [
      `machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`,
      `${SECRET_SYNCS} SecretSyncs over ${CLASSES} classes (${NAMESPACES} namespaces, ${OBJECTS_PER_CLASS} Key Vault secrets per class), rotation every ${args.interval}`,
      `controller RSS: idle ${idle.toFixed(1)} MiB, peak during the first sync ${peak.toFixed(1)} MiB, after it ${afterSync.toFixed(1)} MiB, after ${INTERVALS} rotation intervals ${steady.toFixed(1)} MiB`,
      `time to first sync of all: every Secret ${(secretsAt / 1000).toFixed(1)} s, every status ${(statusAt / 1000).toFixed(1)} s (creating the SecretSyncs took ${(created / 1000).toFixed(1)} s)`,
      `controller CPU: ${cpuFirstSync.toFixed(1)} s for the first sync of all (${((cpuFirstSync * 1000) / SECRET_SYNCS).toFixed(0)} ms per SecretSync), ${cpuPerInterval.toFixed(1)} s per rotation interval`,
      `Key Vault reads per rotation interval: ${(reads / INTERVALS).toFixed(0)} (${CLASSES} classes x ${OBJECTS_PER_CLASS} objects = ${CLASSES * OBJECTS_PER_CLASS}; one read per SecretSync would be ${SECRET_SYNCS * OBJECTS_PER_CLASS}); provider calls per interval: ${(calls / INTERVALS).toFixed(0)}; Entra ID token requests in ${INTERVALS} intervals: ${counters.token ?? 0}`,
    ];
    console.log(`\n${result.join("\n")}\n`);
  } finally {
    for (const step of cleanup) await step().catch(() => undefined);
  }

  /** A counter from the controller's /metrics (its port is in the "controller started" line). */
  async function metric(out: string, name: string): Promise<number> {
    const line = out.split("\n").find((l) => l.includes('"controller started"'));
    const port = line ? (JSON.parse(line) as { metricsPort: number }).metricsPort : undefined;
    if (!port) return NaN;
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return text
      .split("\n")
      .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
      .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exit(1);
});
