// Restart on rotation across a change of leader: content that moved while no
// controller was leading (or a rollout a leader held when it stopped) reaches
// the workloads once a controller takes the lead, by comparing what the
// volumes' status objects and the synced Secrets show with what each
// workload's pod template records. The controller program runs as the
// chart's service account against the real API server; the status objects
// are written here as a driver writes them.
import { AppsV1Api, PatchStrategy, setHeaderOptions, type V1Deployment } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { versionsHash } from "../../../src/controller/rollout/restarter.ts";
import { waitFor } from "../../harness/kube.ts";
import { secretProviderClassBody, secretSyncBody, SPC_GROUP, SS_GROUP, SS_VERSION, startSyncStack, type ControllerProcess, type SyncStack } from "../stack.ts";

const NS = "takeover";
const SYSTEM_NS = "takeover-system";
const SA = "app";
const VAULT = "takeover-kv";
const PREFIX = "rotation.secrets-store.csi.x-k8s.io/";
const CONTROLLER_ARGS = ["--restart-on-rotation", "--restart-min-interval=0s", "--rotation-poll-interval=0"];

let stack: SyncStack;
let apps: AppsV1Api;
let controller: ControllerProcess | undefined;

const v = (id: string, version: string) => ({ id, version });
const OLD = [v("secret/value", "v-old")];
const NEW = [v("secret/value", "v-new")];
const NEWER = [v("secret/value", "v-newer")];

function deployment(name: string, follows: Record<string, string>, recorded: Record<string, string> = {}): V1Deployment {
  return {
    metadata: { name, annotations: follows },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name }, annotations: recorded },
        spec: {
          serviceAccountName: SA,
          containers: [{ name: "c", image: "registry.k8s.io/pause:3.10", env: [{ name: "V", valueFrom: { secretKeyRef: { name: "app-secrets", key: "value" } } }] }],
          volumes: [{ name: "s", csi: { driver: "secrets-store.csi.k8s.io", readOnly: true, volumeAttributes: { secretProviderClass: follows["secretproviderclass.reloader.stakater.com/reload"] ?? "kv" } } }],
        },
      },
    },
  };
}

/** A volume's status object, as the driver on a node writes it. */
async function writeStatus(pod: string, className: string, objects: { id: string; version: string }[]): Promise<void> {
  const name = `${pod}-${NS}-${className}`;
  const body = {
    apiVersion: `${SPC_GROUP}/v1`,
    kind: "SecretProviderClassPodStatus",
    metadata: { name, labels: { "internal.secrets-store.csi.k8s.io/node-name": "node-1" } },
    status: { podName: pod, secretProviderClassName: className, mounted: true, targetPath: `/var/lib/kubelet/pods/${pod}/volumes/kubernetes.io~csi/s/mount`, objects },
  };
  try {
    const current = (await stack.custom.getNamespacedCustomObject({ group: SPC_GROUP, version: "v1", namespace: NS, plural: "secretproviderclasspodstatuses", name })) as {
      metadata: { resourceVersion: string };
    };
    await stack.custom.replaceNamespacedCustomObject({
      group: SPC_GROUP,
      version: "v1",
      namespace: NS,
      plural: "secretproviderclasspodstatuses",
      name,
      body: { ...body, metadata: { ...body.metadata, resourceVersion: current.metadata.resourceVersion } },
    });
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err;
    await stack.custom.createNamespacedCustomObject({ group: SPC_GROUP, version: "v1", namespace: NS, plural: "secretproviderclasspodstatuses", body });
  }
}

