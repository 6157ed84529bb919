// The driver's metric labels take values from fixed sets, whatever tenants
// write: 2,000 publishes with distinct 1 KiB provider names, half through
// the pod's volumeAttributes.providerName (failing before the class is read),
// half through a SecretProviderClass's spec.provider (failing after), leave
// /metrics as it was: the provider label is a provider installed on the node
// (its socket exists), "" or "other". And ABORTED answers (kubelet's retries
// while a call on the same target is in progress) are counted apart, never as
// node_publish_error_total{error_type="FailedToMount"}. Through the driver
// program's real socket, with a real kube-apiserver.
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createNamespace, kubeConfigFromInjected } from "../../harness/kube.ts";
import { csiClient, expectGrpcError, type CsiClient } from "../../support/csi-client.ts";
import { metricsUrl, removeTestTree, requireRoot, startDriverProcess, type DriverProcess } from "../../support/driver-process.ts";
import { defaultMount, sleep, startFakeProvider, type FakeProvider } from "../../support/fake-provider.ts";

const GROUP = "secrets-store.csi.x-k8s.io";
const NS = "metric-labels";
/** Each half of the hostile publishes. */
const HALF = 1000;
/** The bounds /metrics stays within after them (it is about 10 KiB and 100 series before). */
const MAX_METRICS_BYTES = 32 * 1024;
const MAX_SERIES = 200;

/** The samples of a /metrics page: `name{labels} value` lines. */
function samples(text: string): string[] {
  return text.split("\n").filter((l) => l && !l.startsWith("#"));
}

