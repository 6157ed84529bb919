// A provider that neither we nor Azure wrote: the mock provider server the
// upstream driver module ships for its own tests (provider/fake,
// MockCSIProviderServer), in a small Go main. Our driver serves it unchanged,
// next to upstream's driver as the reference: its files and object versions,
// its provider error code (the `error.code` of a Mount answer), and a gRPC
// error from Mount.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status, type ServiceError } from "@grpc/grpc-js";
import { ApiException, CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { listMounts } from "../../src/driver/volume/mounter.ts";
import { createNamespace, kubeConfigFromInjected, waitFor } from "../harness/kube.ts";
import { freePort } from "../provider/env.ts";
import { csiClient, type CsiClient } from "../support/csi-client.ts";
import { removeTestTree, requireRoot, startDriverProcess } from "../support/driver-process.ts";
import { startUpstreamDriver, startUpstreamFakeProvider } from "./support/upstream.ts";
import { volumeDigest, volumeFiles } from "./support/volume-files.ts";

const GROUP = "secrets-store.csi.x-k8s.io";
const NS = "interop-fake";
const FILES = [
  { path: "username", mode: 0o644, contents: "admin" },
  { path: "nested/password", mode: 0o600, contents: "s3cr3t" },
];
const OBJECTS = { "secret/username": "v1", "secret/password": "v7" };

describe("our driver serves upstream's mock provider unchanged", () => {
  let base: string;
  let custom: CustomObjectsApi;
  let metricsPort: number;
  const stops: Array<() => Promise<void>> = [];
  const drivers: Array<{ id: "ours" | "upstream"; pod: string; uid: string; csi: CsiClient }> = [];
  let n = 0;

  async function publish(d: (typeof drivers)[number], spc: string) {
    const vol = join(base, "pods", d.uid, "volumes", "kubernetes.io~csi", `${spc}-${++n}`);
    await mkdir(vol, { recursive: true });
    const target = join(vol, "mount");
    const request = {
      volume_id: `csi-${n}`,
      target_path: target,
      volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
      readonly: true,
      secrets: { username: "from-node-publish-secret-ref" },
      volume_context: {
        secretProviderClass: spc,
        "csi.storage.k8s.io/pod.name": d.pod,
        "csi.storage.k8s.io/pod.namespace": NS,
        "csi.storage.k8s.io/pod.uid": d.uid,
        "csi.storage.k8s.io/serviceAccount.name": "default",
        "csi.storage.k8s.io/ephemeral": "true",
      },
    };
    return { target, call: () => d.csi.call("Node", "NodePublishVolume", request, 60_000) };
  }

  async function failure(d: (typeof drivers)[number], spc: string): Promise<{ error: ServiceError; target: string }> {
    const { target, call } = await publish(d, spc);
    try {
      await call();
    } catch (err) {
      return { error: err as ServiceError, target };
    }
    throw new Error(`${d.id}: NodePublishVolume of ${spc} succeeded`);
  }

  // Ours writes it just after the publish has answered, upstream's just before.
  const podStatus = (d: (typeof drivers)[number], spc: string) =>
    waitFor(
      () => custom.getNamespacedCustomObject({ group: GROUP, version: "v1", namespace: NS, plural: "secretproviderclasspodstatuses", name: `${d.pod}-${NS}-${spc}` }) as Promise<object>,
      { description: `${d.id}: the status object of ${spc}` },
    ) as Promise<{
      status: { objects?: unknown[]; mounted?: boolean };
    }>;

  beforeAll(async () => {
    requireRoot();
    const kc = kubeConfigFromInjected();
    custom = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    await createNamespace(kc, NS);
    for (const name of ["fake", "fake-error-code", "fake-grpc-error"]) {
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: "v1",
        namespace: NS,
        plural: "secretproviderclasses",
        body: { apiVersion: `${GROUP}/v1`, kind: "SecretProviderClass", metadata: { name }, spec: { provider: name, parameters: { anything: "the mock reads no parameters" } } },
      });
    }
    base = await mkdtemp(join(tmpdir(), "interop-fake-"));
    const providers = join(base, "providers");
    await mkdir(providers);
    for (const [name, result] of [
      ["fake", { files: FILES, objects: OBJECTS }],
      // an answer with an error code: its files must be ignored
      ["fake-error-code", { files: FILES, objects: OBJECTS, errorCode: "MockProviderError" }],
      ["fake-grpc-error", { returnError: { code: "Unavailable", message: "the mock's backend is down" } }],
    ] as const) {
      const fake = await startUpstreamFakeProvider(providers, name, result);
      stops.push(() => fake.stop());
    }
    metricsPort = await freePort();
    for (const id of ["ours", "upstream"] as const) {
      const pod = `${id}-driver`;
      const created = await core.createNamespacedPod({ namespace: NS, body: { metadata: { name: pod }, spec: { nodeName: pod, containers: [{ name: "c", image: "registry.k8s.io/pause:3.10" }] } } });
      const socket = join(base, `${id}.sock`);
      const proc =
        id === "ours"
          ? await startDriverProcess(socket, [
              `--nodeid=${pod}`,
              `--kubeconfig=${inject("kubeconfig")}`,
              `--provider-volume=${providers}`,
              `--additional-provider-volume-paths=${join(base, "none")}`,
              `--kubelet-dir=${base}`,
              `--metrics-addr=127.0.0.1:${metricsPort}`,
              "--health-addr=",
            ])
          : await startUpstreamDriver(socket, { kubeconfig: inject("kubeconfig"), nodeId: pod, providerDir: providers });
      stops.push(() => proc.stop());
      drivers.push({ id, pod, uid: created.metadata!.uid!, csi: csiClient(socket) });
    }
  }, 300_000);

  afterAll(async () => {
    for (const d of drivers) d.csi.close();
    await Promise.allSettled(stops.reverse().map((s) => s()));
    await removeTestTree(base);
  });

  it("mounts the mock's files with their modes and records its object versions", async () => {
    const digests: Record<string, unknown> = {};
    for (const d of drivers) {
      const { target, call } = await publish(d, "fake");
      await call();
      const files = await volumeFiles(target);
      expect([...files.entries()].map(([path, f]) => [path, f.mode, f.contents.toString()]), d.id).toEqual([
        ["nested/password", 0o600, "s3cr3t"],
        ["username", 0o644, "admin"],
      ]);
      digests[d.id] = volumeDigest(files);
      const spcps = await podStatus(d, "fake");
      expect(spcps.status.mounted, d.id).toBe(true);
      expect(spcps.status.objects, d.id).toEqual([
        { id: "secret/password", version: "v7" },
        { id: "secret/username", version: "v1" },
      ]);
    }
    expect(digests.ours).toEqual(digests.upstream);
  });

  it("a provider error code fails the mount as upstream does, ignoring the answer's files", async () => {
    const errors: Record<string, string> = {};
    for (const d of drivers) {
      const { error, target } = await failure(d, "fake-error-code");
      expect(error.code, d.id).toBe(status.UNKNOWN);
      errors[d.id] = error.details;
      expect((await listMounts()).some((m) => m.mountPoint === target), `${d.id} leaves no tmpfs`).toBe(false);
      // Read once: a failed publish writes none, before or after its answer.
      const missing = await custom.getNamespacedCustomObject({ group: GROUP, version: "v1", namespace: NS, plural: "secretproviderclasspodstatuses", name: `${d.pod}-${NS}-fake-error-code` }).then(
        () => "exists",
        (err: unknown) => (err instanceof ApiException ? err.code : err),
      );
      expect(missing, `${d.id} writes no pod status`).toBe(404);
    }
    expect(errors.upstream).toBe(`failed to mount secrets store objects for pod ${NS}/upstream-driver, err: mount request failed with provider error code MockProviderError`);
    expect(errors.ours).toBe(`failed to mount secrets store objects for pod ${NS}/ours-driver, err: mount request failed with provider error code MockProviderError`);
    // the code is the error_type label, as upstream's (a known code: others count as ProviderError, test/shared/provider-api/provider-errors.test.ts)
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^node_publish_error_total\{[^}]*error_type="MockProviderError"[^}]*\} 1$/m);
  });

  it("a gRPC error from Mount reaches kubelet with the provider's code and text, from both drivers", async () => {
    for (const d of drivers) {
      const { error, target } = await failure(d, "fake-grpc-error");
      // upstream wraps the status with %w, which grpc-go unwraps: kubelet sees Unavailable and retries
      expect(error.code, d.id).toBe(status.UNAVAILABLE);
      expect(error.details, d.id).toMatch(new RegExp(`^failed to mount secrets store objects for pod ${NS}/${d.pod}, err: .*the mock's backend is down`));
      expect((await listMounts()).some((m) => m.mountPoint === target), `${d.id} leaves no tmpfs`).toBe(false);
      // ours also removes the directory it made; upstream leaves it to kubelet
      expect(existsSync(target), d.id).toBe(d.id === "upstream");
    }
  });
});
