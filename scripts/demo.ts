// npm run demo: the whole stack on one machine, no cluster.
//
//   Key Vault emulator (HTTPS, 127.x.y.z:443)  <--  Azure provider (unix socket)  <--  driver (CSI socket)  <--  this script as "kubelet"
//
// The emulator is seeded with a secret, a key and a certificate with its chain.
// The driver runs in standalone mode (SecretProviderClasses from a folder) and
// mounts the example class on a real tmpfs; the script shows the files,
// rotates the secret in the emulator, waits for the driver to swap the new
// value in. Then the same by Key Vault event: a kube-apiserver of its own (the
// test tools'), the driver in cluster mode and the controller's Event Grid
// webhook, both polling only once an hour; and it cleans up. Needs root
// (tmpfs mounts, port 443 on loopback).
// Every address is its own: the emulator takes port 443 of a loopback address
// picked at random (127.0.0.0/8 is all loopback), and every other server
// listens on a port the kernel picks, read back from the programs' logs, so
// the demo runs beside anything else on the machine (the driver's and
// provider's default ports 8095, 9808, 8898 and 8989 included).
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { csiServices } from "../src/shared/grpc/proto.ts";

const REPO = resolve(import.meta.dirname, "..");
const VAULT = "demo-kv";
const TENANT = "00000000-0000-4000-8000-00000000c0de";
const CLIENT_ID = "11111111-1111-4111-8111-111111111111";
const CLIENT_SECRET = "demo-client-secret";

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const step = (s: string) => console.log(`\n${bold(`==> ${s}`)}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const SEED = `
tenantId: ${TENANT}
vaults:
  - name: ${VAULT}
    secrets:
      - name: db-password
        value: correct-horse-battery-staple
    keys:
      - { name: signing-key, kty: RSA, keySize: 2048 }
    certificates:
      - { name: web-tls, issuer: chain, subject: CN=web.demo.example, dnsNames: [web.demo.example] }
applications:
  - name: demo-app
    clientId: ${CLIENT_ID}
    clientSecret: ${CLIENT_SECRET}
roleAssignments:
  - { principal: demo-app, vault: ${VAULT}, role: Key Vault Secrets User }
  - { principal: demo-app, vault: ${VAULT}, role: Key Vault Crypto User }
  - { principal: demo-app, vault: ${VAULT}, role: Key Vault Certificate User }
`;

const SPC = `
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: demo-azure
  namespace: demo
spec:
  provider: azure
  parameters:
    keyvaultName: ${VAULT}
    tenantID: ${TENANT}
    objects: |
      array:
        - |
          objectName: db-password
          objectType: secret
        - |
          objectName: signing-key
          objectType: key
        - |
          objectName: web-tls
          objectType: secret
          objectAlias: tls/web.pem
        - |
          objectName: web-tls
          objectType: cert
          objectAlias: tls/web.crt
`;

const children: Array<{ name: string; child: ChildProcess; log: string[] }> = [];

function start(name: string, args: string[], env: Record<string, string> = {}): { child: ChildProcess; log: string[] } {
  const child = spawn(process.execPath, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const log: string[] = [];
  const keep = (d: Buffer) => log.push(...d.toString().split("\n").filter(Boolean));
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const entry = { name, child, log };
  children.push(entry);
  return entry;
}

/** A loopback address nobody is likely to use: 127.<random>.<random>.<random>. */
function randomLoopback(): string {
  const byte = () => 2 + Math.floor(Math.random() * 250);
  return `127.${byte()}.${byte()}.${byte()}`;
}

/** The first JSON log line with this message, once the program has written it. */
function logEntry<T>(log: string[], msg: string): T | undefined {
  for (const line of log) {
    if (!line.includes(`"msg":"${msg}"`)) continue;
    try {
      return JSON.parse(line) as T;
    } catch {
      // not a whole line yet
    }
  }
  return undefined;
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, proc?: { child: ChildProcess; log: string[] }): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (proc && proc.child.exitCode !== null) throw new Error(`${what}: the process exited (${proc.child.exitCode}):\n${proc.log.slice(-15).join("\n")}`);
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${proc ? `:\n${proc.log.slice(-15).join("\n")}` : ""}`);
    await sleep(100);
  }
}

