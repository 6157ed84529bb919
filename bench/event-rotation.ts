// npm run bench:events [-- --changes 50 --pods 50 --poll 2m]
//
// Event-driven rotation side by side with polling, in one run, on real parts:
// a kube-apiserver of our own with the chart's RBAC for the controller, the
// Key Vault emulator over HTTPS publishing Key Vault's events, two Azure
// provider processes (the node's and the controller's sidecar, as deployed),
// the driver and the controller bundles started as the images start them,
// the driver on real tmpfs with 50 pods of one service account on its node
// sharing one class, and a SecretSync. For each change a new version is
// written into the vault and the time is taken until the new bytes are in
// every pod's file (inotify on each volume) and in the synced Secret's data
// (a watch); changes come 2.5 s apart. Measured:
//
//   push   Event Grid schema webhook (query secret), the controller's webhook;
//   pull   Event Grid namespace topic read as the controller's workload identity;
//   poll   the rotation poll every --poll (default 2m). Not waited for: a change
//          lands at a uniformly random moment of the poll cycle, so its latency
//          is a wait drawn from that cycle (the interval plus its 10% jitter,
//          and for volumes the driver's check every min(10 s, interval/4))
//          plus the time the same refresh takes here, measured for real by
//          asking the driver (pod annotation) and the controller
//          (forceSynchronization) for exactly the refresh a poll tick makes.
//
// Also counted: Key Vault reads per event for the 50 pods (one vault for the
// pods, another for the SecretSync, so reads are told apart), and the reads
// caused by duplicate, reordered and stale deliveries. A benchmark: prints
// figures, asserts nothing. Run as root (tmpfs, port 443 of a loopback address).
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, watch, type FSWatcher } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, Watch, type V1Secret } from "@kubernetes/client-node";
import { build } from "esbuild";
import YAML from "yaml";
import { bundlePrograms } from "../scripts/bundle.ts";
import { parseDuration } from "../src/shared/cli/duration.ts";
import { startCluster } from "../test/harness/cluster.ts";
import { applyYaml, loadKubeConfig, rawRequest } from "../test/harness/kube.ts";
import { DNS_HOOK, startProvider, startTestEmulator } from "../test/provider/env.ts";
import { controllerChartObjects } from "../test/controller/stack.ts";
import { csiClient } from "../test/support/csi-client.ts";
import { requireRoot } from "../test/support/driver-process.ts";
import { quantile } from "./samples.ts";
import { imageNodeFlags } from "./stacks.ts";

const { values: args } = parseArgs({
  options: {
    changes: { type: "string", default: "50" },
    pods: { type: "string", default: "50" },
    poll: { type: "string", default: "2m" },
    reorders: { type: "string", default: "10" },
  },
});
const CHANGES = Number(args.changes);
const PODS = Number(args.pods);
const POLL_MS = parseDuration(args.poll!);
const REORDERS = Number(args.reorders);
const NODE_VAULT = "bench-evt-pods";
const SYNC_VAULT = "bench-evt-sync";
const NS = "bench-events";
const SYSTEM_NS = "bench-events-system";
const SA = "app";
const CONTROLLER_SA = "secrets-store-sync-controller-manager";
const WORKLOAD_CLIENT_ID = "b6666666-6666-4666-8666-666666666666";
const CONTROLLER_CLIENT_ID = "b7777777-7777-4777-8777-777777777777";
const AUDIENCE = "api://AzureADTokenExchange";
const QUERY_SECRET = "bench-query-secret-0123456789abcdef";
const NODE = "bench-events-node";
const EG_NAMESPACE = "bench-events-ns";
const CHANGE_GAP_MS = 2500;

