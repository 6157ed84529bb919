// Objects chosen by pattern or tag and optional objects on the whole stack:
// the Key Vault emulator over HTTPS, the Azure provider program (the
// unmodified Azure SDK), the driver program on its CSI socket with rotation
// and Secret sync, SecretProviderClasses, status objects, Secrets and Events
// in a real kube-apiserver, real tmpfs mounts. Vault changes go through the
// Azure SDK, as an operator's would.
import { mkdir, mkdtemp, readdir, readFile, readlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SecretClient } from "@azure/keyvault-secrets";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.ts";
import { clientOptions, secretCredential } from "../emulator/helpers.ts";
import { createNamespace, kubeConfigFromInjected, waitFor } from "../harness/kube.ts";
import { objectsYaml } from "../provider/client.ts";
import { startTestEmulator } from "../provider/env.ts";
import { startAzureProvider, type AzureProviderProcess } from "./azure-provider-process.ts";
import { csiClient, type CsiClient } from "../support/csi-client.ts";
import { removeTestTree, requireRoot, startDriverProcess, type DriverProcess } from "../support/driver-process.ts";

const GROUP = "secrets-store.csi.x-k8s.io";
const NS = "extensions-e2e";
const NODE = "extensions-node";
const VAULT = "ext-e2e-kv";
const SP = { clientId: "81111111-1111-4111-8111-111111111111", clientSecret: "ext-e2e-secret" };
const INTERVAL = "2s";