async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(dir)).sort()) {
    if (entry.startsWith("..")) continue;
    const path = join(dir, entry);
    const st = await lstat(path);
    const real = st.isSymbolicLink() ? await lstat(join(dir, "..data", entry)) : st;
    if (real.isDirectory()) out.push(...(await listFiles(path, `${prefix}${entry}/`)));
    else out.push(`${prefix}${entry}`);
  }
  return out;
}

async function show(target: string): Promise<void> {
  for (const file of await listFiles(target)) {
    const content = await readFile(join(target, file), "utf8");
    const st = await lstat(join(target, "..data", file));
    const first = content.split("\n")[0]!;
    const pemBlocks = (content.match(/-----BEGIN [A-Z ]+-----/g) ?? []).map((b) => b.slice(11, -5));
    const summary = pemBlocks.length > 0 ? `PEM: ${pemBlocks.join(", ")}` : JSON.stringify(first);
    console.log(`  ${file.padEnd(16)} ${(st.mode & 0o777).toString(8).padStart(4, "0")}  ${String(st.size).padStart(5)} bytes  ${summary}`);
  }
}

async function stop(proc: { child: ChildProcess }): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exited = new Promise((r) => proc.child.once("exit", r));
  proc.child.kill("SIGTERM");
  await exited;
}

