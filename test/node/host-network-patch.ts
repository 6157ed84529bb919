// A Helm post-renderer for the node tier only (a postrenderer/v1 plugin that
// runs this file): this machine has no pod network to the API server, Key
// Vault or Entra ID (no kube-proxy, no routes), so both DaemonSets join the
// node's network (and so does the SecretSync controller's Deployment), the
// driver and the controller reach the API server on loopback, their HTTP
// listeners bind the node's loopback address instead of every interface (on
// the ports the test picked free, which the values carry), and the providers
// resolve Key Vault and Entra ID to the emulator. Nothing else in the chart's
// output changes.
//
// Usage: node host-network-patch.ts '<json HostNetworkPatch>' < manifests > patched
import { readFileSync } from "node:fs";
import YAML from "yaml";

export interface HostNetworkPatch {
  /** The node's address: listeners bind it. */
  nodeAddress: string;
  /** host:port of the API server as the node reaches it. */
  apiServerHost: string;
  apiServerPort: number;
  /** Names resolved to the emulator inside the provider's pods. */
  emulatorAddress: string;
  emulatorHostnames: string[];
}

interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string }[];
}
interface PodSpec {
  hostNetwork?: boolean;
  dnsPolicy?: string;
  hostAliases?: { ip: string; hostnames: string[] }[];
  containers: Container[];
  initContainers?: Container[];
}
interface Doc {
  kind?: string;
  metadata?: { labels?: Record<string, string> };
  spec?: { template?: { spec?: PodSpec } };
}

/**
 * A listener flag moved from every interface of the node to its loopback
 * address, same port: the driver's ":port" addresses, and the provider's port
 * flags (upstream's, which have no host part) as the address flags that
 * override them.
 */
function onNodeAddress(arg: string, nodeAddress: string): string {
  return arg
    .replace(/^(--(?:metrics|health)-addr|--metrics-bind-address|--health-probe-bind-address)=:(\d+)$/, `$1=${nodeAddress}:$2`)
    .replace(/^--healthz-port=(\d+)$/, `--healthz-addr=${nodeAddress}:$1`)
    .replace(/^--prometheus-port=(\d+)$/, `--metrics-addr=${nodeAddress}:$1`);
}

export function patchManifests(text: string, patch: HostNetworkPatch): string {
  const docs = YAML.parseAllDocuments(text);
  for (const doc of docs) {
    const obj = doc.toJSON() as Doc | null;
    const spec = obj?.kind === "DaemonSet" || obj?.kind === "Deployment" ? obj.spec?.template?.spec : undefined;
    if (!obj || !spec) continue;
    const component = obj.metadata?.labels?.["app.kubernetes.io/component"];
    spec.hostNetwork = true;
    // The node has no cluster DNS; the programs resolve through the node's resolver.
    spec.dnsPolicy = "Default";
    for (const c of spec.containers) c.args = c.args?.map((a) => onNodeAddress(a, patch.nodeAddress));
    if (component === "driver") {
      const driver = spec.containers.find((c) => c.name === "secrets-store");
      driver?.env?.push({ name: "KUBERNETES_SERVICE_HOST", value: patch.apiServerHost }, { name: "KUBERNETES_SERVICE_PORT", value: String(patch.apiServerPort) });
    }
    if (component === "sync-controller") {
      // The controller reaches the API server as the driver does; its provider sidecar reaches the emulator.
      const manager = spec.containers.find((c) => c.name === "manager");
      manager?.env?.push({ name: "KUBERNETES_SERVICE_HOST", value: patch.apiServerHost }, { name: "KUBERNETES_SERVICE_PORT", value: String(patch.apiServerPort) });
    }
    if (component === "provider-azure" || component === "sync-controller") spec.hostAliases = [{ ip: patch.emulatorAddress, hostnames: patch.emulatorHostnames }];
    doc.contents = doc.createNode(obj) as typeof doc.contents;
  }
  return docs.map((d) => d.toString()).join("---\n");
}

if (import.meta.main) {
  const patch = JSON.parse(process.argv[2] ?? "{}") as HostNetworkPatch;
  process.stdout.write(patchManifests(readFileSync(0, "utf8"), patch));
}