function value(text: string, series: string): number {
  const line = samples(text).find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Runs fn over items, `width` at a time. */
async function inParallel<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

describe("metric labels from fixed sets", () => {
  let base: string;
  let kc: KubeConfig;
  let custom: CustomObjectsApi;
  let provider: FakeProvider;
  let driver: DriverProcess;
  let csi: CsiClient;
  let metrics: string;
  let podUid: string;
  let n = 0;

  const scrape = async () => (await fetch(metrics)).text();

  async function newTarget(): Promise<string> {
    const vol = join(base, "pods", podUid, "volumes", "kubernetes.io~csi", `vol-${++n}`);
    await mkdir(vol, { recursive: true });
    return join(vol, "mount");
  }

  /** The volume id kubelet would send for target: one per volume. */
  const volumeIdOf = (target: string) => `csi-${target.split("/").at(-2)}`;

  const publish = (target: string, context: Record<string, string>) =>
    csi.call("Node", "NodePublishVolume", {
      volume_id: volumeIdOf(target),
      target_path: target,
      volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
      readonly: true,
      secrets: {},
      volume_context: {
        "csi.storage.k8s.io/pod.name": "app",
        "csi.storage.k8s.io/pod.namespace": NS,
        "csi.storage.k8s.io/pod.uid": podUid,
        "csi.storage.k8s.io/ephemeral": "true",
        ...context,
      },
    });

  async function createClass(name: string, providerName: string): Promise<void> {
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: "v1",
      namespace: NS,
      plural: "secretproviderclasses",
      body: { apiVersion: `${GROUP}/v1`, kind: "SecretProviderClass", metadata: { name }, spec: { provider: providerName, parameters: { objects: "a" } } },
    });
  }

  /** A distinct 1 KiB provider name. */
  const hostileName = (i: number) => `hostile-${i}-${randomBytes(8).toString("hex")}-`.padEnd(1024, "x");

  beforeAll(async () => {
    requireRoot();
    kc = kubeConfigFromInjected();
    custom = kc.makeApiClient(CustomObjectsApi);
    await createNamespace(kc, NS);
    const pod = await kc.makeApiClient(CoreV1Api).createNamespacedPod({
      namespace: NS,
      body: { metadata: { name: "app" }, spec: { containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] } },
    });
    podUid = pod.metadata!.uid!;
    await createClass("fake-spc", "fake");
    base = await mkdtemp(join(tmpdir(), "labels-"));
    await mkdir(join(base, "providers"));
    provider = await startFakeProvider(join(base, "providers", "fake.sock"));
    driver = await startDriverProcess(join(base, "csi.sock"), [
      "--nodeid=labels-node",
      `--kubelet-dir=${base}`,
      `--kubeconfig=${inject("kubeconfig")}`,
      `--provider-volume=${join(base, "providers")}`,
      "--additional-provider-volume-paths=",
      "--metrics-addr=127.0.0.1:0",
      "--health-addr=",
    ]);
    csi = csiClient(driver.socketPath);
    metrics = await metricsUrl(driver);
  });

  afterAll(async () => {
    csi?.close();
    await driver?.stop();
    await provider?.stop();
    await removeTestTree(base);
  });

  it("2,000 publishes with distinct 1 KiB provider names add no series: the label is an installed provider, \"\" or \"other\"", async () => {
    // One of each kind first, so every series they can make exists.
    const target = await newTarget();
    await publish(target, { secretProviderClass: "fake-spc" });
    await csi.call("Node", "NodeUnpublishVolume", { volume_id: volumeIdOf(target), target_path: target });
    await createClass("hostile-first", hostileName(-1));
    await expectGrpcError(publish(await newTarget(), { secretProviderClass: "no-such-class", providerName: hostileName(-2) }), grpc.status.NOT_FOUND);
    await expectGrpcError(publish(await newTarget(), { secretProviderClass: "hostile-first" }), grpc.status.INVALID_ARGUMENT);
    const before = await scrape();

    const indices = Array.from({ length: HALF }, (_, i) => i);
    // Before the class is read: the pod's providerName.
    await inParallel(indices, 8, async (i) => {
      await expectGrpcError(publish(await newTarget(), { secretProviderClass: "no-such-class", providerName: hostileName(i) }), grpc.status.NOT_FOUND);
    });
    // After: the class's spec.provider.
    await inParallel(indices, 8, (i) => createClass(`hostile-${i}`, hostileName(HALF + i)));
    await inParallel(indices, 8, async (i) => {
      await expectGrpcError(publish(await newTarget(), { secretProviderClass: `hostile-${i}` }), grpc.status.INVALID_ARGUMENT);
    });

    const after = await scrape();
    const series = samples(after);
    console.log(
      `/metrics after ${2 * HALF} publishes with 1 KiB provider names: ${after.length} bytes, ${series.length} series ` +
        `(before: ${before.length} bytes, ${samples(before).length} series)`,
    );
    expect(after).not.toContain("hostile-");
    // The driver's own series are exactly those there were (Node's process
    // metrics may add a series of their own, e.g. a new kind of GC).
    const driverSeries = (text: string) => samples(text).map((l) => l.replace(/ [^ ]+$/, "")).filter((l) => /^(node_|rotation_|sync_|k8s_)/.test(l));
    expect(driverSeries(after)).toEqual(driverSeries(before));
    expect(series.length).toBeLessThanOrEqual(MAX_SERIES);
    expect(after.length).toBeLessThanOrEqual(MAX_METRICS_BYTES);
    const providers = new Set(series.flatMap((l) => [.../provider="([^"]*)"/.exec(l)?.slice(1) ?? []]));
    expect([...providers].sort()).toEqual(["fake", "other"]);
    expect(value(after, 'node_publish_error_total{provider="",error_type="SecretProviderClassNotFound",os_type="linux"}')).toBe(0);
    expect(value(after, 'node_publish_error_total{provider="other",error_type="SecretProviderClassNotFound",os_type="linux"}')).toBe(HALF + 1);
    expect(value(after, 'node_publish_error_total{provider="other",error_type="ProviderNotFound",os_type="linux"}')).toBe(HALF + 1);
  }, 600_000);

  it("ABORTED answers are counted apart, never as FailedToMount", async () => {
    const target = await newTarget();
    provider.behaviour = async (req) => {
      await sleep(1_000);
      return defaultMount(req, new grpc.Metadata());
    };
    const before = await scrape();
    const first = publish(target, { secretProviderClass: "fake-spc" });
    await sleep(200);
    // kubelet's retry of the publish, and an unpublish, while the first publish is in progress.
    await expectGrpcError(publish(target, { secretProviderClass: "fake-spc" }), grpc.status.ABORTED);
    await expectGrpcError(csi.call("Node", "NodeUnpublishVolume", { volume_id: volumeIdOf(target), target_path: target }), grpc.status.ABORTED);
    await first;
    await csi.call("Node", "NodeUnpublishVolume", { volume_id: volumeIdOf(target), target_path: target });
    const after = await scrape();
    const failedToMount = (text: string) =>
      samples(text)
        .filter((l) => l.startsWith("node_publish_error_total{") && l.includes('error_type="FailedToMount"'))
        .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
    expect(failedToMount(after)).toBe(failedToMount(before));
    expect(value(after, 'node_publish_aborted_total{os_type="linux"}') - value(before, 'node_publish_aborted_total{os_type="linux"}')).toBe(1);
    expect(value(after, 'node_unpublish_aborted_total{os_type="linux"}') - value(before, 'node_unpublish_aborted_total{os_type="linux"}')).toBe(1);
    expect(value(after, 'node_unpublish_error_total{os_type="linux"}')).toBe(value(before, 'node_unpublish_error_total{os_type="linux"}'));
    expect(samples(after).filter((l) => l.includes("OperationInProgress"))).toEqual([]);
  });
});