const templateAnnotations = async (name: string) => (await apps.readNamespacedDeployment({ name, namespace: NS })).spec!.template.metadata?.annotations ?? {};
async function rolloutEvents(name: string): Promise<string[]> {
  const list = await stack.core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${name},reason=RestartedForRotation` });
  return list.items.map((e) => e.message ?? "");
}
const annotationBecomes = (name: string, key: string, want: (value: string | undefined) => boolean, description: string) =>
  waitFor(async () => want((await templateAnnotations(name))[PREFIX + key]), { description, timeoutMs: 45_000 });

async function takeLead(): Promise<ControllerProcess> {
  controller = await stack.startController({ azure: true, args: CONTROLLER_ARGS });
  return controller;
}

beforeAll(async () => {
  stack = await startSyncStack({
    systemNamespace: SYSTEM_NS,
    workloads: [[NS, SA]],
    vaults: [{ name: VAULT, secrets: [{ name: "value", value: "secret-value-1" }] }],
    chartValues: { restartOnRotation: { enabled: true } },
  });
  apps = stack.kc.makeApiClient(AppsV1Api);
  await stack.core.createNamespace({ body: { metadata: { name: NS } } });
  await stack.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: SA } } });
  for (const name of ["kv", "kv-split"]) {
    await stack.custom.createNamespacedCustomObject({
      group: SPC_GROUP,
      version: "v1",
      namespace: NS,
      plural: "secretproviderclasses",
      body: secretProviderClassBody(name, VAULT, stack.emulator.tenantId, ["objectName: value\nobjectType: secret"]),
    });
  }
  await stack.custom.createNamespacedCustomObject({
    group: SS_GROUP,
    version: SS_VERSION,
    namespace: NS,
    plural: "secretsyncs",
    body: secretSyncBody("app-secrets", { secretProviderClassName: "kv", serviceAccountName: SA, secretObject: { type: "Opaque", data: [{ sourcePath: "value", targetKey: "value" }] } }),
  });
  const spc = (name: string) => ({ "secretproviderclass.reloader.stakater.com/reload": name });
  // Rolled before for kv's old content; rolled before for the class that is mid-rotation now;
  // following kv but never rolled; following the SecretSync's Secret.
  await apps.createNamespacedDeployment({ namespace: NS, body: deployment("recorded", spc("kv"), { [`${PREFIX}spc.kv`]: versionsHash(NS, "kv", OLD) }) });
  await apps.createNamespacedDeployment({ namespace: NS, body: deployment("split", spc("kv-split"), { [`${PREFIX}spc.kv-split`]: versionsHash(NS, "kv-split", OLD) }) });
  await apps.createNamespacedDeployment({ namespace: NS, body: deployment("unrecorded", spc("kv")) });
  await apps.createNamespacedDeployment({ namespace: NS, body: deployment("env", { "secret.reloader.stakater.com/reload": "app-secrets" }) });
  // What the volumes show while no controller runs: kv moved on everywhere, kv-split on one node only.
  await writeStatus("web-0", "kv", NEW);
  await writeStatus("web-1", "kv", NEW);
  await writeStatus("api-0", "kv-split", NEW);
  await writeStatus("api-1", "kv-split", OLD);
}, 300_000);

afterAll(async () => {
  await controller?.kill();
  await stack?.core.deleteNamespace({ name: NS }).catch(() => undefined);
  await stack?.stop();
});

describe("restart on rotation across a change of leader", () => {
  it("a controller taking the lead rolls a workload whose record of a class is older than what every volume shows, with an Event saying so", async () => {
    await takeLead();
    await annotationBecomes("recorded", "spc.kv", (h) => h === versionsHash(NS, "kv", NEW), "deployment recorded rolled for kv's new content");
    expect(await rolloutEvents("recorded")).toEqual([
      `restarting all replicas: secretproviderclass ${NS}/kv has new content since the last restart (secret/value version v-new; found on taking the lead)`,
    ]);
  });

  it("and a workload reading a synced Secret whose content the controller first sees, when it records other content", async () => {
    // The SecretSync's first write, by this leader: the existing path (a change it made) rolls nothing without a record.
    await waitFor(() => stack.core.readNamespacedSecret({ name: "app-secrets", namespace: NS }).catch(() => undefined), { description: "the Secret", timeoutMs: 60_000 });
    await controller!.stop();
    // A rollout the old leader held, or lost as it stopped: the template records other content.
    await apps.patchNamespacedDeployment(
      { name: "env", namespace: NS, body: { spec: { template: { metadata: { annotations: { [`${PREFIX}secret.app-secrets`]: "0".repeat(32) } } } } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    // kv moves on again while nobody leads.
    await writeStatus("web-0", "kv", NEWER);
    await writeStatus("web-1", "kv", NEWER);
    await takeLead();
    await annotationBecomes("env", "secret.app-secrets", (h) => h !== undefined && /^[0-9a-f]{32}$/.test(h) && h !== "0".repeat(32), "deployment env rolled for the Secret's content");
    await annotationBecomes("recorded", "spc.kv", (h) => h === versionsHash(NS, "kv", NEWER), "deployment recorded rolled again for kv's newer content");
    expect((await rolloutEvents("env")).some((m) => m.startsWith(`restarting all replicas: secret ${NS}/app-secrets (synced by secretsync ${NS}/app-secrets) has new data`))).toBe(true);
  });

  it("leaves alone a workload never rolled, and one whose class is still moving from node to node", async () => {
    // Both starts have made their decisions (the rollouts above came after them).
    await controller!.stop();
    expect(await templateAnnotations("unrecorded")).toEqual({});
    expect(await rolloutEvents("unrecorded")).toEqual([]);
    expect(await templateAnnotations("split")).toEqual({ [`${PREFIX}spc.kv-split`]: versionsHash(NS, "kv-split", OLD) });
    expect(await rolloutEvents("split")).toEqual([]);
  });
});