const log = (line: string) => console.log(`[bench:events] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  file: number;
  secret: number;
  /** Key Vault reads for the pods' vault, and the SecretSync's. */
  podReads: number;
  syncReads: number;
}

interface Program {
  child: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

function startProgram(name: string, argv: string[], env: NodeJS.ProcessEnv): Program {
  const child = spawn(process.execPath, argv, { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  child.once("exit", (code) => {
    if (code !== 0 && code !== null) log(`${name} exited with ${code}:\n${out.split("\n").slice(-15).join("\n")}`);
  });
  return {
    child,
    output: () => out,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once("exit", () => done());
        child.kill("SIGTERM");
      }),
  };
}

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The first moment every volume holds `value` in `file` (inotify on each volume's directory). */
class VolumeWatch {
  private readonly watchers: FSWatcher[] = [];
  private readonly seen = new Map<string, number>();
  private expected = "";
  private resolve?: (at: number) => void;
  private readonly targets: string[];
  private readonly file: string;

  constructor(targets: string[], file: string) {
    this.targets = targets;
    this.file = file;
    for (const target of targets) {
      this.watchers.push(watch(target, () => void this.check(target)));
    }
  }

  /** Resolves with the time the last volume got `value`. */
  expect(value: string): Promise<number> {
    this.expected = value;
    this.seen.clear();
    const done = new Promise<number>((r) => (this.resolve = r));
    for (const t of this.targets) void this.check(t);
    return done;
  }

  private async check(target: string): Promise<void> {
    const expected = this.expected;
    if (!expected || this.seen.has(target)) return;
    const at = Date.now();
    const text = await readFile(join(target, this.file), "utf8").catch(() => "");
    if (text !== expected || this.expected !== expected || this.seen.has(target)) return;
    this.seen.set(target, at);
    if (this.seen.size === this.targets.length) this.resolve?.(Math.max(...this.seen.values()));
  }

  close(): void {
    for (const w of this.watchers) w.close();
  }
}

/** The first moment the Secret's key holds `value` (a watch on it). */
class SecretWatch {
  private expected = "";
  private resolve?: (at: number) => void;
  private abort?: { abort(): void };

  static async start(kc: ReturnType<typeof loadKubeConfig>, name: string, key: string): Promise<SecretWatch> {
    const w = new SecretWatch();
    w.abort = await new Watch(kc).watch(
      `/api/v1/namespaces/${NS}/secrets`,
      { fieldSelector: `metadata.name=${name}` },
      (_type: string, secret: V1Secret) => {
        const at = Date.now();
        const value = Buffer.from(secret.data?.[key] ?? "", "base64").toString();
        if (w.expected && value === w.expected) {
          w.expected = "";
          w.resolve?.(at);
        }
      },
      () => undefined,
    );
    return w;
  }

  expect(value: string): Promise<number> {
    this.expected = value;
    return new Promise((r) => (this.resolve = r));
  }

  close(): void {
    this.abort?.abort();
  }
}

function summary(label: string, values: number[]): string {
  const s = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(0)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);
  return `${label}: p50 ${s(quantile(values, 0.5))}, p99 ${s(quantile(values, 0.99))}, max ${s(Math.max(...values))}`;
}

async function main(): Promise<void> {
  requireRoot();
  const dir = await mkdtemp(join(tmpdir(), "bench-events-"));
  log("bundling the driver and the controller as the images hold them");
  const bundles = await bundlePrograms({ programs: ["driver", "controller"], outdir: join(dir, "dist"), quiet: true });
  const driverBundle = bundles.find((b) => b.program === "driver")!.file;
  const controllerBundle = bundles.find((b) => b.program === "controller")!.file;
  // The emulator's DNS hook as JavaScript: --lite-mode has no TypeScript stripping.
  const dnsHook = join(dir, "dist", "dns-hook.mjs");
  await build({ entryPoints: [DNS_HOOK], bundle: true, format: "esm", platform: "node", outfile: dnsHook, logLevel: "warning" });
  const cluster = await startCluster();
  const cleanup: (() => Promise<unknown>)[] = [() => cluster.stop(), () => rm(dir, { recursive: true, force: true })];
  try {
    const kc = loadKubeConfig(cluster.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    await core.createNamespace({ body: { metadata: { name: SYSTEM_NS } } });
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: SA } } });
    const chart = controllerChartObjects(SYSTEM_NS, {
      events: {
        webhook: { enabled: true, tlsSecretName: "t", querySecret: { secretName: "q" } },
        pull: { enabled: true, namespaceEndpoint: "https://x.eastus-1.eventgrid.azure.net", topic: "kv", subscription: "controller" },
      },
    });
    await applyYaml(kc, chart.map((o) => YAML.stringify(o)).join("---\n"));

    const jwks = JSON.parse((await rawRequest(kc, "GET", "/openid/v1/jwks", undefined, { accept: "application/jwk-set+json" })).body) as { keys: unknown[] };
    const { issuer } = (await rawRequest(kc, "GET", "/.well-known/openid-configuration")).json as { issuer: string };
    const { emulator, address } = await startTestEmulator({});
    cleanup.unshift(() => emulator.close());
    await emulator.seed({
      vaults: [
        { name: NODE_VAULT, secrets: [{ name: "db-password", value: "initial" }] },
        { name: SYNC_VAULT, secrets: [{ name: "db-password", value: "initial" }] },
      ],
      serviceAccountIssuers: [{ issuer, jwks: jwks as never }],
      applications: [
        {
          name: "workload",
          clientId: WORKLOAD_CLIENT_ID,
          federatedCredentials: [{ issuer, subject: `system:serviceaccount:${NS}:${SA}` }],
          roleAssignments: [NODE_VAULT, SYNC_VAULT].map((vault) => ({ vault, permissions: ["secrets"] })),
        },
        { name: "controller", clientId: CONTROLLER_CLIENT_ID, federatedCredentials: [{ issuer, subject: `system:serviceaccount:${SYSTEM_NS}:${CONTROLLER_SA}` }] },
      ],
    } as never);
    const eventNamespace = emulator.events.addNamespace({ name: EG_NAMESPACE, roleAssignments: [{ principal: CONTROLLER_CLIENT_ID, role: "EventGrid Data Receiver" }] });
    // As deployed: the node's provider (DaemonSet) and the controller's sidecar are two processes.
    const nodeProvider = await startProvider(emulator, address, [], { LOG_LEVEL: "info" });
    cleanup.unshift(() => nodeProvider.stop());
    const sidecar = await startProvider(emulator, address, [], { LOG_LEVEL: "info" });
    cleanup.unshift(() => sidecar.stop());

    const objects = "array:\n  - |\n    objectName: db-password\n    objectType: secret";
    for (const [name, vault] of [
      ["kv-pods", NODE_VAULT],
      ["kv-sync", SYNC_VAULT],
    ] as const) {
      await custom.createNamespacedCustomObject({
        group: "secrets-store.csi.x-k8s.io",
        version: "v1",
        namespace: NS,
        plural: "secretproviderclasses",
        body: { apiVersion: "secrets-store.csi.x-k8s.io/v1", kind: "SecretProviderClass", metadata: { name }, spec: { provider: "azure", parameters: { keyvaultName: vault, tenantID: emulator.tenantId, clientID: WORKLOAD_CLIENT_ID, objects } } },
      });
    }
    await custom.createNamespacedCustomObject({
      group: "secret-sync.x-k8s.io",
      version: "v1alpha1",
      namespace: NS,
      plural: "secretsyncs",
      body: {
        apiVersion: "secret-sync.x-k8s.io/v1alpha1",
        kind: "SecretSync",
        metadata: { name: "app" },
        spec: { secretProviderClassName: "kv-sync", serviceAccountName: SA, secretObject: { type: "Opaque", data: [{ sourcePath: "db-password", targetKey: "password" }] } },
      },
    });

    // The driver, polling once an hour: only requests refresh.
    const kubeletDir = join(dir, "kubelet");
    await mkdir(kubeletDir);
    const baseEnv = { PATH: process.env.PATH ?? "", NODE_ENV: "production", LOG_LEVEL: "warn" };
    const driver = startProgram(
      "driver",
      [
        ...imageNodeFlags("Dockerfile.driver"),
        driverBundle,
        `--endpoint=unix://${join(dir, "csi.sock")}`,
        `--nodeid=${NODE}`,
        `--kubelet-dir=${kubeletDir}`,
        `--kubeconfig=${cluster.kubeconfigPath}`,
        `--provider-volume=${resolve(nodeProvider.socket, "..")}`,
        "--additional-provider-volume-paths=",
        "--metrics-addr=",
        "--health-addr=",
        "--enable-secret-rotation=true",
        "--rotation-poll-interval=1h",
      ],
      baseEnv,
    );
    cleanup.unshift(() => driver.stop());
    await waitUntil("the driver's socket", () => existsSync(join(dir, "csi.sock")));
    const csi = csiClient(join(dir, "csi.sock"));
    cleanup.unshift(() => Promise.resolve(csi.close()));
    const targets: string[] = [];
    const podNames: string[] = [];
    log(`publishing ${PODS} pods' volumes on one node, one service account`);
    for (let i = 0; i < PODS; i++) {
      const name = `web-${i}`;
      const pod = await core.createNamespacedPod({ namespace: NS, body: { metadata: { name }, spec: { nodeName: NODE, serviceAccountName: SA, containers: [{ name: "c", image: "registry.k8s.io/pause:3.10" }] } } });
      const uid = pod.metadata!.uid!;
      const tr = await core.createNamespacedServiceAccountToken({ name: SA, namespace: NS, body: { spec: { audiences: [AUDIENCE], expirationSeconds: 3600, boundObjectRef: { kind: "Pod", apiVersion: "v1", name, uid } } } });
      const volume = join(kubeletDir, "pods", uid, "volumes", "kubernetes.io~csi", "secrets");
      await mkdir(volume, { recursive: true });
      const target = join(volume, "mount");
      await csi.call(
        "Node",
        "NodePublishVolume",
        {
          volume_id: `csi-${i}`,
          target_path: target,
          volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
          readonly: true,
          volume_context: {
            secretProviderClass: "kv-pods",
            "csi.storage.k8s.io/pod.name": name,
            "csi.storage.k8s.io/pod.namespace": NS,
            "csi.storage.k8s.io/pod.uid": uid,
            "csi.storage.k8s.io/serviceAccount.name": SA,
            "csi.storage.k8s.io/ephemeral": "true",
            "csi.storage.k8s.io/serviceAccount.tokens": JSON.stringify({ [AUDIENCE]: { token: tr.status!.token, expirationTimestamp: tr.status!.expirationTimestamp } }),
          },
        },
        120_000,
      );
      targets.push(target);
      podNames.push(name);
    }
    cleanup.unshift(async () => {
      for (const target of targets) await csi.call("Node", "NodeUnpublishVolume", { volume_id: "x", target_path: target }).catch(() => undefined);
    });

    // The controller as the chart runs it, with the webhook and the pull receiver, as its own workload identity.
    const tls = await emulator.issueServerCertificate(["127.0.0.1"]);
    await writeFile(join(dir, "tls.crt"), tls.certificatePem);
    await writeFile(join(dir, "tls.key"), tls.keyPem, { mode: 0o600 });
    await writeFile(join(dir, "query-secrets"), `${QUERY_SECRET}\n`, { mode: 0o600 });
    const controllerToken = await core.createNamespacedServiceAccountToken({ name: CONTROLLER_SA, namespace: SYSTEM_NS, body: { spec: { audiences: [AUDIENCE], expirationSeconds: 3600 } } });
    await writeFile(join(dir, "azure-identity-token"), controllerToken.status!.token!, { mode: 0o600 });
    emulator.events.addNamespaceTopic(EG_NAMESPACE, { name: "keyvault", vaults: ["nothing-yet"], subscriptions: [{ name: "controller" }] });
    const user = `system:serviceaccount:${SYSTEM_NS}:${CONTROLLER_SA}`;
    const controllerKubeconfig = await cluster.kubeconfigFor(user, ["system:serviceaccounts", `system:serviceaccounts:${SYSTEM_NS}`]);
    const controller = startProgram(
      "controller",
      [
        // The chart runs the controller with the driver image's Node flags.
        ...imageNodeFlags("Dockerfile.driver"),
        "--import",
        dnsHook,
        controllerBundle,
        `--kubeconfig=${controllerKubeconfig}`,
        `--provider-volume=${resolve(sidecar.socket, "..")}`,
        `--token-request-audience=${AUDIENCE}`,
        "--metrics-bind-address=127.0.0.1:0",
        "--health-probe-bind-address=127.0.0.1:0",
        "--rotation-poll-interval=0",
        "--event-webhook-bind-address=127.0.0.1:0",
        `--event-webhook-tls-cert-file=${join(dir, "tls.crt")}`,
        `--event-webhook-tls-key-file=${join(dir, "tls.key")}`,
        `--event-webhook-query-secrets-file=${join(dir, "query-secrets")}`,
        `--event-namespace-endpoint=${eventNamespace.endpoint}`,
        "--event-namespace-topic=keyvault",
        "--event-namespace-subscription=controller",
        `--event-namespace-client-id=${CONTROLLER_CLIENT_ID}`,
      ],
      {
        ...baseEnv,
        SYNC_CONTROLLER_POD_NAME: "bench",
        SYNC_CONTROLLER_POD_UID: randomUUID(),
        SYNC_CONTROLLER_POD_NAMESPACE: SYSTEM_NS,
        NODE_EXTRA_CA_CERTS: emulator.caCertPath,
        SSCSI_EMULATOR_ADDRESS: address,
        AZURE_CLIENT_ID: CONTROLLER_CLIENT_ID,
        AZURE_TENANT_ID: emulator.tenantId,
        AZURE_FEDERATED_TOKEN_FILE: join(dir, "azure-identity-token"),
        AZURE_AUTHORITY_HOST: "https://login.microsoftonline.com/",
        LOG_LEVEL: "info",
      },
    );
    cleanup.unshift(() => controller.stop());
    let port = 0;
    await waitUntil("the controller's webhook", () => {
      const line = controller.output().split("\n").find((l) => l.includes('"event webhook listening"'));
      if (line) port = (JSON.parse(line) as { port: number }).port;
      return port > 0;
    });

    const volumes = new VolumeWatch(targets, "db-password");
    cleanup.unshift(() => Promise.resolve(volumes.close()));
    const secret = await SecretWatch.start(kc, "app", "password");
    cleanup.unshift(() => Promise.resolve(secret.close()));
    await waitUntil("the first sync of Secret app", async () => (await core.readNamespacedSecret({ name: "app", namespace: NS }).catch(() => undefined)) !== undefined);

    const reads = () => {
      const c = emulator.counters();
      return { pods: c[`getSecret:${NODE_VAULT}`] ?? 0, sync: c[`getSecret:${SYNC_VAULT}`] ?? 0 };
    };
    /** Writes a new version into both vaults and times it to every file and to the Secret. */
    const change = async (value: string, afterWrite?: () => Promise<void>): Promise<Sample> => {
      const fileAt = volumes.expect(value);
      const secretAt = secret.expect(value);
      emulator.resetCounters();
      const started = Date.now();
      await Promise.all([emulator.setSecret(NODE_VAULT, "db-password", value), emulator.setSecret(SYNC_VAULT, "db-password", value)]);
      const triggered = Date.now();
      await afterWrite?.();
      const timeout = sleep(60_000).then(() => {
        throw new Error(`no rotation to ${value} within 60 s`);
      });
      const [file, sec] = await Promise.race([Promise.all([fileAt, secretAt]), timeout]);
      // Refreshes still under way (none expected) would show in the next sample's reads.
      await sleep(300);
      const r = reads();
      // For polling, the clock starts at the refresh request (the wait for the poll is added apart).
      const from = afterWrite ? triggered : started;
      return { file: file - from, secret: sec - from, podReads: r.pods, syncReads: r.sync };
    };
    const run = async (mode: string, count: number, afterWrite?: (i: number) => () => Promise<void>): Promise<Sample[]> => {
      const samples: Sample[] = [];
      for (let i = 0; i < count; i++) {
        samples.push(await change(`${mode}-${i}-${randomUUID().slice(0, 8)}`, afterWrite?.(i)));
        // Changes of one object a little apart: a faster stream would meet the
        // driver's bound on refreshes per refresh group (10 at once, then one every 2 s).
        await sleep(CHANGE_GAP_MS);
      }
      log(`${mode}: ${count} changes done`);
      return samples;
    };

    log(`push: ${CHANGES} changes through the webhook`);
    await emulator.events.addWebhookSubscription({ name: "push", endpointUrl: `https://127.0.0.1:${port}/?code=${QUERY_SECRET}`, vaults: [NODE_VAULT, SYNC_VAULT] });
    const push = await run("push", CHANGES);

    log(`duplicates, reordered and stale deliveries: ${REORDERS} rounds`);
    let extraReads = 0;
    for (let i = 0; i < REORDERS; i++) {
      emulator.events.hold("push");
      await Promise.all([emulator.setSecret(NODE_VAULT, "db-password", `old-${i}`), emulator.setSecret(SYNC_VAULT, "db-password", `old-${i}`)]);
      await sleep(5);
      const value = `new-${i}-${randomUUID().slice(0, 8)}`;
      const fileAt = volumes.expect(value);
      const secretAt = secret.expect(value);
      await Promise.all([emulator.setSecret(NODE_VAULT, "db-password", value), emulator.setSecret(SYNC_VAULT, "db-password", value)]);
      emulator.resetCounters();
      emulator.events.release("push", "reverse");
      await Promise.all([fileAt, secretAt]);
      await sleep(1000);
      const newest = emulator.events.published().slice(-2);
      for (const e of newest) emulator.events.redeliver(e.id, "push");
      await sleep(1000);
      const r = reads();
      // One refresh per vault is the newest version's; anything more was caused by the older, the reordered or the repeated events.
      extraReads += r.pods - 1 + (r.sync - 1);
    }
    emulator.events.removeWebhookSubscription("push");

    log(`pull: ${CHANGES} changes through the namespace topic`);
    emulator.events.addNamespaceTopic(EG_NAMESPACE, { name: "keyvault", vaults: [NODE_VAULT, SYNC_VAULT], subscriptions: [{ name: "controller" }] });
    const pull = await run("pull", CHANGES);
    emulator.events.addNamespaceTopic(EG_NAMESPACE, { name: "keyvault", vaults: ["nothing-any-more"], subscriptions: [{ name: "controller" }] });

    log(`poll: ${CHANGES} refreshes as a poll tick makes them (the wait for the tick is drawn from the ${args.poll} cycle)`);
    const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
    const poll = await run("poll", CHANGES, (i) => async () => {
      await Promise.all([
        core.patchNamespacedPod({ name: podNames[0]!, namespace: NS, body: { metadata: { annotations: { "secrets-store.csi.k8s.io/refresh-requested-at": `poll-${i}` } } } }, merge),
        custom.patchNamespacedCustomObject(
          { group: "secret-sync.x-k8s.io", version: "v1alpha1", namespace: NS, plural: "secretsyncs", name: "app", body: { spec: { forceSynchronization: `poll-${i}` } } },
          merge,
        ),
      ]);
    });
    const driverTick = Math.min(10_000, Math.max(500, POLL_MS / 4));
    const pollFile = poll.map((s) => Math.random() * POLL_MS * (1 + Math.random() * 0.1) + Math.random() * driverTick + s.file);
    const pollSecret = poll.map((s) => Math.random() * POLL_MS * (1 + Math.random() * 0.1) + s.secret);

    const perEvent = (samples: Sample[]) => `${(samples.reduce((n, s) => n + s.podReads, 0) / samples.length).toFixed(2)} for ${PODS} pods, ${(samples.reduce((n, s) => n + s.syncReads, 0) / samples.length).toFixed(2)} for the SecretSync`;
    const result = [
      `machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}; ${PODS} pods of one service account on one node, one SecretSync; ${CHANGES} changes per mode`,
      summary("push, new bytes in every pod's file", push.map((s) => s.file)),
      summary("push, new data in the synced Secret", push.map((s) => s.secret)),
      summary("pull, new bytes in every pod's file", pull.map((s) => s.file)),
      summary("pull, new data in the synced Secret", pull.map((s) => s.secret)),
      summary(`poll every ${args.poll} (modelled), every pod's file`, pollFile),
      summary(`poll every ${args.poll} (modelled), the synced Secret`, pollSecret),
      summary("poll, the refresh alone (measured), every pod's file", poll.map((s) => s.file)),
      summary("poll, the refresh alone (measured), the synced Secret", poll.map((s) => s.secret)),
      `Key Vault reads per event: push ${perEvent(push)}; pull ${perEvent(pull)}`,
      `duplicate, reordered and stale deliveries: ${REORDERS} rounds of an older version's event delivered after the newer one's and both delivered again: ${extraReads} extra Key Vault reads`,
    ];
    console.log(`\n${result.join("\n")}\n`);
  } finally {
    for (const step of cleanup) await step().catch(() => undefined);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exit(1);
});
