// What kubelet and the cluster give a driver in the benchmark: a namespace per
// stack with one SecretProviderClass (ten Key Vault secrets), pods bound to
// the stack's node (they stay Pending: there is no kubelet), and the
// NodePublishVolume / NodeUnpublishVolume calls kubelet would make for each
// pod's one CSI volume, authenticated by a service principal through
// nodePublishSecretRef.
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { objectsYaml } from "../test/provider/client.ts";
import { createNamespace } from "../test/harness/kube.ts";
import type { CsiClient } from "../test/support/csi-client.ts";
import { OBJECTS, POD_IDENTITY, secretValue, TENANT, VAULT, type ServicePrincipal } from "./keyvault.ts";

const GROUP = "secrets-store.csi.x-k8s.io";
export const SPC_NAME = "bench-kv";
const PUBLISH_TIMEOUT_MS = 120_000; // kubelet's CSI deadline

/** The SecretProviderClass parameters, as the driver forwards them to the provider. */
export const SPC_PARAMETERS: Record<string, string> = {
  keyvaultName: VAULT,
  tenantID: TENANT,
  objects: objectsYaml(OBJECTS.map((objectName) => ({ objectName, objectType: "secret" }))),
};

export interface Pod {
  name: string;
  uid: string;
}

export class Workload {
  readonly namespace: string;
  readonly nodeName: string;
  readonly pods: Pod[];
  private readonly kc: KubeConfig;
  private constructor(namespace: string, nodeName: string, pods: Pod[], kc: KubeConfig) {
    this.namespace = namespace;
    this.nodeName = nodeName;
    this.pods = pods;
    this.kc = kc;
  }

  /** Creates the namespace, the SecretProviderClass and `podCount` pods on `nodeName`. */
  static async create(kc: KubeConfig, namespace: string, nodeName: string, podCount: number): Promise<Workload> {
    await createNamespace(kc, namespace);
    await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: GROUP,
      version: "v1",
      namespace,
      plural: "secretproviderclasses",
      body: { apiVersion: `${GROUP}/v1`, kind: "SecretProviderClass", metadata: { name: SPC_NAME }, spec: { provider: "azure", parameters: SPC_PARAMETERS } },
    });
    const core = kc.makeApiClient(CoreV1Api);
    const pods: Pod[] = [];
    for (let i = 0; i < podCount; i++) {
      const pod = await core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name: `pod-${i}` },
          spec: { nodeName, containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] },
        },
      });
      pods.push({ name: pod.metadata!.name!, uid: pod.metadata!.uid! });
    }
    return new Workload(namespace, nodeName, pods, kc);
  }

  /** Removes every SecretProviderClassPodStatus of the namespace (garbage collection would, once the pods go). */
  async deletePodStatuses(): Promise<void> {
    await this.kc.makeApiClient(CustomObjectsApi).deleteCollectionNamespacedCustomObject({
      group: GROUP,
      version: "v1",
      namespace: this.namespace,
      plural: "secretproviderclasspodstatuses",
    });
  }

  /** The pod's volume as one driver instance sees it (kubelet creates the volume directory; the driver creates `mount`). */
  volume(kubeletDir: string, i: number, identity: ServicePrincipal = POD_IDENTITY): Volume {
    const pod = this.pods[i];
    if (!pod) throw new Error(`the workload has ${this.pods.length} pods, not ${i + 1}`);
    const dir = join(kubeletDir, "pods", pod.uid, "volumes", "kubernetes.io~csi", "secrets");
    return {
      dir,
      publish: {
        volume_id: `csi-${pod.uid}`,
        target_path: join(dir, "mount"),
        volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
        readonly: true,
        secrets: { clientid: identity.clientId, clientsecret: identity.clientSecret },
        volume_context: {
          secretProviderClass: SPC_NAME,
          "csi.storage.k8s.io/pod.name": pod.name,
          "csi.storage.k8s.io/pod.namespace": this.namespace,
          "csi.storage.k8s.io/pod.uid": pod.uid,
          "csi.storage.k8s.io/serviceAccount.name": "default",
          "csi.storage.k8s.io/ephemeral": "true",
        },
      },
    };
  }
}

export interface Volume {
  dir: string;
  publish: { volume_id: string; target_path: string; volume_capability: object; readonly: boolean; secrets: Record<string, string>; volume_context: Record<string, string> };
}

/** kubelet's NodePublishVolume for a volume (its directory created first, as kubelet does). */
export async function publish(csi: CsiClient, volume: Volume): Promise<void> {
  await mkdir(volume.dir, { recursive: true });
  await csi.call("Node", "NodePublishVolume", volume.publish, PUBLISH_TIMEOUT_MS);
}

export async function unpublish(csi: CsiClient, volume: Volume): Promise<void> {
  await csi.call("Node", "NodeUnpublishVolume", { volume_id: volume.publish.volume_id, target_path: volume.publish.target_path }, PUBLISH_TIMEOUT_MS);
}

/** Fails unless the volume holds every object with the vault's value: a figure of a publish that wrote nothing is no figure. */
export async function verifyVolume(volume: Volume): Promise<void> {
  for (const name of OBJECTS) {
    const content = await readFile(join(volume.publish.target_path, name), "utf8");
    if (content !== secretValue(name)) throw new Error(`${volume.publish.target_path}/${name} does not hold the vault's value`);
  }
}

/** Fails unless a provider's Mount answer carries every object with the vault's value. */
export function verifyMountResponse(res: { files: Array<{ path: string; contents: Buffer }> }): void {
  for (const name of OBJECTS) {
    const file = res.files.find((f) => f.path === name);
    if (file?.contents.toString("utf8") !== secretValue(name)) throw new Error(`the provider's answer lacks ${name} or holds another value`);
  }
}