describe("patterns, tags and optional objects through driver, provider and Key Vault", () => {
  let base: string;
  let emulator: Emulator;
  let provider: AzureProviderProcess | undefined;
  let driver: DriverProcess;
  let csi: CsiClient;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let secrets: SecretClient;
  const pods = new Map<string, string>();

  async function publish(podName: string, spc: string): Promise<string> {
    const uid = pods.get(podName)!;
    const vol = join(base, "pods", uid, "volumes", "kubernetes.io~csi", "secrets");
    await mkdir(vol, { recursive: true });
    const target = join(vol, "mount");
    await csi.call(
      "Node",
      "NodePublishVolume",
      {
        volume_id: `csi-${podName}`,
        target_path: target,
        volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
        readonly: true,
        secrets: { clientid: SP.clientId, clientsecret: SP.clientSecret },
        volume_context: {
          secretProviderClass: spc,
          "csi.storage.k8s.io/pod.name": podName,
          "csi.storage.k8s.io/pod.namespace": NS,
          "csi.storage.k8s.io/pod.uid": uid,
          "csi.storage.k8s.io/serviceAccount.name": "default",
          "csi.storage.k8s.io/ephemeral": "true",
        },
      },
      120_000,
    );
    return target;
  }

  /** The files of the volume (path -> contents), as a reader sees them through ..data. */
  async function volume(target: string): Promise<Record<string, string>> {
    const data = join(target, await readlink(join(target, "..data")));
    const out: Record<string, string> = {};
    const walk = async (rel: string) => {
      for (const entry of await readdir(join(data, rel), { withFileTypes: true })) {
        const path = rel ? `${rel}/${entry.name}` : entry.name;
        if (entry.isDirectory()) await walk(path);
        else out[path] = await readFile(join(data, path), "utf8");
      }
    };
    await walk("");
    return out;
  }

  async function events(pod: string, reason: string): Promise<string[]> {
    const list = await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${pod},reason=${reason}` });
    return list.items.map((e) => `${e.type}: ${e.message}`);
  }

  async function secretData(name: string): Promise<Record<string, string> | undefined> {
    try {
      const s = await core.readNamespacedSecret({ name, namespace: NS });
      return Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString()]));
    } catch {
      return undefined;
    }
  }

  async function statusObjects(pod: string, spc: string): Promise<Array<{ id: string; version: string }>> {
    // Written just after the publish has answered.
    const st = (await waitFor(
      () => custom.getNamespacedCustomObject({ group: GROUP, version: "v1", namespace: NS, plural: "secretproviderclasspodstatuses", name: `${pod}-${NS}-${spc}` }) as Promise<object>,
      { description: `the status object of ${pod}` },
    )) as {
      status: { objects: Array<{ id: string; version: string }> };
    };
    return st.status.objects;
  }

  async function createClass(name: string, objects: Array<Record<string, string>>, secretObjects: unknown[]): Promise<void> {
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: "v1",
      namespace: NS,
      plural: "secretproviderclasses",
      body: {
        apiVersion: `${GROUP}/v1`,
        kind: "SecretProviderClass",
        metadata: { name },
        spec: { provider: "azure", parameters: { keyvaultName: VAULT, tenantID: emulator.tenantId, objects: objectsYaml(objects) }, secretObjects },
      },
    });
  }

  beforeAll(async () => {
    requireRoot();
    const kc = kubeConfigFromInjected();
    core = kc.makeApiClient(CoreV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
    await createNamespace(kc, NS);
    base = await mkdtemp(join(tmpdir(), "extensions-e2e-"));
    let address: string;
    ({ emulator, address } = await startTestEmulator({}));
    await emulator.seed({
      vaults: [
        {
          name: VAULT,
          secrets: [
            { name: "app-a", value: "alpha", tags: { team: "web" } },
            { name: "app-b", value: "bravo", tags: { team: "web" } },
            { name: "app-c", value: "charlie", tags: { team: "db" } },
            { name: "db-password", value: "hunter2" },
          ],
        },
      ],
      applications: [{ name: "sp", clientId: SP.clientId, clientSecret: SP.clientSecret, roleAssignments: [{ vault: VAULT, permissions: ["secrets"] }] }],
    } as never);
    process.env.SSCSI_EMULATOR_ADDRESS = address;
    await import("../../src/emulator/dns-hook.ts");
    secrets = new SecretClient(emulator.vaultUrl(VAULT), secretCredential(emulator, { clientId: SP.clientId, secret: SP.clientSecret }), clientOptions(emulator));

    await createClass("web", [{ objectName: "app-*", objectType: "secret", objectTags: "team=web", objectAlias: "web/" }], [
      { secretName: "web-a", type: "Opaque", data: [{ objectName: "web/app-a", key: "value" }] },
      { secretName: "web-new", type: "Opaque", data: [{ objectName: "web/app-new", key: "value" }] },
    ]);
    await createClass("maybe", [{ objectName: "db-password", objectType: "secret" }, { objectName: "later", objectType: "secret", optional: "true" }], [
      { secretName: "maybe", type: "Opaque", data: [{ objectName: "db-password", key: "password" }, { objectName: "later", key: "later" }] },
    ]);
    for (const name of ["web-pod", "maybe-pod"]) {
      const pod = await core.createNamespacedPod({ namespace: NS, body: { metadata: { name }, spec: { nodeName: NODE, containers: [{ name: "c", image: "registry.k8s.io/pause:3.10" }] } } });
      pods.set(name, pod.metadata!.uid!);
    }

    await mkdir(join(base, "providers"));
    provider = await startAzureProvider(join(base, "providers"), emulator, address);

    driver = await startDriverProcess(join(base, "csi.sock"), [
      `--nodeid=${NODE}`,
      `--kubelet-dir=${base}`,
      `--kubeconfig=${inject("kubeconfig")}`,
      `--provider-volume=${join(base, "providers")}`,
      "--additional-provider-volume-paths=",
      "--metrics-addr=",
      "--health-addr=",
      "--enable-secret-rotation=true",
      `--rotation-poll-interval=${INTERVAL}`,
      "--enable-secret-sync=true",
    ]);
    csi = csiClient(driver.socketPath);
  });

  afterAll(async () => {
    csi?.close();
    await driver?.stop();
    provider?.stop();
    await emulator?.close();
    await removeTestTree(base);
  });

  it("a pattern with tags mounts the matches under the alias prefix; rotation brings a new match and takes a removed one away in one swap; Secrets follow", async () => {
    const target = await publish("web-pod", "web");
    expect(await volume(target)).toEqual({ "web/app-a": "alpha", "web/app-b": "bravo" });
    expect((await statusObjects("web-pod", "web")).map((o) => o.id)).toEqual(["secret/app-a", "secret/app-b"]);
    expect(await secretData("web-a")).toEqual({ value: "alpha" });
    // the Secret naming a match that does not exist yet is not created
    expect(await secretData("web-new")).toBeUndefined();
    expect((await events("web-pod", "FailedToCreateSecret")).join("\n")).toContain("file matching objectName web/app-new not found in the pod");

    await secrets.setSecret("app-new", "november", { tags: { team: "web" } });
    await secrets.setSecret("app-other", "oscar", { tags: { team: "db" } });
    const b = await secrets.getSecret("app-b");
    await secrets.updateSecretProperties("app-b", b.properties.version!, { enabled: false });
    // every set a reader sees is one the vault held at a list: never a match half written or half removed
    const seen = new Set<string>();
    await waitFor(
      async () => {
        const files = await volume(target);
        seen.add(JSON.stringify(files));
        return !("web/app-b" in files) && "web/app-new" in files;
      },
      { description: "rotation to add the new match and remove the disabled one", timeoutMs: 30_000, intervalMs: 50 },
    );
    const consistent = [
      { "web/app-a": "alpha", "web/app-b": "bravo" },
      { "web/app-a": "alpha", "web/app-b": "bravo", "web/app-new": "november" },
      { "web/app-a": "alpha", "web/app-new": "november" },
    ].map((v) => JSON.stringify(v));
    for (const set of seen) expect(consistent).toContain(set);
    expect(await volume(target)).toEqual({ "web/app-a": "alpha", "web/app-new": "november" });
    // the status object follows the swap
    await waitFor(async () => JSON.stringify((await statusObjects("web-pod", "web")).map((o) => o.id)) === JSON.stringify(["secret/app-a", "secret/app-new"]), {
      description: "the status object to list the new matches",
    });
    await waitFor(async () => (await secretData("web-new"))?.value === "november", { description: "the Secret synced from the new match", timeoutMs: 30_000 });
  });

  it("an optional object Key Vault does not have: the pod mounts the rest, a Warning event names it, the synced Secret leaves its key out; rotation adds it once created", async () => {
    const target = await publish("maybe-pod", "maybe");
    expect(await volume(target)).toEqual({ "db-password": "hunter2" });
    expect(await statusObjects("maybe-pod", "maybe")).toEqual([expect.objectContaining({ id: "secret/db-password" }), { id: "secret/later", version: "(missing) later" }]);
    await waitFor(async () => (await events("maybe-pod", "OptionalObjectMissing")).length > 0, { description: "the Warning event" });
    expect(await events("maybe-pod", "OptionalObjectMissing")).toEqual([
      `Warning: provider "azure" left out optional objects it did not find, and the volume of spc ${NS}/maybe holds the others: secret/later (file later)`,
    ]);
    expect(await secretData("maybe")).toEqual({ password: "hunter2" });
    expect(provider!.output().split("\n").filter((l) => l.includes("optional object left out") && l.includes('"objectName":"later"')).length).toBeGreaterThanOrEqual(1);

    const created = await secrets.setSecret("later", "now here");
    await waitFor(async () => (await volume(target)).later === "now here", { description: "rotation to add the object", timeoutMs: 30_000, intervalMs: 100 });
    expect(await volume(target)).toEqual({ "db-password": "hunter2", later: "now here" });
    await waitFor(async () => (await secretData("maybe"))?.later === "now here", { description: "the Secret to get the key", timeoutMs: 30_000 });
    await waitFor(async () => (await statusObjects("maybe-pod", "maybe"))[1]?.version === created.properties.version, { description: "the status object to record the version" });
    expect(await events("maybe-pod", "MountRotationComplete")).toEqual([`Normal: successfully rotated mounted contents for spc ${NS}/maybe`]);

    // disabled again: the file and the key go, and a new Warning is raised
    await secrets.updateSecretProperties("later", created.properties.version!, { enabled: false });
    await waitFor(async () => !("later" in (await volume(target))), { description: "rotation to take the object away", timeoutMs: 30_000, intervalMs: 100 });
    await waitFor(async () => (await secretData("maybe"))?.later === undefined, { description: "the Secret to lose the key", timeoutMs: 30_000 });
    expect(await secretData("maybe")).toEqual({ password: "hunter2" });
  });
});