async function emulatorAdmin<T>(imds: string, path: string, body: unknown): Promise<T> {
  const response = await fetch(`${imds}/_emulator/${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`emulator ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/**
 * Part two: rotation by Key Vault event. A kube-apiserver of our own (the
 * test harness's, from the tools cache), the driver in cluster mode polling
 * only once an hour, and the SecretSync controller with its Event Grid
 * webhook; the emulator delivers the vault's events to it. A new version
 * reaches the mounted file within a second, long before any poll.
 */
async function eventDrivenRotation(env: { base: string; address: string; ca: string; imds: string; addCleanup: (f: () => Promise<unknown>) => void }): Promise<void> {
  const { base, address, ca, imds } = env;
  step("Event-driven rotation: starting a kube-apiserver and etcd of our own (from the test tools; no kubelet)");
  const { startCluster } = await import("../test/harness/cluster.ts");
  const { CoreV1Api, CustomObjectsApi, KubeConfig } = await import("@kubernetes/client-node");
  const cluster = await startCluster();
  env.addCleanup(() => cluster.stop());
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: "demo" } } });
  // No kube-controller-manager here: the namespace's default service account is made by hand.
  await core.createNamespacedServiceAccount({ namespace: "demo", body: { metadata: { name: "default" } } });
  const pod = await core.createNamespacedPod({
    namespace: "demo",
    body: { metadata: { name: "demo-pod" }, spec: { nodeName: "demo-node", containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] } },
  });
  const spc = (await import("yaml")).parse(SPC) as { metadata: { name: string } };
  await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({ group: "secrets-store.csi.x-k8s.io", version: "v1", namespace: "demo", plural: "secretproviderclasses", body: spc });
  console.log(`  ${cluster.server}: namespace demo, SecretProviderClass demo-azure, pod demo-pod on node demo-node`);

  step("Starting the driver (cluster mode, rotation polling every 1h) and the controller (its Event Grid webhook, polling every 1h)");
  const csiSocket = join(base, "csi-cluster.sock");
  const driver = start("driver (cluster)", [
    "src/driver/main.ts",
    `--endpoint=unix://${csiSocket}`,
    "--nodeid=demo-node",
    `--kubelet-dir=${base}`,
    `--kubeconfig=${cluster.kubeconfigPath}`,
    `--provider-volume=${join(base, "providers")}`,
    "--additional-provider-volume-paths=",
    "--enable-secret-rotation=true",
    "--rotation-poll-interval=1h",
    `--metrics-addr=${address}:0`,
    `--health-addr=${address}:0`,
  ]);
  env.addCleanup(() => stop(driver));
  await waitFor("the driver", () => existsSync(csiSocket), 30_000, driver);
  const tls = await emulatorAdmin<{ keyPem: string; certificatePem: string }>(imds, "server-certificate", { names: [address] });
  await writeFile(join(base, "webhook.crt"), tls.certificatePem);
  await writeFile(join(base, "webhook.key"), tls.keyPem, { mode: 0o600 });
  const querySecret = randomBytes(24).toString("hex");
  await writeFile(join(base, "webhook-secret"), `${querySecret}\n`, { mode: 0o600 });
  const controller = start(
    "controller",
    [
      "--import",
      "./src/emulator/dns-hook.ts",
      "src/controller/main.ts",
      `--kubeconfig=${cluster.kubeconfigPath}`,
      `--provider-volume=${join(base, "providers")}`,
      "--rotation-poll-interval=1h",
      `--metrics-bind-address=${address}:0`,
      `--health-probe-bind-address=${address}:0`,
      `--event-webhook-bind-address=${address}:0`,
      `--event-webhook-tls-cert-file=${join(base, "webhook.crt")}`,
      `--event-webhook-tls-key-file=${join(base, "webhook.key")}`,
      `--event-webhook-query-secrets-file=${join(base, "webhook-secret")}`,
    ],
    { NODE_EXTRA_CA_CERTS: ca, SSCSI_EMULATOR_ADDRESS: address, SYNC_CONTROLLER_POD_NAME: "demo-controller", SYNC_CONTROLLER_POD_UID: randomUUID(), SYNC_CONTROLLER_POD_NAMESPACE: "demo" },
  );
  env.addCleanup(() => stop(controller));
  let webhook: { port: number } | undefined;
  await waitFor("the controller's webhook", () => (webhook = logEntry(controller.log, "event webhook listening")) !== undefined, 60_000, controller);
  const subscription = await emulatorAdmin<Array<{ provisioningState: string }>>(imds, "events/webhook-subscriptions", {
    name: "demo",
    endpointUrl: `https://${address}:${webhook!.port}/keyvault-events?code=${querySecret}`,
    vaults: [VAULT],
  });
  console.log(`  Event Grid subscription "demo" -> https://${address}:${webhook!.port}/keyvault-events: ${subscription[0]?.provisioningState} (handshake answered, query secret checked)`);

  step("NodePublishVolume for demo-pod through the cluster-mode driver");
  const { Node } = csiServices();
  const csi = new Node(`unix:${csiSocket}`, grpc.credentials.createInsecure());
  env.addCleanup(async () => csi.close());
  const uid = pod.metadata!.uid!;
  const target = join(base, "pods", uid, "volumes", "kubernetes.io~csi", "secrets-store-inline", "mount");
  await mkdir(join(target, ".."), { recursive: true });
  const call = (method: string, request: object) =>
    new Promise<void>((ok, fail) =>
      (csi as unknown as Record<string, (r: object, o: grpc.CallOptions, cb: (e: Error | null) => void) => void>)[method]!(request, { deadline: new Date(Date.now() + 60_000) }, (e) => (e ? fail(e) : ok())),
    );
  await call("NodePublishVolume", {
    volume_id: "csi-demo-events",
    target_path: target,
    volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
    readonly: true,
    secrets: { clientid: CLIENT_ID, clientsecret: CLIENT_SECRET },
    volume_context: {
      secretProviderClass: "demo-azure",
      "csi.storage.k8s.io/pod.name": "demo-pod",
      "csi.storage.k8s.io/pod.namespace": "demo",
      "csi.storage.k8s.io/pod.uid": uid,
      "csi.storage.k8s.io/serviceAccount.name": "default",
      "csi.storage.k8s.io/ephemeral": "true",
    },
  });
  env.addCleanup(() => call("NodeUnpublishVolume", { volume_id: "csi-demo-events", target_path: target }));
  const before = await readFile(join(target, "db-password"), "utf8");
  console.log(`  db-password: ${JSON.stringify(before)}`);

  step("Writing a new version of db-password: Key Vault's event goes to the controller, the controller asks the node's driver");
  const rotated = `event-rotated-at-${new Date().toISOString()}`;
  const written = Date.now();
  const response = await fetch(`${imds}/_emulator/seed`, {
    method: "POST",
    headers: { "content-type": "application/yaml" },
    body: `vaults:\n  - name: ${VAULT}\n    secrets:\n      - { name: db-password, value: "${rotated}" }\n`,
  });
  if (!response.ok) throw new Error(`seeding a new version failed: ${response.status} ${await response.text()}`);
  await waitFor("the rotated file", async () => (await readFile(join(target, "db-password"), "utf8")) === rotated, 30_000, driver);
  console.log(`  db-password: ${JSON.stringify(before)} -> ${JSON.stringify(rotated)} after ${Date.now() - written} ms (the driver polls once an hour)`);
  const handled = logEntry<{ type: string; outcome: string }>(controller.log, "key vault event");
  if (handled?.outcome === "unused") {
    // The event came before the controller's watch had seen the pod's volume
    // (a loaded machine): it looks again 2 s later, and that is what refreshed it.
    await waitFor("the controller's second look", () => logEntry(controller.log, "key vault event looked at again") !== undefined, 15_000, controller);
    const again = logEntry<{ outcome: string }>(controller.log, "key vault event looked at again")!;
    console.log(`  controller: ${handled.type} -> ${again.outcome} (looked at again: its watch had not seen the pod's volume when the event came)`);
  } else if (handled) console.log(`  controller: ${handled.type} -> ${handled.outcome}`);
  const statusObject = (await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group: "secrets-store.csi.x-k8s.io", version: "v1", namespace: "demo", plural: "secretproviderclasspodstatuses" })) as {
    items: Array<{ metadata: { name: string; annotations?: Record<string, string> } }>;
  };
  for (const item of statusObject.items) {
    const a = item.metadata.annotations ?? {};
    console.log(`  secretproviderclasspodstatus ${item.metadata.name}: refresh-requested-at=${a["secrets-store.csi.k8s.io/refresh-requested-at"]} refresh-version=${a["secrets-store.csi.k8s.io/refresh-version"]}`);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error("demo: run as root (sudo npm run demo): the driver mounts a tmpfs and the emulator listens on port 443 of a loopback address.");
    process.exit(1);
  }
  const base = await mkdtemp(join(tmpdir(), "sscsi-demo-"));
  const cleanup = async () => {
    for (const { child } of children.reverse()) if (child.exitCode === null) child.kill("SIGTERM");
    await sleep(300);
    await rm(base, { recursive: true, force: true }).catch(() => undefined);
  };
  process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));

  let csi: grpc.Client | undefined;
  let target = "";
  const extraCleanup: Array<() => Promise<unknown>> = [];
  try {
    await writeFile(join(base, "seed.yaml"), SEED);
    // Port 443 of a loopback address of our own; another one if it is taken.
    let address = "";
    let emulatorLog: { imdsEndpoint: string } | undefined;
    for (let attempt = 1; !emulatorLog; attempt++) {
      address = randomLoopback();
      if (attempt === 1) step(`Starting the Key Vault emulator (HTTPS with its own CA) on ${address}:443`);
      const emulator = start("emulator", [
        "src/emulator/main.ts",
        `--listen=${address}:443`,
        `--imds-listen=${address}:0`,
        `--seed=${join(base, "seed.yaml")}`,
        `--data-dir=${join(base, "kv")}`,
      ]);
      try {
        await waitFor("the emulator", () => (emulatorLog = logEntry(emulator.log, "keyvault emulator ready")) !== undefined, 30_000, emulator);
      } catch (err) {
        if (attempt >= 5 || !emulator.log.some((l) => l.includes("EADDRINUSE"))) throw err;
        console.log(`  ${address}:443 is taken, trying another address`);
      }
    }
    const ca = join(base, "kv", "ca.pem");
    console.log(`  vault https://${VAULT}.vault.azure.net/ seeded with: secret db-password, key signing-key, certificate web-tls (root -> intermediate -> leaf)`);

    step("Starting the Azure provider on a unix socket (the real Azure SDK, trusting the emulator's CA)");
    await mkdir(join(base, "providers"));
    const provider = start(
      "provider",
      [
        "--import",
        "./src/emulator/dns-hook.ts",
        "src/provider/main.ts",
        `--endpoint=unix://${join(base, "providers", "azure.sock")}`,
        `--healthz-addr=${address}:0`,
        `--metrics-addr=${address}:0`,
      ],
      { NODE_EXTRA_CA_CERTS: ca, SSCSI_EMULATOR_ADDRESS: address },
    );
    await waitFor("the provider", () => logEntry(provider.log, "provider started") !== undefined, 30_000, provider);

    step("Starting the CSI driver (standalone: SecretProviderClasses from a folder, rotation every 3s)");
    await mkdir(join(base, "spc"));
    await writeFile(join(base, "spc", "demo.yaml"), SPC);
    const csiSocket = join(base, "csi.sock");
    const driver = start("driver", [
      "src/driver/main.ts",
      `--endpoint=unix://${csiSocket}`,
      "--nodeid=demo-node",
      `--kubelet-dir=${base}`,
      `--secret-provider-class-dir=${join(base, "spc")}`,
      `--provider-volume=${join(base, "providers")}`,
      "--additional-provider-volume-paths=",
      "--enable-secret-rotation=true",
      "--rotation-poll-interval=3s",
      `--metrics-addr=${address}:0`,
      `--health-addr=${address}:0`,
    ]);
    let driverPorts: { metricsPort: number } | undefined;
    await waitFor("the driver", () => existsSync(csiSocket) && (driverPorts = logEntry(driver.log, "HTTP servers listening")) !== undefined, 30_000, driver);
    console.log(SPC.trim().split("\n").map((l) => `  | ${l}`).join("\n"));

    step("NodePublishVolume through the driver's CSI socket, as kubelet does for a pod");
    const { Node } = csiServices();
    csi = new Node(`unix:${csiSocket}`, grpc.credentials.createInsecure());
    target = join(base, "pods", "demo-pod-uid", "volumes", "kubernetes.io~csi", "secrets-store-inline", "mount");
    await mkdir(join(target, ".."), { recursive: true });
    const call = (method: string, request: object) =>
      new Promise<void>((ok, fail) =>
        (csi as unknown as Record<string, (r: object, o: grpc.CallOptions, cb: (e: Error | null) => void) => void>)[method]!(request, { deadline: new Date(Date.now() + 60_000) }, (e) => (e ? fail(e) : ok())),
      );
    const started = Date.now();
    await call("NodePublishVolume", {
      volume_id: "csi-demo",
      target_path: target,
      volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
      readonly: true,
      // What kubelet passes from the pod's nodePublishSecretRef.
      secrets: { clientid: CLIENT_ID, clientsecret: CLIENT_SECRET },
      volume_context: {
        secretProviderClass: "demo-azure",
        "csi.storage.k8s.io/pod.name": "demo-pod",
        "csi.storage.k8s.io/pod.namespace": "demo",
        "csi.storage.k8s.io/pod.uid": "demo-pod-uid",
        "csi.storage.k8s.io/serviceAccount.name": "default",
        "csi.storage.k8s.io/ephemeral": "true",
      },
    });
    console.log(`  mounted in ${Date.now() - started} ms at ${target} (tmpfs)`);
    await show(target);

    step("Rotating db-password in the emulator (a new version)");
    const before = await readFile(join(target, "db-password"), "utf8");
    const rotated = `rotated-at-${new Date().toISOString()}`;
    const response = await fetch(`${emulatorLog.imdsEndpoint}/_emulator/seed`, {
      method: "POST",
      headers: { "content-type": "application/yaml" },
      body: `vaults:\n  - name: ${VAULT}\n    secrets:\n      - { name: db-password, value: "${rotated}" }\n`,
    });
    if (!response.ok) throw new Error(`seeding a new version failed: ${response.status} ${await response.text()}`);
    const rotationStarted = Date.now();
    await waitFor("the rotated file", async () => (await readFile(join(target, "db-password"), "utf8")) === rotated, 30_000, driver);
    console.log(`  db-password: ${JSON.stringify(before)} -> ${JSON.stringify(rotated)} after ${((Date.now() - rotationStarted) / 1000).toFixed(1)} s, swapped atomically`);

    const metrics = await (await fetch(`http://${address}:${driverPorts!.metricsPort}/metrics`)).text();
    const counts = metrics.split("\n").filter((l) => /^(node_publish_total|rotation_reconcile_total)\{/.test(l));
    console.log(`  driver metrics:\n${counts.map((l) => `    ${l}`).join("\n")}`);

    step("NodeUnpublishVolume");
    await call("NodeUnpublishVolume", { volume_id: "csi-demo", target_path: target });
    console.log(`  ${target} unmounted and removed: ${!existsSync(target)}`);
    await stop(driver);

    await eventDrivenRotation({ base, address, ca, imds: emulatorLog.imdsEndpoint, addCleanup: (f) => extraCleanup.push(f) });
  } finally {
    csi?.close();
    for (const f of extraCleanup.reverse()) await f().catch(() => undefined);
    await cleanup();
  }
  console.log(`\n${bold("demo complete")}`);
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
