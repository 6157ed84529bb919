// What every node-tier test file starts: its own cluster (etcd, kube-apiserver,
// kube-controller-manager), a real node (containerd + kubelet), the Key Vault
// emulator seeded for a service principal, a workload identity and an identity binding, and kubectl
// bound to that cluster, since the scenarios check what a user would check.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1EnvVar, type V1Pod, type V1Volume } from "@kubernetes/client-node";
import { IDENTITY_BINDING_AUDIENCE, startEmulator, type Emulator } from "../../src/emulator/index.ts";
import { startCluster, type Cluster } from "../harness/cluster.ts";
import { createNamespace, loadKubeConfig, rawRequest, waitFor } from "../harness/kube.ts";
import { BUSYBOX_IMAGE, startNode, type Node } from "../harness/node.ts";

const run = promisify(execFile);

/** The node's address and name; the emulator listens next to it. */
export const NODE_ADDRESS = "127.0.12.1";
export const EMULATOR_ADDRESS = "127.0.12.2";
export const DRIVER_NAME = "secrets-store.csi.k8s.io";
export const SPC_GROUP = "secrets-store.csi.x-k8s.io";
export const VAULT = "node-kv";
export const SP_CLIENT_ID = "61111111-1111-4111-8111-111111111111";
export const SP_SECRET = "node-sp-secret";
export const WI_CLIENT_ID = "62222222-2222-4222-8222-222222222222";
export const WI_SERVICE_ACCOUNT = "workload";
/** A managed identity bound to the cluster (AKS identity binding) for IB_SERVICE_ACCOUNT. */
export const IB_CLIENT_ID = "63333333-3333-4333-8333-333333333333";
export const IB_SERVICE_ACCOUNT = "bound";

export interface NodeStack {
  base: string;
  cluster: Cluster;
  node: Node;
  kc: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  emulator: Emulator;
  namespace: string;
  /** Deletes every pod on the node and waits until kubelet has unmounted their volumes (needs the driver running). */
  deletePods(): Promise<void>;
  /** Runs kubectl against the cluster (namespace preset) and returns stdout. */
  kubectl(args: string[]): Promise<string>;
  /** Stops everything; throws if the node could not be torn down completely. */
  stop(): Promise<void>;
}

export async function startNodeStack(namespace: string, options: { images?: string[] } = {}): Promise<NodeStack> {
  const base = await mkdtemp(join(tmpdir(), "sscsi-node-test-"));
  const cluster = await startCluster();
  let node: Node | undefined;
  let emulator: Emulator | undefined;
  // One teardown, however often it is asked for: a test that stops the stack and
  // the afterAll that makes sure of it wait for the same run.
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= teardown());
  const teardown = async (): Promise<void> => {
    const errors: string[] = [];
    await node?.stop().catch((err: Error) => errors.push(err.message));
    await emulator?.close().catch((err: Error) => errors.push(err.message));
    await cluster.stop();
    await rm(base, { recursive: true, force: true });
    if (errors.length > 0) throw new Error(errors.join("\n"));
  };
  try {
    await cluster.startControllerManager();
    node = await startNode(cluster, { address: NODE_ADDRESS, images: options.images });
    const kc = loadKubeConfig(cluster.kubeconfigPath);
    await createNamespace(kc, namespace);
    emulator = await startEmulator({ host: EMULATOR_ADDRESS, port: 443, imdsPort: 0, dataDir: join(base, "emulator") });
    await seedKeyVault(kc, emulator, namespace);
    const kubectlPath = join(cluster.binDir, "kubectl");
    return {
      base,
      cluster,
      node,
      kc,
      core: kc.makeApiClient(CoreV1Api),
      custom: kc.makeApiClient(CustomObjectsApi),
      emulator,
      namespace,
      deletePods: () => node!.deletePods(),
      kubectl: async (args) => (await run(kubectlPath, ["--kubeconfig", cluster.kubeconfigPath, "--namespace", namespace, ...args], { maxBuffer: 16 * 1024 * 1024 })).stdout,
      stop,
    };
  } catch (err) {
    await stop().catch((teardown: Error) => ((err as Error).message += `\n(teardown: ${teardown.message})`));
    throw err;
  }
}

/**
 * The vault's objects, a service principal, a workload identity federated with
 * the cluster's issuer, and an identity binding (the emulator's form: a
 * federated credential for api://AKSIdentityBinding, honoured only by its
 * token proxy).
 */
