// The Grafana dashboard against real data: a real Prometheus (Debian's package)
// scrapes the driver and the Azure provider programs while they serve a short
// workload through the driver's CSI socket onto real tmpfs mounts (publish,
// rotation, Secret sync, unpublish, and the failures the error panels count),
// with the Key Vault emulator and the shared kube-apiserver. Then every query
// of every panel is evaluated through Prometheus's HTTP API; each must succeed
// and return at least one series with a number in it (a NaN-only answer draws
// nothing). The scrape path comes from the chart's PodMonitor, whose ports and
// annotations are checked against the programs' metrics flags.
import { mkdir, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { status } from "@grpc/grpc-js";
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Emulator } from "../../src/emulator/index.ts";
import { applyYaml, createNamespace, kubeConfigFromInjected, waitFor } from "../harness/kube.ts";
import { startProvider, startTestEmulator, type RunningProvider } from "../provider/env.ts";
import { csiClient, expectGrpcError, type CsiClient } from "../support/csi-client.ts";
import { metricsUrl, removeTestTree, requireRoot, startDriverProcess, type DriverProcess } from "../support/driver-process.ts";
import { requirePrometheus, startPrometheus, type Prometheus } from "../support/prometheus.ts";
import { container, driverDaemonSet, flag, one, providerDaemonSet, render, type K8sObject } from "./chart.ts";
import { allPanels, loadDashboard } from "./dashboard.ts";

const NS = "dashboard-data";
const NODE = "dashboard-node";
const VAULT = "dashboard-kv";
const CLIENT_ID = "54444444-4444-4444-8444-444444444444";
const CLIENT_SECRET = "dashboard-sp-secret";
const SCRAPE_INTERVAL_S = 1;
const DRIVER_JOB = "secrets-store-csi-driver";
const PROVIDER_JOB = "secrets-store-csi-provider-azure";
/** The programs' default metrics ports, which the chart passes and declares. */
const DRIVER_METRICS_PORT = 8095;
const PROVIDER_METRICS_PORT = 8898;

const objectsYaml = (...names: string[]) => ["array:", ...names.map((n) => `  - |\n    objectName: ${n}\n    objectType: secret`)].join("\n");

function spcYaml(tenantId: string, name: string, objects: string, secretObjects?: string): string {
  return [
    "apiVersion: secrets-store.csi.x-k8s.io/v1",
    "kind: SecretProviderClass",
    `metadata: { name: ${name}, namespace: ${NS} }`,
    "spec:",
    "  provider: azure",
    "  parameters:",
    `    keyvaultName: ${VAULT}`,
    `    tenantID: "${tenantId}"`,
    "    objects: |",
    ...objects.split("\n").map((l) => `      ${l}`),
    ...(secretObjects ? ["  secretObjects:", secretObjects] : []),
  ].join("\n");
}

/**
 * Grafana's variables, filled in for a query evaluated once at the end: the
 * rate windows span the whole run. A variable the test does not know fails
 * the test, so a new one gets a deliberate value here.
 */
function fillVariables(expr: string, windowSeconds: number): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (_m, braced?: string, plain?: string, bracketed?: string) => {
    const name = braced ?? plain ?? bracketed ?? "";
    if (["__rate_interval", "__interval", "__range"].includes(name)) return `${windowSeconds}s`;
    throw new Error(`the query ${expr} uses the dashboard variable $${name}, which this test does not fill in; give it a value in fillVariables`);
  });
}

/** The chart's metrics port of a DaemonSet's pods, checked against the program's flag, the PodMonitor and the annotations. */
function checkScrapeSelection(objects: K8sObject[], ds: K8sObject, containerName: string, flagPort: number, component: string, scrapedPath: string): void {
  const template = (ds.spec as { template: { metadata: { labels: Record<string, string>; annotations: Record<string, string> } } }).template.metadata;
  const ports = container(ds, containerName).ports ?? [];
  expect(ports.filter((p) => p.name === "metrics").map((p) => p.containerPort), `${component}: the "metrics" container port`).toEqual([flagPort]);
  expect(template.annotations, `${component}: scrape annotations`).toMatchObject({
    "prometheus.io/scrape": "true",
    "prometheus.io/port": String(flagPort),
    "prometheus.io/path": scrapedPath,
  });
  const monitor = one(objects, "PodMonitor", (o) => o.metadata.labels?.["app.kubernetes.io/component"] === component);
  const spec = monitor.spec as { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: { port: string; path: string }[] };
  expect(template.labels, `${component}: the PodMonitor's selector matches the pods`).toMatchObject(spec.selector.matchLabels);
  expect(spec.podMetricsEndpoints.map((e) => [e.port, e.path]), `${component}: the PodMonitor's endpoints`).toEqual([["metrics", scrapedPath]]);
}

