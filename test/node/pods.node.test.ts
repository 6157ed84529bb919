// Scenarios 1-6, 8 and 9 of the node tier (7 is chart.node.test.ts): a real
// kubelet mounts secrets-store volumes into real pods through our driver
// (registered with kubelet by itself), the Azure provider program (the
// unmodified Azure SDK) and the Key Vault emulator (also playing AKS identity
// binding's API server and token proxy). Each check is one a user makes with
// kubectl: pod phase, events, `kubectl exec ... cat`.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { StorageV1Api, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyYaml, apiErrorCode, waitFor } from "../harness/kube.ts";
import { mountsUnder } from "../harness/host-state.ts";
import { startDriverProcess, type DriverProcess } from "../support/driver-process.ts";
import {
  DRIVER_NAME,
  EMULATOR_ADDRESS,
  IB_CLIENT_ID,
  IB_SERVICE_ACCOUNT,
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

const REPO = resolve(import.meta.dirname, "../..");
const NS = "node-e2e";
const ROTATION_INTERVAL = "2s";

describe("kubelet mounts secrets-store volumes into real pods", () => {
  let stack: NodeStack;
  let provider: ChildProcess;
  let providerLog = "";
  let driver: DriverProcess;
  let csiSocket: string;
  let providerDir: string;
  const started = Date.now();

  const exec = (pod: string, ...command: string[]) => stack.kubectl(["exec", pod, "--", ...command]);
  const createPod = async (pod: V1Pod) => stack.core.createNamespacedPod({ namespace: NS, body: pod });
  const createClass = async (body: Record<string, unknown>) =>
    stack.custom.createNamespacedCustomObject({ group: SPC_GROUP, version: "v1", namespace: NS, plural: "secretproviderclasses", body });

  async function startDriver(): Promise<DriverProcess> {
    return startDriverProcess(csiSocket, [
      `--nodeid=${stack.node.name}`,
      `--kubeconfig=${stack.cluster.kubeconfigPath}`,
      `--kubelet-dir=${stack.node.kubeletDir}`,
      "--register-with-kubelet",
      `--provider-volume=${providerDir}`,
      "--additional-provider-volume-paths=",
      "--metrics-addr=",
      "--health-addr=",
      "--enable-secret-rotation=true",
      `--rotation-poll-interval=${ROTATION_INTERVAL}`,
      "--enable-secret-sync=true",
    ]);
  }

  /** The CSINode lists our driver with the node's id once kubelet accepted the registration. */
  async function waitForRegistration(): Promise<void> {
    const storage = stack.kc.makeApiClient(StorageV1Api);
    await waitFor(
      async () => (await storage.readCSINode({ name: stack.node.name })).spec.drivers.some((d) => d.name === DRIVER_NAME && d.nodeID === stack.node.name),
      { description: `kubelet to register ${DRIVER_NAME} in CSINode ${stack.node.name}`, timeoutMs: 60_000 },
    );
    // kubelet reported the outcome back over the registration socket.
    await waitFor(() => driver.output().includes('"msg":"registered with kubelet"'), { description: "the driver to log kubelet's acceptance" });
  }

  beforeAll(async () => {
    stack = await startNodeStack(NS);
    console.log(`[node] cluster and node Ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    // The CSIDriver object exactly as deploy/ ships it: inline volumes, pod info, tokenRequests, republish.
    await applyYaml(stack.kc, await readFile(join(REPO, "deploy", "csidriver.yaml"), "utf8"));
    await stack.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: WI_SERVICE_ACCOUNT } } });
    await stack.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: IB_SERVICE_ACCOUNT } } });
    await stack.core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: "kv-creds" }, stringData: { clientid: SP_CLIENT_ID, clientsecret: SP_SECRET } } });

    providerDir = join(stack.base, "providers");
    await mkdir(providerDir);
    provider = spawn(
      process.execPath,
      [
        "--import",
        resolve(REPO, "src/emulator/dns-hook.ts"),
        resolve(REPO, "src/provider/main.ts"),
        `--endpoint=unix://${join(providerDir, "azure.sock")}`,
        // kernel-picked ports on loopback: nothing here reads them, and none is taken from anyone
        "--healthz-addr=127.0.0.1:0",
        "--metrics-addr=127.0.0.1:0",
        // identity binding: the cluster CA; the token proxy and the API server are the emulator's (DNS hook)
        `--token-proxy-ca-file=${stack.emulator.caCertPath}`,
      ],
      {
        env: { ...process.env, NODE_EXTRA_CA_CERTS: stack.emulator.caCertPath, SSCSI_EMULATOR_ADDRESS: EMULATOR_ADDRESS, KUBERNETES_SERVICE_PORT: "443" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    provider.stdout!.on("data", (d: Buffer) => (providerLog += d.toString()));
    provider.stderr!.on("data", (d: Buffer) => (providerLog += d.toString()));
    await waitFor(() => existsSync(join(providerDir, "azure.sock")) || provider.exitCode !== null, { description: "the provider socket" });
    expect(provider.exitCode, providerLog).toBeNull();

    // The CSI socket at the path the chart uses, below kubelet's root directory.
    csiSocket = join(stack.node.kubeletDir, "plugins", "csi-secrets-store", "csi.sock");
    driver = await startDriver();
    await waitForRegistration();
  });

  afterAll(async () => {
    // Pods go while the driver still runs, so kubelet can unpublish their volumes.
    await stack?.deletePods().catch(() => undefined);
    await driver?.stop();
    provider?.kill("SIGTERM");
    await stack?.stop();
  });

  it("1. starts a pod whose container reads the Key Vault values, and records its SecretProviderClassPodStatus", async () => {
    await createClass(secretProviderClass(stack.emulator, "kv-sp", ["db-password", "api-key"]));
    await createPod(secretsPod("reader", "kv-sp", { nodeName: stack.node.name, credentialsSecret: "kv-creds" }));
    const pod = await waitForRunning(stack.core, NS, "reader");
    expect(await exec("reader", "cat", "/mnt/secrets-store/db-password")).toBe("hunter2");
    expect(await exec("reader", "cat", "/mnt/secrets-store/api-key")).toBe("key-one");
    expect((await exec("reader", "ls", "/mnt/secrets-store")).split("\n").filter(Boolean).sort()).toEqual(["api-key", "db-password"]);

    type Statuses = {
      items: { metadata: { ownerReferences: { uid: string }[] }; status: { podName: string; secretProviderClassName: string; mounted: boolean; targetPath: string; objects: { id: string }[] } }[];
    };
    // Written just after the publish has answered.
    const status = await waitFor(
      async () => (JSON.parse(await stack.kubectl(["get", "secretproviderclasspodstatuses", "-o", "json"])) as Statuses).items.find((s) => s.status.podName === "reader"),
      { description: "the status object of reader" },
    );
    expect(status?.status).toMatchObject({ secretProviderClassName: "kv-sp", mounted: true });
    expect(status?.status.targetPath).toBe(join(stack.node.kubeletDir, "pods", pod.metadata!.uid!, "volumes", "kubernetes.io~csi", "secrets-store", "mount"));
    expect(status?.status.objects.map((o) => o.id).sort()).toEqual(["secret/api-key", "secret/db-password"]);
    expect(status?.metadata.ownerReferences[0]?.uid).toBe(pod.metadata!.uid);
  });

  it("2. workload identity: kubelet passes the pod's service-account token (CSIDriver tokenRequests) and the emulator exchanges it", async () => {
    await createClass(secretProviderClass(stack.emulator, "kv-wi", ["db-password"], { clientID: WI_CLIENT_ID }));
    const exchangesBefore = stack.emulator.counters()[`token:${WI_CLIENT_ID}`] ?? 0;
    await createPod(secretsPod("workload", "kv-wi", { nodeName: stack.node.name, serviceAccountName: WI_SERVICE_ACCOUNT }));
    await waitForRunning(stack.core, NS, "workload");
    expect(await exec("workload", "cat", "/mnt/secrets-store/db-password")).toBe("hunter2");
    // The only credential this pod has is its token: no nodePublishSecretRef, no client secret.
    expect(stack.emulator.counters()[`token:${WI_CLIENT_ID}`] ?? 0).toBeGreaterThan(exchangesBefore);
  });

  it("3. rotation: the running container sees the new value, the synced Secret follows, an env consumer sees it after a restart", async () => {
    await createClass(
      secretProviderClass(stack.emulator, "kv-sync", ["db-password"], {
        secretObjects: [{ secretName: "db-synced", type: "Opaque", data: [{ objectName: "db-password", key: "password" }] }],
      }),
    );
    await createPod(secretsPod("rotating", "kv-sync", { nodeName: stack.node.name, credentialsSecret: "kv-creds" }));
    await createPod(
      secretsPod("env-consumer", "kv-sync", {
        nodeName: stack.node.name,
        credentialsSecret: "kv-creds",
        env: [{ name: "DB_PASSWORD", valueFrom: { secretKeyRef: { name: "db-synced", key: "password" } } }],
      }),
    );
    await waitForRunning(stack.core, NS, "rotating");
    await waitForRunning(stack.core, NS, "env-consumer");
    expect(await exec("env-consumer", "sh", "-c", 'echo "$DB_PASSWORD"')).toBe("hunter2\n");
    const secretValue = async () => Buffer.from((await stack.core.readNamespacedSecret({ name: "db-synced", namespace: NS })).data!.password!, "base64").toString();
    expect(await secretValue()).toBe("hunter2");

    await stack.emulator.setSecret(VAULT, "db-password", "hunter3");
    await waitFor(async () => (await exec("rotating", "cat", "/mnt/secrets-store/db-password")) === "hunter3", {
      description: "the rotated value inside the running container",
      timeoutMs: 60_000,
      intervalMs: 1000,
    });
    await waitFor(async () => (await secretValue()) === "hunter3", { description: "the synced Secret to follow", timeoutMs: 60_000, intervalMs: 1000 });
    const rotating = await stack.core.readNamespacedPod({ name: "rotating", namespace: NS });
    expect(rotating.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    // Environment variables are fixed at container start...
    expect(await exec("env-consumer", "sh", "-c", 'echo "$DB_PASSWORD"')).toBe("hunter2\n");
    // ...and a restarted container reads the synced Secret again.
    await exec("env-consumer", "kill", "1");
    await waitFor(
      async () => {
        const pod = await stack.core.readNamespacedPod({ name: "env-consumer", namespace: NS });
        return (pod.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 && pod.status?.containerStatuses?.[0]?.ready === true;
      },
      { description: "env-consumer's container to restart", timeoutMs: 90_000, intervalMs: 1000 },
    );
    expect(await exec("env-consumer", "sh", "-c", 'echo "$DB_PASSWORD"')).toBe("hunter3\n");
    await stack.emulator.setSecret(VAULT, "db-password", "hunter2");
  }, 240_000);

  it("4. a wrong SecretProviderClass gives a FailedMount event with our message; fixing the class lets the same pod start", async () => {
    await createClass(secretProviderClass(stack.emulator, "kv-typo", ["db-pasword"]));
    const pod = await createPod(secretsPod("typo", "kv-typo", { nodeName: stack.node.name, credentialsSecret: "kv-creds" }));
    const event = await waitFor(
      async () => {
        const events = await stack.core.listNamespacedEvent({ namespace: NS, fieldSelector: "involvedObject.name=typo,reason=FailedMount" });
        return events.items.find((e) => e.message?.includes("db-pasword"));
      },
      { description: "a FailedMount event naming the missing object", timeoutMs: 90_000, intervalMs: 1000 },
    );
    console.log(`[node] FailedMount: ${event.message}`);
    expect(event.type).toBe("Warning");
    expect(event.message).toContain(`MountVolume.SetUp failed for volume "secrets-store"`);
    expect(event.message).toMatch(/db-pasword/);
    expect(event.message).not.toContain(SP_SECRET);
    expect((await stack.core.readNamespacedPod({ name: "typo", namespace: NS })).status?.phase).toBe("Pending");
    // What kubectl shows the user, too.
    expect(await stack.kubectl(["describe", "pod", "typo"])).toContain("FailedMount");

    const fixed = secretProviderClass(stack.emulator, "kv-typo", ["db-password"]);
    const current = (await stack.custom.getNamespacedCustomObject({ group: SPC_GROUP, version: "v1", namespace: NS, plural: "secretproviderclasses", name: "kv-typo" })) as {
      metadata: { resourceVersion: string };
    };
    await stack.custom.replaceNamespacedCustomObject({
      group: SPC_GROUP,
      version: "v1",
      namespace: NS,
      plural: "secretproviderclasses",
      name: "kv-typo",
      body: { ...fixed, metadata: { name: "kv-typo", resourceVersion: current.metadata.resourceVersion } },
    });
    // kubelet retries the mount with backoff (up to about 2 minutes between tries).
    const running = await waitForRunning(stack.core, NS, "typo", 240_000);
    expect(running.metadata!.uid).toBe(pod.metadata!.uid);
    expect(await exec("typo", "cat", "/mnt/secrets-store/db-password")).toBe("hunter2");
  }, 300_000);

  it("5. a driver restart while pods run: their files stay readable, new pods mount, rotation resumes", async () => {
    const before = await exec("reader", "cat", "/mnt/secrets-store/db-password");
    await driver.stop();
    expect(existsSync(join(stack.node.kubeletDir, "plugins_registry", `${DRIVER_NAME}-reg.sock`))).toBe(false);
    expect(await exec("reader", "cat", "/mnt/secrets-store/db-password")).toBe(before);

    driver = await startDriver();
    await waitForRegistration();
    expect(await exec("reader", "cat", "/mnt/secrets-store/db-password")).toBe(before);
    await createPod(secretsPod("after-restart", "kv-sp", { nodeName: stack.node.name, credentialsSecret: "kv-creds" }));
    await waitForRunning(stack.core, NS, "after-restart");
    expect(await exec("after-restart", "cat", "/mnt/secrets-store/api-key")).toBe("key-one");

    // The restarted driver picked up the volumes mounted before it started.
    await stack.emulator.setSecret(VAULT, "api-key", "key-two");
    for (const pod of ["reader", "after-restart"]) {
      await waitFor(async () => (await exec(pod, "cat", "/mnt/secrets-store/api-key")) === "key-two", {
        description: `rotation of api-key in ${pod} after the driver restart`,
        timeoutMs: 60_000,
        intervalMs: 1000,
      });
    }
  }, 180_000);

  it("6. deleting the pod unmounts and removes the target, and the status object is garbage-collected", async () => {
    const pod = await stack.core.readNamespacedPod({ name: "after-restart", namespace: NS });
    const volumeDir = join(stack.node.kubeletDir, "pods", pod.metadata!.uid!, "volumes", "kubernetes.io~csi", "secrets-store");
    const target = join(volumeDir, "mount");
    expect(await mountsUnder([target])).toEqual([target]);

    await stack.kubectl(["delete", "pod", "after-restart", "--wait=true", "--timeout=120s"]);
    expect(await mountsUnder([target])).toEqual([]);
    expect(existsSync(target)).toBe(false);
    await waitFor(
      async () => {
        try {
          await stack.custom.getNamespacedCustomObject({
            group: SPC_GROUP,
            version: "v1",
            namespace: NS,
            plural: "secretproviderclasspodstatuses",
            name: `after-restart-${NS}-kv-sp`,
          });
          return false;
        } catch (err) {
          return apiErrorCode(err) === 404;
        }
      },
      { description: "the SecretProviderClassPodStatus to be garbage-collected", timeoutMs: 60_000 },
    );
    // Other pods keep their volumes.
    expect(await exec("reader", "cat", "/mnt/secrets-store/db-password")).toBe("hunter2");
  });

  it("8. identity binding: kubelet passes the pod's token for api://AKSIdentityBinding (the chart's CSIDriver), the provider exchanges it through the token proxy", async () => {
    await createClass(secretProviderClass(stack.emulator, "kv-ib", ["db-password"], { clientID: IB_CLIENT_ID, useAzureTokenProxy: true }));
    const before = stack.emulator.counters()[`identityBindingToken:${IB_CLIENT_ID}`] ?? 0;
    await createPod(secretsPod("bound", "kv-ib", { nodeName: stack.node.name, serviceAccountName: IB_SERVICE_ACCOUNT }));
    await waitForRunning(stack.core, NS, "bound");
    expect(await exec("bound", "cat", "/mnt/secrets-store/db-password")).toBe("hunter2");
    // the token came from the proxy, which answers only under the server name
    // the provider derived from the emulated API server's certificate
    expect((stack.emulator.counters()[`identityBindingToken:${IB_CLIENT_ID}`] ?? 0) - before).toBeGreaterThanOrEqual(1);
    expect(stack.emulator.counters().tokenProxyUnknownServerName ?? 0).toBe(0);
    expect(providerLog).toContain(stack.emulator.identityBinding.serverName);
  });

  it("9. fsGroup: a pod running as uid 1000 with fsGroup 2000 reads a 0440 secret; the same pod without fsGroup cannot", async () => {
    const objects = "array:\n  - |\n    objectName: db-password\n    objectType: secret\n    filePermission: \"0440\"\n";
    await createClass({
      apiVersion: `${SPC_GROUP}/v1`,
      kind: "SecretProviderClass",
      metadata: { name: "kv-0440" },
      spec: { provider: "azure", parameters: { keyvaultName: VAULT, tenantID: stack.emulator.tenantId, objects } },
    });
    const nonRoot = (name: string, fsGroup?: number): V1Pod => {
      const pod = secretsPod(name, "kv-0440", { nodeName: stack.node.name, credentialsSecret: "kv-creds" });
      pod.spec!.securityContext = { runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true, ...(fsGroup === undefined ? {} : { fsGroup }) };
      return pod;
    };
    await createPod(nonRoot("grouped", 2000));
    await createPod(nonRoot("ungrouped"));
    await waitForRunning(stack.core, NS, "grouped");
    await waitForRunning(stack.core, NS, "ungrouped");

    expect((await exec("grouped", "id")).trim()).toMatch(/^uid=1000 gid=1000 groups=.*\b2000\b/);
    expect(await exec("grouped", "cat", "/mnt/secrets-store/db-password")).toBe("hunter2");
    // kubelet passed the pod's fsGroup to the driver, which made the file root:2000, 0440 (as asked: group read is in it)
    expect((await exec("grouped", "stat", "-L", "-c", "%u:%g %a", "/mnt/secrets-store/db-password")).trim()).toBe("0:2000 440");
    expect((await exec("grouped", "stat", "-c", "%u:%g %a", "/mnt/secrets-store/")).trim()).toBe("0:2000 2750");

    const denied = await exec("ungrouped", "cat", "/mnt/secrets-store/db-password").then(
      () => "read",
      (err: unknown) => String((err as { stderr?: string }).stderr ?? err),
    );
    expect(denied).toMatch(/Permission denied/);
    expect((await exec("ungrouped", "stat", "-L", "-c", "%u:%g %a", "/mnt/secrets-store/db-password")).trim()).toBe("0:0 440");
  }, 180_000);

  it("leaves the machine as it found it: no mounts, processes, cgroups, chains, links or files of the node", async () => {
    await stack.deletePods();
    expect(await mountsUnder([join(stack.node.kubeletDir, "pods")])).toEqual([]);
    await driver.stop();
    provider.kill("SIGTERM");
    const node = stack.node;
    const dataDir = node.dataDir;
    await stack.stop();
    expect(await node.hostDifferences()).toEqual([]);
    expect(await mountsUnder([dataDir])).toEqual([]);
    expect(existsSync(dataDir)).toBe(false);
  }, 300_000);
});