async function seedKeyVault(kc: KubeConfig, emulator: Emulator, namespace: string): Promise<void> {
  const jwks = JSON.parse((await rawRequest(kc, "GET", "/openid/v1/jwks", undefined, { accept: "application/jwk-set+json" })).body) as { keys: unknown[] };
  const { issuer } = (await rawRequest(kc, "GET", "/.well-known/openid-configuration")).json as { issuer: string };
  await emulator.seed({
    vaults: [{ name: VAULT, secrets: [{ name: "db-password", value: "hunter2" }, { name: "api-key", value: "key-one" }] }],
    serviceAccountIssuers: [{ issuer, jwks: jwks as never }],
    applications: [
      { name: "sp", clientId: SP_CLIENT_ID, clientSecret: SP_SECRET, roleAssignments: [{ vault: VAULT, permissions: ["secrets"] }] },
      {
        name: "workload",
        clientId: WI_CLIENT_ID,
        federatedCredentials: [{ issuer, subject: `system:serviceaccount:${namespace}:${WI_SERVICE_ACCOUNT}` }],
        roleAssignments: [{ vault: VAULT, permissions: ["secrets"] }],
      },
      {
        name: "identity-binding",
        clientId: IB_CLIENT_ID,
        federatedCredentials: [{ issuer, subject: `system:serviceaccount:${namespace}:${IB_SERVICE_ACCOUNT}`, audiences: [IDENTITY_BINDING_AUDIENCE] }],
        roleAssignments: [{ vault: VAULT, permissions: ["secrets"] }],
      },
    ],
  } as never);
}

/** A SecretProviderClass for the emulator's vault; `objects` are Key Vault secret names. */
export function secretProviderClass(
  emulator: Emulator,
  name: string,
  objects: string[],
  extra: { clientID?: string; useAzureTokenProxy?: boolean; secretObjects?: unknown[] } = {},
): Record<string, unknown> {
  const array = ["array:", ...objects.map((o) => `  - |\n    objectName: ${o}\n    objectType: secret`)].join("\n");
  return {
    apiVersion: `${SPC_GROUP}/v1`,
    kind: "SecretProviderClass",
    metadata: { name },
    spec: {
      provider: "azure",
      parameters: {
        keyvaultName: VAULT,
        tenantID: emulator.tenantId,
        objects: array,
        ...(extra.clientID ? { clientID: extra.clientID } : {}),
        ...(extra.useAzureTokenProxy ? { useAzureTokenProxy: "true" } : {}),
      },
      ...(extra.secretObjects ? { secretObjects: extra.secretObjects } : {}),
    },
  };
}

/** A busybox pod reading its secrets at /mnt/secrets-store; it exits on SIGTERM (so `kill 1` restarts it). */
export function secretsPod(
  name: string,
  spc: string,
  options: { nodeName?: string; serviceAccountName?: string; credentialsSecret?: string; env?: V1EnvVar[] } = {},
): V1Pod {
  const volume: V1Volume = {
    name: "secrets-store",
    csi: {
      driver: DRIVER_NAME,
      readOnly: true,
      volumeAttributes: { secretProviderClass: spc },
      ...(options.credentialsSecret ? { nodePublishSecretRef: { name: options.credentialsSecret } } : {}),
    },
  };
  return {
    metadata: { name, labels: { app: name } },
    spec: {
      ...(options.nodeName ? { nodeName: options.nodeName } : {}),
      serviceAccountName: options.serviceAccountName ?? "default",
      terminationGracePeriodSeconds: 2,
      containers: [
        {
          name: "app",
          image: BUSYBOX_IMAGE,
          imagePullPolicy: "Never",
          command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"],
          env: options.env,
          volumeMounts: [{ name: "secrets-store", mountPath: "/mnt/secrets-store", readOnly: true }],
        },
      ],
      volumes: [volume],
    },
  };
}

/** Waits until the pod is Running with every container ready, and returns it. */
export async function waitForRunning(core: CoreV1Api, namespace: string, name: string, timeoutMs = 120_000): Promise<V1Pod> {
  return waitFor(
    async () => {
      const pod = await core.readNamespacedPod({ name, namespace });
      const ready = pod.status?.phase === "Running" && (pod.status.containerStatuses ?? []).every((c) => c.ready);
      return ready ? pod : undefined;
    },
    { description: `pod ${namespace}/${name} to be Running`, timeoutMs, intervalMs: 500 },
  );
}