describe("Grafana dashboard against a real Prometheus", () => {
  let chart: K8sObject[];
  let metricsPath: string;
  let base: string;
  let emulator: Emulator | undefined;
  let provider: RunningProvider | undefined;
  let driver: DriverProcess | undefined;
  let prometheus: Prometheus | undefined;
  let prometheusStarted = 0;
  let csi: CsiClient | undefined;
  let core: CoreV1Api;
  const pods = new Map<string, string>();
  let volumes = 0;

  async function createPod(name: string): Promise<void> {
    const pod = await core.createNamespacedPod({
      namespace: NS,
      body: { metadata: { name }, spec: { nodeName: NODE, containers: [{ name: "c", image: "registry.k8s.io/pause:3.10" }] } },
    });
    pods.set(name, pod.metadata!.uid!);
  }

  /** NodePublishVolume as kubelet sends it for an inline volume with a publish Secret. */
  async function publish(podName: string, spc: string): Promise<{ target: string; volumeId: string }> {
    if (!pods.has(podName)) await createPod(podName);
    const uid = pods.get(podName)!;
    const volumeId = `csi-dashboard-${++volumes}`;
    const dir = join(base, "pods", uid, "volumes", "kubernetes.io~csi", `kv-${volumes}`);
    await mkdir(dir, { recursive: true });
    const target = join(dir, "mount");
    await csi!.call(
      "Node",
      "NodePublishVolume",
      {
        volume_id: volumeId,
        target_path: target,
        volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
        readonly: true,
        secrets: { clientid: CLIENT_ID, clientsecret: CLIENT_SECRET },
        volume_context: {
          secretProviderClass: spc,
          "csi.storage.k8s.io/pod.name": podName,
          "csi.storage.k8s.io/pod.namespace": NS,
          "csi.storage.k8s.io/pod.uid": uid,
          "csi.storage.k8s.io/serviceAccount.name": "default",
          "csi.storage.k8s.io/ephemeral": "true",
        },
      },
      60_000,
    );
    return { target, volumeId };
  }

  const applySpc = (name: string, objects: string, secretObjects?: string) =>
    applyYaml(kubeConfigFromInjected(), spcYaml(emulator!.tenantId, name, objects, secretObjects));

  beforeAll(async () => {
    requireRoot();
    requirePrometheus();
    chart = render({ metrics: { podMonitor: { enabled: true }, prometheusAnnotations: true } });
    const monitors = chart.filter((o) => o.kind === "PodMonitor").map((m) => (m.spec as { podMetricsEndpoints: { path: string }[] }).podMetricsEndpoints[0]!.path);
    expect(new Set(monitors).size, "both PodMonitors scrape one path").toBe(1);
    metricsPath = monitors[0]!;

    const kc = kubeConfigFromInjected();
    core = kc.makeApiClient(CoreV1Api);
    await createNamespace(kc, NS);
    base = await mkdtemp(join(tmpdir(), "dashboard-data-"));
    ({ emulator } = await startTestEmulator({
      vaults: [{ name: VAULT, secrets: [{ name: "db-password", value: "first" }, { name: "api-key", value: "k-1" }] }],
      applications: [{ name: "sp", clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, roleAssignments: [{ vault: VAULT, permissions: ["secrets"] }] }],
    } as never));
    provider = await startProvider(emulator, emulator.host);
    await applySpc("app", objectsYaml("db-password"), "  - secretName: app-synced\n    type: Opaque\n    data:\n      - { objectName: db-password, key: password }");
    await applySpc("missing-object", objectsYaml("no-such-secret"));
    await applySpc("drifting", objectsYaml("api-key"));

    driver = await startDriverProcess(join(base, "csi.sock"), [
      `--nodeid=${NODE}`,
      `--kubelet-dir=${base}`,
      `--kubeconfig=${inject("kubeconfig")}`,
      `--provider-volume=${dirname(provider.socket)}`,
      "--additional-provider-volume-paths=",
      "--metrics-addr=127.0.0.1:0",
      "--health-addr=",
      "--enable-secret-rotation=true",
      "--rotation-poll-interval=1s",
    ]);
    csi = csiClient(driver.socketPath);
    prometheusStarted = Date.now();
    prometheus = await startPrometheus(
      join(base, "prometheus"),
      [
        { job: DRIVER_JOB, target: new URL(await metricsUrl(driver)).host, metricsPath },
        { job: PROVIDER_JOB, target: `127.0.0.1:${provider.metricsPort}`, metricsPath },
      ],
      SCRAPE_INTERVAL_S,
    );
  });

  afterAll(async () => {
    csi?.close();
    await prometheus?.stop();
    await driver?.stop();
    await provider?.stop();
    await emulator?.close();
    await removeTestTree(base);
  });

  it("the chart's PodMonitors and scrape annotations select the metrics port of each program and the path scraped here", () => {
    const driverArgs = container(driverDaemonSet(chart), "secrets-store").args;
    const driverPort = Number(/:(\d+)$/.exec(flag(driverArgs, "metrics-addr") ?? "")?.[1]);
    expect(driverPort).toBe(DRIVER_METRICS_PORT);
    checkScrapeSelection(chart, driverDaemonSet(chart), "secrets-store", driverPort, "driver", metricsPath);

    const providerPort = Number(flag(container(providerDaemonSet(chart), "provider-azure-installer").args, "prometheus-port"));
    expect(providerPort).toBe(PROVIDER_METRICS_PORT);
    checkScrapeSelection(chart, providerDaemonSet(chart), "provider-azure-installer", providerPort, "provider-azure", metricsPath);
  });

  it("every panel query returns data after a publish / rotate / unpublish workload", { timeout: 240_000 }, async () => {
    // A volume whose class is then edited to name an object the vault lacks:
    // its refreshes fail from then on (the rotation error series).
    await publish("drifting", "drifting");
    await applySpc("drifting", objectsYaml("gone-from-the-vault"));

    // Two rounds, each scraped after it ends: every counter and histogram the
    // dashboard rates then has two different values in Prometheus.
    for (const round of [1, 2]) {
      const { target, volumeId } = await publish(`app-${round}`, "app");
      const rotated = `rotated-${round}`;
      await emulator!.setSecret(VAULT, "db-password", rotated);
      await waitFor(async () => (await readFile(join(target, "db-password"), "utf8")) === rotated, { description: `round ${round}: the rotated value in the volume` });
      await waitFor(
        async () => {
          const secret = await core.readNamespacedSecret({ name: "app-synced", namespace: NS });
          return Buffer.from(secret.data?.password ?? "", "base64").toString() === rotated;
        },
        { description: `round ${round}: the rotated value in the synced Secret` },
      );
      await expectGrpcError(publish(`broken-${round}`, "missing-object"), status.NOT_FOUND);
      await expectGrpcError(csi!.call("Node", "NodeUnpublishVolume", { volume_id: volumeId, target_path: join(tmpdir(), "not-under-the-kubelet-dir", "mount") }), status.INVALID_ARGUMENT);
      await csi!.call("Node", "NodeUnpublishVolume", { volume_id: volumeId, target_path: target });
      await prometheus!.waitForScrapesAfter(Date.now());
    }

    const window = Math.ceil((Date.now() - prometheusStarted) / 1000) + 2 * SCRAPE_INTERVAL_S;
    const problems: string[] = [];
    let evaluated = 0;
    for (const panel of allPanels(loadDashboard()).filter((p) => p.type !== "row")) {
      if (!panel.targets?.length) problems.push(`panel "${panel.title}" has no query`);
      for (const { expr } of panel.targets ?? []) {
        // A trailing `or vector(0)` keeps a stat at 0 before the first event; it
        // would also hide a query that matches nothing, so the part before it
        // must return data on its own.
        const fallback = /^([\s\S]+?)\s+or\s+vector\(0\)\s*$/.exec(expr)?.[1];
        for (const query of fallback ? [expr, fallback] : [expr]) {
          evaluated++;
          const answer = await prometheus!.query(fillVariables(query, window));
          if (!answer.ok) problems.push(`panel "${panel.title}": ${query}: ${answer.error}`);
          else if (answer.series.length === 0) problems.push(`panel "${panel.title}": ${query}: no series`);
          else if (!answer.series.some((s) => Number.isFinite(Number(s.value[1])))) {
            problems.push(`panel "${panel.title}": ${query}: only NaN (${answer.series.length} series)`);
          }
        }
      }
    }
    expect(evaluated).toBeGreaterThan(20);
    expect(problems, `queries without data:\n${problems.join("\n")}`).toEqual([]);
  });
});
