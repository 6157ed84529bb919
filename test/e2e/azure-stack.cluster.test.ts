// The whole stack on real parts: the Key Vault emulator over HTTPS, the Azure
// provider program (the unmodified Azure SDK) on a unix socket, the driver
// program on its CSI socket, SecretProviderClasses and Secrets in a real
// kube-apiserver, workload-identity tokens minted by that API server.
import { mkdir, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.ts";
import { createNamespace, kubeConfigFromInjected, rawRequest, waitFor } from "../harness/kube.ts";
import { startTestEmulator } from "../provider/env.ts";
import { startAzureProvider, type AzureProviderProcess } from "./azure-provider-process.ts";
import { csiClient, type CsiClient } from "../support/csi-client.ts";
import { metricsUrl, removeTestTree, requireRoot, startDriverProcess, type DriverProcess } from "../support/driver-process.ts";

const GROUP = "secrets-store.csi.x-k8s.io";
const NS = "azure-e2e";
const NODE = "e2e-node";
const VAULT = "e2e-kv";
const SP_CLIENT_ID = "51111111-1111-4111-8111-111111111111";
const SP_SECRET = "sp-secret-value";
const WI_CLIENT_ID = "52222222-2222-4222-8222-222222222222";
const INTERVAL_MS = 2000;
const TOKENS_KEY = "csi.storage.k8s.io/serviceAccount.tokens";
const OBJECTS = ["db-password", "api-key", "signing-key", "web-tls"];


describe("driver + Azure provider + Key Vault emulator + kube-apiserver", () => {
  let base: string;
  let emulator: Emulator;
  let emulatorAddress: string;
  let provider: AzureProviderProcess | undefined;
  let driver: DriverProcess;
  let csi: CsiClient;
  let core: CoreV1Api;
  const pods = new Map<string, string>();
  let n = 0;

  async function createPod(name: string, serviceAccount: string): Promise<void> {
    const pod = await core.createNamespacedPod({
      namespace: NS,
      body: { metadata: { name }, spec: { nodeName: NODE, serviceAccountName: serviceAccount, containers: [{ name: "c", image: "registry.k8s.io/pause:3.10" }] } },
    });
    pods.set(name, pod.metadata!.uid!);
  }

  /** What kubelet sends: pod info, and for workload identity a TokenRequest token bound to the pod. */
  async function publish(podName: string, spc: string, identity: "sp" | "wi"): Promise<string> {
    const uid = pods.get(podName)!;
    const volumeContext: Record<string, string> = {
      secretProviderClass: spc,
      "csi.storage.k8s.io/pod.name": podName,
      "csi.storage.k8s.io/pod.namespace": NS,
      "csi.storage.k8s.io/pod.uid": uid,
      "csi.storage.k8s.io/serviceAccount.name": identity === "wi" ? "workload" : "default",
      "csi.storage.k8s.io/ephemeral": "true",
    };
    if (identity === "wi") {
      const tr = await core.createNamespacedServiceAccountToken({
        name: "workload",
        namespace: NS,
        body: { spec: { audiences: ["api://AzureADTokenExchange"], expirationSeconds: 3600, boundObjectRef: { kind: "Pod", apiVersion: "v1", name: podName, uid } } },
      });
      volumeContext[TOKENS_KEY] = JSON.stringify({ "api://AzureADTokenExchange": { token: tr.status!.token, expirationTimestamp: tr.status!.expirationTimestamp } });
    }
    const vol = join(base, "pods", uid, "volumes", "kubernetes.io~csi", `kv-${++n}`);
    await mkdir(vol, { recursive: true });
    const target = join(vol, "mount");
    await csi.call(
      "Node",
      "NodePublishVolume",
      {
        volume_id: `csi-${n}`,
        target_path: target,
        volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
        readonly: true,
        secrets: identity === "sp" ? { clientid: SP_CLIENT_ID, clientsecret: SP_SECRET } : {},
        volume_context: volumeContext,
      },
      120_000,
    );
    return target;
  }

  function spcBody(name: string, extra: Record<string, string>, secretObjects?: unknown[]) {
    const objects = [
      "array:",
      "  - |\n    objectName: db-password\n    objectType: secret",
      "  - |\n    objectName: api-key\n    objectType: secret\n    objectEncoding: base64",
      "  - |\n    objectName: signing-key\n    objectType: key",
      "  - |\n    objectName: web-tls\n    objectType: secret\n    objectAlias: tls/web.pem",
    ].join("\n");
    return {
      apiVersion: `${GROUP}/v1`,
      kind: "SecretProviderClass",
      metadata: { name },
      spec: { provider: "azure", parameters: { keyvaultName: VAULT, tenantID: emulator.tenantId, objects, ...extra }, secretObjects },
    };
  }

  beforeAll(async () => {
    requireRoot();
    const kc = kubeConfigFromInjected();
    core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    await createNamespace(kc, NS);
    await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: "workload" } } });

    // The cluster's service-account issuer, trusted by the emulator's Entra ID for workload identity.
    const jwks = JSON.parse((await rawRequest(kc, "GET", "/openid/v1/jwks", undefined, { accept: "application/jwk-set+json" })).body) as { keys: unknown[] };
    const discovery = (await rawRequest(kc, "GET", "/.well-known/openid-configuration")).json as { issuer: string };
    base = await mkdtemp(join(tmpdir(), "azure-e2e-"));
    // port 443 of a loopback address of its own
    ({ emulator, address: emulatorAddress } = await startTestEmulator({}));
    await emulator.seed({
      vaults: [
        {
          name: VAULT,
          secrets: [
            { name: "db-password", value: "hunter2" },
            { name: "api-key", value: Buffer.from([0, 1, 2, 250, 251]).toString("base64") },
          ],
          keys: [{ name: "signing-key", kty: "EC", curve: "P-256" }],
          certificates: [{ name: "web-tls", issuer: "chain", subject: "CN=web.e2e.example", dnsNames: ["web.e2e.example"] }],
        },
      ],
      serviceAccountIssuers: [{ issuer: discovery.issuer, jwks: jwks as never }],
      applications: [
        { name: "sp", clientId: SP_CLIENT_ID, clientSecret: SP_SECRET, roleAssignments: [{ vault: VAULT, permissions: ["secrets", "keys", "certificates"] }] },
        {
          name: "workload",
          clientId: WI_CLIENT_ID,
          federatedCredentials: [{ issuer: discovery.issuer, subject: `system:serviceaccount:${NS}:workload` }],
          roleAssignments: [{ vault: VAULT, permissions: ["secrets", "keys", "certificates"] }],
        },
      ],
    } as never);
    for (const body of [
      spcBody("kv-sp", {}, [{ secretName: "web-tls", type: "kubernetes.io/tls", data: [{ objectName: "tls/web.pem", key: "tls.crt" }, { objectName: "tls/web.pem", key: "tls.key" }] }]),
      spcBody("kv-wi", { clientID: WI_CLIENT_ID }),
    ]) {
      await custom.createNamespacedCustomObject({ group: GROUP, version: "v1", namespace: NS, plural: "secretproviderclasses", body });
    }
    for (const p of ["sp-1", "sp-2", "sp-3", "sp-4", "sp-5"]) await createPod(p, "default");
    for (const p of ["wi-1", "wi-2"]) await createPod(p, "workload");

    await mkdir(join(base, "providers"));
    provider = await startAzureProvider(join(base, "providers"), emulator, emulatorAddress);

    driver = await startDriverProcess(join(base, "csi.sock"), [
      `--nodeid=${NODE}`,
      `--kubelet-dir=${base}`,
      `--kubeconfig=${inject("kubeconfig")}`,
      `--provider-volume=${join(base, "providers")}`,
      "--additional-provider-volume-paths=",
      "--metrics-addr=127.0.0.1:0",
      "--health-addr=",
      "--enable-secret-rotation=true",
      `--rotation-poll-interval=${INTERVAL_MS / 1000}s`,
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

  it("mounts every object type with a service principal and syncs a kubernetes.io/tls Secret", async () => {
    const target = await publish("sp-1", "kv-sp", "sp");
    expect(await readFile(join(target, "db-password"), "utf8")).toBe("hunter2");
    expect([...(await readFile(join(target, "api-key")))]).toEqual([0, 1, 2, 250, 251]);
    expect(await readFile(join(target, "signing-key"), "utf8")).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const pem = await readFile(join(target, "tls/web.pem"), "utf8");
    const blocks = pem.match(/-----BEGIN [A-Z ]+-----/g);
    expect(blocks).toEqual(["-----BEGIN PRIVATE KEY-----", "-----BEGIN CERTIFICATE-----", "-----BEGIN CERTIFICATE-----", "-----BEGIN CERTIFICATE-----"]);
    const leaf = new X509Certificate(pem.slice(pem.indexOf("-----BEGIN CERTIFICATE-----")));
    expect(leaf.subject).toContain("CN=web.e2e.example");

    const secret = await core.readNamespacedSecret({ name: "web-tls", namespace: NS });
    expect(secret.type).toBe("kubernetes.io/tls");
    expect(Buffer.from(secret.data!["tls.crt"]!, "base64").toString()).toContain("-----BEGIN CERTIFICATE-----");
    expect(Buffer.from(secret.data!["tls.key"]!, "base64").toString()).toMatch(/^-----BEGIN (RSA|EC) PRIVATE KEY-----/);
  });

  it("mounts with workload identity from a real service-account token", async () => {
    const target = await publish("wi-1", "kv-wi", "wi");
    expect(await readFile(join(target, "db-password"), "utf8")).toBe("hunter2");
  });

  it("rotation costs Key Vault reads per identity, not per pod; identities are not merged", async () => {
    for (const p of ["sp-2", "sp-3", "sp-4", "sp-5"]) await publish(p, "kv-sp", "sp");
    await publish("wi-2", "kv-wi", "wi");
    // The clock is the driver's count of volume refreshes: each interval
    // refreshes all 7 volumes, so 7 per interval, however long a busy machine
    // makes an interval. One round first, so every group has settled.
    const url = await metricsUrl(driver);
    const volumeRefreshes = async () =>
      [...(await (await fetch(url)).text()).matchAll(/^rotation_reconcile_total\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    const VOLUMES = 7;
    const settled = (await volumeRefreshes()) + VOLUMES;
    await waitFor(async () => (await volumeRefreshes()) >= settled, { description: "a round of refreshes of the 7 volumes" });
    emulator.resetCounters();
    const start = await volumeRefreshes();
    const intervals = 3;
    await waitFor(async () => (await volumeRefreshes()) >= start + intervals * VOLUMES, { description: `${intervals} rounds of refreshes`, intervalMs: 100 });
    const c = emulator.counters();
    const reads = (c[`getSecret:${VAULT}`] ?? 0) + (c[`getKey:${VAULT}`] ?? 0);
    const tokens = c.token ?? 0;
    console.log(
      `Key Vault reads in ${intervals} rounds of volume refreshes: ${reads} (getSecret ${c[`getSecret:${VAULT}`] ?? 0}, getKey ${c[`getKey:${VAULT}`] ?? 0}), token requests ${tokens}; ` +
        `7 volumes in 2 identities x ${OBJECTS.length} objects (one read per object per pod would be ${7 * OBJECTS.length * intervals})`,
    );
    // Two identities (service principal: 5 pods, workload identity: 2 pods), 4 objects each, per interval.
    expect(reads).toBeGreaterThanOrEqual((intervals - 1) * OBJECTS.length * 2);
    expect(reads).toBeLessThanOrEqual((intervals + 1) * OBJECTS.length * 2);
  });

  it("keeps files intact while Key Vault throttles a rotation, warns, and recovers when it clears", async () => {
    const target = await publish("sp-1", "kv-sp", "sp");
    const before = await readFile(join(target, "db-password"));
    emulator.faults.add({ kind: "throttle", operation: "getSecret", durationMs: 14_000, retryAfterSeconds: 1 });
    await emulator.setSecret(VAULT, "db-password", "hunter3");
    await waitFor(async () => {
      const events = await core.listNamespacedEvent({ namespace: NS, fieldSelector: "involvedObject.name=sp-1,reason=MountRotationFailed" });
      return events.items.length > 0;
    }, { description: "a Warning event", timeoutMs: 30_000 });
    expect((await readFile(join(target, "db-password"))).equals(before)).toBe(true);
    await waitFor(async () => (await readFile(join(target, "db-password"), "utf8")) === "hunter3", { description: "recovery after the throttling", timeoutMs: 40_000 });
  });
});
