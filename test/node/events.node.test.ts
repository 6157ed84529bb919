// Event-driven rotation on a real node: kubelet and containerd run the pods,
// our driver (registered with kubelet) mounts their volumes and polls only
// once an hour, the SecretSync controller (as the chart's service account,
// polling once an hour too) receives the emulator's Key Vault events on its
// webhook. A new version reaches a running container's file, and an env-var
// consumer is restarted (its Deployment rolled) and sees it, both long
// before any poll could have brought it.
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { AppsV1Api, StorageV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { applyYaml, waitFor } from "../harness/kube.ts";
import { freePort } from "../harness/processes.ts";
import { BUSYBOX_IMAGE } from "../harness/node.ts";
import { startDriverProcess, type DriverProcess } from "../support/driver-process.ts";
import { controllerChartObjects } from "../controller/stack.ts";
import { DRIVER_NAME, EMULATOR_ADDRESS, SPC_GROUP, VAULT, WI_CLIENT_ID, WI_SERVICE_ACCOUNT, secretProviderClass, secretsPod, startNodeStack, waitForRunning, type NodeStack } from "./node-stack.ts";

const REPO = resolve(import.meta.dirname, "../..");
const NS = "node-events";
const SYSTEM_NS = "node-events-system";
const CONTROLLER_SA = "secrets-store-sync-controller-manager";
const QUERY_SECRET = "node-events-query-secret-0123456789";
/**
 * Far below the poll interval (1 h): only an event can bring the new version
 * this soon. The latency itself is measured by npm run bench:events, not here.
 */
const EVENT_BOUND_MS = 60_000;

describe("event-driven rotation on a real node, with rotation polling set to 1 h", () => {
  let stack: NodeStack;
  let provider: ChildProcess;
  let providerLog = "";
  let controller: ChildProcess;
  let controllerLog = "";
  let driver: DriverProcess;
  let apps: AppsV1Api;

  const exec = (pod: string, ...command: string[]) => stack.kubectl(["exec", pod, "--", ...command]);

  beforeAll(async () => {
    stack = await startNodeStack(NS);
    await stack.cluster.startScheduler();
    apps = stack.kc.makeApiClient(AppsV1Api);
    await applyYaml(stack.kc, await readFile(join(REPO, "deploy", "csidriver.yaml"), "utf8"));
    await stack.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: WI_SERVICE_ACCOUNT } } });
    await stack.core.createNamespace({ body: { metadata: { name: SYSTEM_NS } } });
    // The controller's RBAC exactly as the chart renders it with events and restart on rotation.
    const chart = controllerChartObjects(SYSTEM_NS, {
      events: { webhook: { enabled: true, tlsSecretName: "events-tls", querySecret: { secretName: "events-query" } } },
      restartOnRotation: { enabled: true },
    });
    await applyYaml(stack.kc, chart.map((o) => YAML.stringify(o)).join("---\n"));

    const providerDir = join(stack.base, "providers");
    await mkdir(providerDir);
    provider = spawn(
      process.execPath,
      [
        "--import",
        resolve(REPO, "src/emulator/dns-hook.ts"),
        resolve(REPO, "src/provider/main.ts"),
        `--endpoint=unix://${join(providerDir, "azure.sock")}`,
        `--healthz-port=${await freePort()}`,
        `--prometheus-port=${await freePort()}`,
      ],
      { env: { ...process.env, NODE_EXTRA_CA_CERTS: stack.emulator.caCertPath, SSCSI_EMULATOR_ADDRESS: EMULATOR_ADDRESS }, stdio: ["ignore", "pipe", "pipe"] },
    );
    provider.stdout!.on("data", (d: Buffer) => (providerLog += d.toString()));
    provider.stderr!.on("data", (d: Buffer) => (providerLog += d.toString()));
    await waitFor(() => existsSync(join(providerDir, "azure.sock")) || provider.exitCode !== null, { description: "the provider socket" });
    expect(provider.exitCode, providerLog).toBeNull();

    driver = await startDriverProcess(join(stack.node.kubeletDir, "plugins", "csi-secrets-store", "csi.sock"), [
      `--nodeid=${stack.node.name}`,
      `--kubeconfig=${stack.cluster.kubeconfigPath}`,
      `--kubelet-dir=${stack.node.kubeletDir}`,
      "--register-with-kubelet",
      `--provider-volume=${providerDir}`,
      "--additional-provider-volume-paths=",
      "--metrics-addr=",
      "--health-addr=",
      "--enable-secret-rotation=true",
      "--rotation-poll-interval=1h",
    ]);
    const storage = stack.kc.makeApiClient(StorageV1Api);
    await waitFor(async () => (await storage.readCSINode({ name: stack.node.name })).spec.drivers.some((d) => d.name === DRIVER_NAME), {
      description: "kubelet to register the driver",
      timeoutMs: 60_000,
    });

    // The controller: its webhook's certificate from the emulator's CA, a query secret, rotation polling once an hour.
    const tls = await stack.emulator.issueServerCertificate(["127.0.0.1"]);
    await writeFile(join(stack.base, "tls.crt"), tls.certificatePem);
    await writeFile(join(stack.base, "tls.key"), tls.keyPem, { mode: 0o600 });
    await writeFile(join(stack.base, "query-secrets"), `${QUERY_SECRET}\n`, { mode: 0o600 });
    const user = `system:serviceaccount:${SYSTEM_NS}:${CONTROLLER_SA}`;
    const kubeconfig = await stack.cluster.kubeconfigFor(user, ["system:serviceaccounts", `system:serviceaccounts:${SYSTEM_NS}`]);
    controller = spawn(
      process.execPath,
      [
        "--import",
        resolve(REPO, "src/emulator/dns-hook.ts"),
        resolve(REPO, "src/controller/main.ts"),
        `--kubeconfig=${kubeconfig}`,
        `--provider-volume=${providerDir}`,
        "--token-request-audience=api://AzureADTokenExchange",
        "--metrics-bind-address=127.0.0.1:0",
        "--health-probe-bind-address=127.0.0.1:0",
        "--rotation-poll-interval=1h",
        "--event-webhook-bind-address=127.0.0.1:0",
        `--event-webhook-tls-cert-file=${join(stack.base, "tls.crt")}`,
        `--event-webhook-tls-key-file=${join(stack.base, "tls.key")}`,
        `--event-webhook-query-secrets-file=${join(stack.base, "query-secrets")}`,
        "--restart-on-rotation",
        "--restart-min-interval=0s",
      ],
      {
        env: {
          ...process.env,
          NODE_EXTRA_CA_CERTS: stack.emulator.caCertPath,
          SSCSI_EMULATOR_ADDRESS: EMULATOR_ADDRESS,
          SYNC_CONTROLLER_POD_NAME: "controller",
          SYNC_CONTROLLER_POD_UID: randomUUID(),
          SYNC_CONTROLLER_POD_NAMESPACE: SYSTEM_NS,
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    controller.stdout!.on("data", (d: Buffer) => (controllerLog += d.toString()));
    controller.stderr!.on("data", (d: Buffer) => (controllerLog += d.toString()));
    const port = await waitFor(
      () => {
        if (controller.exitCode !== null) throw new Error(`the controller exited:\n${controllerLog}`);
        const line = controllerLog.split("\n").find((l) => l.includes('"event webhook listening"'));
        return line ? (JSON.parse(line) as { port: number }).port : undefined;
      },
      { description: "the controller's webhook", timeoutMs: 60_000 },
    );
    const subscription = await stack.emulator.events.addWebhookSubscription({ name: "controller", endpointUrl: `https://127.0.0.1:${port}/?code=${QUERY_SECRET}`, vaults: [VAULT] });
    expect(subscription.provisioningState).toBe("Succeeded");
  }, 300_000);

  afterAll(async () => {
    await apps?.deleteNamespacedDeployment({ name: "env-app", namespace: NS }).catch(() => undefined);
    await stack?.deletePods().catch(() => undefined);
    controller?.kill("SIGTERM");
    await driver?.stop();
    provider?.kill("SIGTERM");
    await stack?.stop();
  });

  it("a running pod's file and an env consumer see a new version long before any poll", async () => {
    await stack.custom.createNamespacedCustomObject({
      group: SPC_GROUP,
      version: "v1",
      namespace: NS,
      plural: "secretproviderclasses",
      body: secretProviderClass(stack.emulator, "kv-wi", ["db-password"], { clientID: WI_CLIENT_ID }),
    });
    await stack.custom.createNamespacedCustomObject({
      group: "secret-sync.x-k8s.io",
      version: "v1alpha1",
      namespace: NS,
      plural: "secretsyncs",
      body: {
        apiVersion: "secret-sync.x-k8s.io/v1alpha1",
        kind: "SecretSync",
        metadata: { name: "app-secrets" },
        spec: { secretProviderClassName: "kv-wi", serviceAccountName: WI_SERVICE_ACCOUNT, secretObject: { type: "Opaque", data: [{ sourcePath: "db-password", targetKey: "password" }] } },
      },
    });
    await stack.core.createNamespacedPod({ namespace: NS, body: secretsPod("files", "kv-wi", { nodeName: stack.node.name, serviceAccountName: WI_SERVICE_ACCOUNT }) });
    await waitFor(() => stack.core.readNamespacedSecret({ name: "app-secrets", namespace: NS }), { description: "Secret app-secrets", timeoutMs: 60_000 });
    // An env consumer that has Reloader's annotation, not Reloader.
    await apps.createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: { name: "env-app", annotations: { "secret.reloader.stakater.com/reload": "app-secrets" } },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: "env-app" } },
          template: {
            metadata: { labels: { app: "env-app" } },
            spec: {
              terminationGracePeriodSeconds: 2,
              containers: [
                {
                  name: "app",
                  image: BUSYBOX_IMAGE,
                  imagePullPolicy: "Never",
                  command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"],
                  env: [{ name: "DB_PASSWORD", valueFrom: { secretKeyRef: { name: "app-secrets", key: "password" } } }],
                },
              ],
            },
          },
        },
      },
    });
    await waitForRunning(stack.core, NS, "files");
    const runningEnvPod = async (value: string) => {
      const pods = await stack.core.listNamespacedPod({ namespace: NS, labelSelector: "app=env-app" });
      for (const p of pods.items) {
        if (p.metadata?.deletionTimestamp || p.status?.phase !== "Running" || !(p.status.containerStatuses ?? []).every((c) => c.ready)) continue;
        if ((await exec(p.metadata!.name!, "sh", "-c", 'echo "$DB_PASSWORD"')) === `${value}\n`) return p.metadata!.name!;
      }
      return undefined;
    };
    const first = await waitFor(() => runningEnvPod("hunter2"), { description: "the env consumer to run", timeoutMs: 180_000, intervalMs: 1000 });
    expect(await exec("files", "cat", "/mnt/secrets-store/db-password")).toBe("hunter2");

    const written = Date.now();
    await stack.emulator.setSecret(VAULT, "db-password", "rotated-by-event");
    await waitFor(async () => (await exec("files", "cat", "/mnt/secrets-store/db-password")) === "rotated-by-event", {
      description: "the new version in the running container's file",
      timeoutMs: EVENT_BOUND_MS,
      intervalMs: 250,
    });
    const fileMs = Date.now() - written;
    const files = await stack.core.readNamespacedPod({ name: "files", namespace: NS });
    expect(files.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    const second = await waitFor(() => runningEnvPod("rotated-by-event"), { description: "a restarted env consumer with the new value", timeoutMs: 180_000, intervalMs: 500 });
    const envMs = Date.now() - written;
    console.log(`[node] new version in the running container's file after ${(fileMs / 1000).toFixed(1)} s; in a restarted env consumer after ${(envMs / 1000).toFixed(1)} s (rotation polling: 1 h)`);
    expect(second).not.toBe(first);
    // One rollout: the Deployment's template changed once.
    const deployment = await apps.readNamespacedDeployment({ name: "env-app", namespace: NS });
    expect(deployment.metadata!.generation).toBe(2);
    const rolled = await stack.core.listNamespacedEvent({ namespace: NS, fieldSelector: "involvedObject.name=env-app,reason=RestartedForRotation" });
    expect(rolled.items).toHaveLength(1);
  }, 420_000);
});
