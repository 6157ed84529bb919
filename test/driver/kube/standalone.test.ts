// Standalone mode: SecretProviderClasses from YAML files, no API server at all
// (what the demo and a laptop use). Real process, real socket, real tmpfs.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listMounts } from "../../../src/driver/volume/mounter.ts";
import { csiClient, expectGrpcError, type CsiClient } from "../../support/csi-client.ts";
import { removeTestTree, requireRoot, standaloneDriverFlags, startDriverProcess, type DriverProcess } from "../../support/driver-process.ts";
import { startFakeProvider, type FakeProvider } from "../../support/fake-provider.ts";

describe("standalone mode (--secret-provider-class-dir)", () => {
  let base: string;
  let provider: FakeProvider;
  let driver: DriverProcess;
  let csi: CsiClient;

  beforeAll(async () => {
    requireRoot();
    base = await mkdtemp(join(tmpdir(), "standalone-"));
    await mkdir(join(base, "spc"));
    await mkdir(join(base, "providers"));
    await mkdir(join(base, "pods", "0000-1111"), { recursive: true });
    await writeFile(
      join(base, "spc", "classes.yaml"),
      [
        "apiVersion: secrets-store.csi.x-k8s.io/v1",
        "kind: SecretProviderClass",
        "metadata: { name: app, namespace: demo }",
        "spec:",
        "  provider: fake",
        "  parameters: { objects: 'a' }",
        "---",
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata: { name: unrelated }",
      ].join("\n"),
    );
    provider = await startFakeProvider(join(base, "providers", "fake.sock"));
    driver = await startDriverProcess(join(base, "csi.sock"), standaloneDriverFlags(base, "laptop"));
    csi = csiClient(driver.socketPath);
  });

  afterAll(async () => {
    csi?.close();
    await driver?.stop();
    await provider?.stop();
    await removeTestTree(base);
  });

  const request = (target: string, spc: string) => ({
    volume_id: "v1",
    target_path: target,
    volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
    readonly: true,
    volume_context: {
      secretProviderClass: spc,
      "csi.storage.k8s.io/pod.name": "app-0",
      "csi.storage.k8s.io/pod.namespace": "demo",
      "csi.storage.k8s.io/pod.uid": "0000-1111",
    },
  });

  it("mounts from a SecretProviderClass file and unmounts", async () => {
    const target = join(base, "pods", "0000-1111", "mnt");
    await csi.call("Node", "NodePublishVolume", request(target, "app"));
    expect(await readFile(join(target, "a"), "utf8")).toBe("alpha");
    expect((await listMounts()).some((m) => m.mountPoint === target && m.fsType === "tmpfs")).toBe(true);
    await csi.call("Node", "NodeUnpublishVolume", { volume_id: "v1", target_path: target });
    expect(existsSync(target)).toBe(false);
  });

  it("a class file that cannot be parsed fails only the classes it may define, naming the file", async () => {
    const bad = join(base, "spc", "broken.yaml");
    await writeFile(bad, "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: { name: other, namespace: demo\nspec: [unclosed\n");
    try {
      // The good file's class still mounts.
      const target = join(base, "pods", "0000-1111", "mnt-beside-broken");
      await csi.call("Node", "NodePublishVolume", request(target, "app"));
      expect(await readFile(join(target, "a"), "utf8")).toBe("alpha");
      await csi.call("Node", "NodeUnpublishVolume", { volume_id: "v1", target_path: target });
      // A class found nowhere else names the file that may define it.
      const details = await expectGrpcError(csi.call("Node", "NodePublishVolume", request(join(base, "pods", "0000-1111", "mnt3"), "other")), grpc.status.FAILED_PRECONDITION);
      expect(details).toContain(`failed to get secretproviderclass demo/other, error: secretproviderclasses.secrets-store.csi.x-k8s.io "other" not found in ${join(base, "spc")}; it may be defined where the driver could not read: ${bad} (document 1): `);
      expect(details).not.toContain("\n");
    } finally {
      await rm(bad);
    }
  });

  it("names the directory when a class is not there", async () => {
    const details = await expectGrpcError(csi.call("Node", "NodePublishVolume", request(join(base, "pods", "0000-1111", "mnt2"), "nope")), grpc.status.NOT_FOUND);
    expect(details).toBe(`failed to get secretproviderclass demo/nope, error: secretproviderclasses.secrets-store.csi.x-k8s.io "nope" not found in ${join(base, "spc")}`);
  });
});
