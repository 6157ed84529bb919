// The pod's fsGroup (VOLUME_MOUNT_GROUP) through the driver's real socket, on
// real tmpfs mounts, with a provider on a real unix socket and the volume's
// status objects in a real kube-apiserver: owners and modes after the first
// mount, a republish and three rotations, what processes of another user can
// read (real child processes under uid 1000), the volume without a group
// exactly as before, refused values, a republish that brings a group (an
// upgraded driver), and a driver restart.
import { execFile } from "node:child_process";
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { listMounts } from "../../../src/driver/volume/mounter.ts";
import { createNamespace, kubeConfigFromInjected, waitFor } from "../../harness/kube.ts";
import { csiClient, expectGrpcError, type CsiClient } from "../../support/csi-client.ts";
import { removeTestTree, requireRoot, startDriverProcess, type DriverProcess } from "../../support/driver-process.ts";
import { startFakeProvider, type FakeProvider } from "../../support/fake-provider.ts";

const GROUP = "secrets-store.csi.x-k8s.io";
const NS = "mount-group-test";
const NODE = "group-node";
const FS_GROUP = 2000;
const USER = 1000;
const run = promisify(execFile);

/** What the provider answers: three files of different modes, at a version the test moves. */
let version = 1;
const answer = () => ({
  object_version: [
    { id: "secret/db-password", version: `v${version}` },
    { id: "secret/config", version: `v${version}` },
    { id: "secret/tls-key", version: `v${version}` },
  ],
  files: [
    { path: "db-password", mode: 0o400, contents: `password-${version}` },
    { path: "config/app.json", mode: 0o644, contents: `{"v":${version}}` },
    { path: "tls/key", mode: 0o600, contents: `key-${version}` },
  ],
});
const FILES = ["db-password", "config/app.json", "tls/key"];

/** Owner, group and mode of everything at the target, symlinks themselves, the data directory named "<data>". */
async function layout(target: string): Promise<Record<string, string>> {
  const data = await readlink(join(target, "..data"));
  const out: Record<string, string> = {};
  const walk = async (rel: string) => {
    for (const name of (await readdir(join(target, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(target, path));
      out[path.replace(data, "<data>")] = `${st.uid}:${st.gid} ${st.isSymbolicLink() ? "link" : (st.mode & 0o7777).toString(8).padStart(4, "0")}`;
      if (st.isDirectory()) await walk(path);
    }
  };
  const root = await stat(target);
  out["."] = `${root.uid}:${root.gid} ${(root.mode & 0o7777).toString(8).padStart(4, "0")}`;
  await walk("");
  return out;
}

function grouped(gid: number): Record<string, string> {
  const g = `0:${gid}`;
  return {
    ".": `${g} 2750`,
    "..data": `${g} link`,
    "<data>": `${g} 2750`,
    "<data>/config": `${g} 2750`,
    "<data>/config/app.json": `${g} 0644`,
    "<data>/db-password": `${g} 0440`,
    "<data>/tls": `${g} 2750`,
    "<data>/tls/key": `${g} 0640`,
    config: `${g} link`,
    "db-password": `${g} link`,
    tls: `${g} link`,
  };
}

/** The layout without a group: upstream's (no chown), the provider's modes exactly. */
const UNGROUPED: Record<string, string> = {
  ".": "0:0 0755",
  "..data": "0:0 link",
  "<data>": "0:0 0755",
  "<data>/config": "0:0 0755",
  "<data>/config/app.json": "0:0 0644",
  "<data>/db-password": "0:0 0400",
  "<data>/tls": "0:0 0755",
  "<data>/tls/key": "0:0 0600",
  config: "0:0 link",
  "db-password": "0:0 link",
  tls: "0:0 link",
};

/** Reads a file as another user: a real process with that uid and (only) that gid. */
async function readAs(path: string, uid: number, gid: number): Promise<string> {
  const { stdout } = await run("cat", [path], { uid, gid });
  return stdout;
}
async function refusedTo(path: string, uid: number, gid: number): Promise<string> {
  try {
    await run("cat", [path], { uid, gid });
  } catch (err) {
    return String((err as { stderr?: string }).stderr);
  }
  throw new Error(`uid ${uid} gid ${gid} could read ${path}`);
}

describe("the pod's fsGroup on the volume (VOLUME_MOUNT_GROUP)", () => {
  let base: string;
  let core: CoreV1Api;
  let provider: FakeProvider;
  let driver: DriverProcess;
  let csi: CsiClient;
  let podUid: string;
  let n = 0;

  const driverArgs = () => [
    `--nodeid=${NODE}`,
    `--kubelet-dir=${base}`,
    `--kubeconfig=${inject("kubeconfig")}`,
    `--provider-volume=${join(base, "providers")}`,
    "--additional-provider-volume-paths=",
    "--metrics-addr=",
    "--health-addr=",
    "--enable-secret-rotation=true",
    "--rotation-poll-interval=2s",
  ];

  const VOLUMES = ["vol-1", "vol-2", "vol-3", "vol-4", "vol-5", "vol-6"];

  function request(volume: string, group?: string) {
    return {
      volume_id: `csi-${volume}`,
      target_path: join(base, "pods", podUid, "volumes", "kubernetes.io~csi", volume, "mount"),
      volume_capability: { mount: group === undefined ? {} : { volume_mount_group: group }, access_mode: { mode: "SINGLE_NODE_WRITER" } },
      readonly: true,
      secrets: {},
      volume_context: {
        secretProviderClass: "grouped",
        "csi.storage.k8s.io/pod.name": "app",
        "csi.storage.k8s.io/pod.namespace": NS,
        "csi.storage.k8s.io/pod.uid": podUid,
        "csi.storage.k8s.io/serviceAccount.name": "default",
        "csi.storage.k8s.io/ephemeral": "true",
      },
    };
  }

  async function publish(group?: string): Promise<string> {
    const volume = VOLUMES[n++]!;
    const req = request(volume, group);
    await mkdir(join(req.target_path, ".."), { recursive: true });
    await csi.call("Node", "NodePublishVolume", req);
    return req.target_path;
  }

  const republish = (target: string, group?: string) => csi.call("Node", "NodePublishVolume", request(target.split("/").at(-2)!, group));

  async function rotateTo(next: number, targets: string[]): Promise<void> {
    version = next;
    for (const target of targets) {
      await waitFor(async () => (await readFile(join(target, "db-password"), "utf8")) === `password-${next}`, { description: `rotation to v${next} at ${target}`, timeoutMs: 30_000, intervalMs: 100 });
    }
  }

  beforeAll(async () => {
    requireRoot();
    const kc = kubeConfigFromInjected();
    core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    await createNamespace(kc, NS);
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: "v1",
      namespace: NS,
      plural: "secretproviderclasses",
      body: { apiVersion: `${GROUP}/v1`, kind: "SecretProviderClass", metadata: { name: "grouped" }, spec: { provider: "fake", parameters: { objects: "three" } } },
    });
    // the pod declares its CSI volumes, as kubelet's pods do (a restarted driver adopts only those)
    const pod = await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: "app" },
        spec: {
          nodeName: NODE,
          volumes: VOLUMES.map((name) => ({ name, csi: { driver: "secrets-store.csi.k8s.io", readOnly: true, volumeAttributes: { secretProviderClass: "grouped" } } })),
          containers: [{ name: "c", image: "registry.k8s.io/pause:3.10" }],
        },
      },
    });
    podUid = pod.metadata!.uid!;
    base = await mkdtemp(join(tmpdir(), "mount-group-"));
    // other users must be able to walk down to the volume, as they can to kubelet's
    await chmod(base, 0o755);
    await mkdir(join(base, "providers"));
    provider = await startFakeProvider(join(base, "providers", "fake.sock"), () => answer());
    driver = await startDriverProcess(join(base, "csi.sock"), driverArgs());
    csi = csiClient(driver.socketPath);
  });

  afterAll(async () => {
    csi?.close();
    await driver?.stop();
    await provider?.stop();
    await removeTestTree(base);
  });

  it("advertises VOLUME_MOUNT_GROUP, so kubelet delegates the pod's fsGroup", async () => {
    const res = await csi.call<{ capabilities: Array<{ rpc?: { type: string } }> }>("Node", "NodeGetCapabilities", {});
    expect(res.capabilities.map((c) => c.rpc?.type)).toEqual(["VOLUME_MOUNT_GROUP"]);
  });

  it("owns every file and directory by the group, after the first mount, a republish and three rotations; only the group's processes read them", async () => {
    const target = await publish(String(FS_GROUP));
    const plain = await publish();
    expect(await layout(target)).toEqual(grouped(FS_GROUP));
    const dataBefore = await readlink(join(target, "..data"));

    await republish(target, String(FS_GROUP));
    expect(await readlink(join(target, "..data"))).toBe(dataBefore);
    expect(await layout(target)).toEqual(grouped(FS_GROUP));

    for (const next of [2, 3, 4]) {
      await rotateTo(next, [target, plain]);
      expect(await readlink(join(target, "..data"))).not.toBe(dataBefore);
      expect(await layout(target), `after rotation to v${next}`).toEqual(grouped(FS_GROUP));
    }

    // uid 1000 in the group reads every file, 0400 and 0600 ones included; not in the group, nothing
    expect(await readAs(join(target, "db-password"), USER, FS_GROUP)).toBe("password-4");
    expect(await readAs(join(target, "config/app.json"), USER, FS_GROUP)).toBe('{"v":4}');
    expect(await readAs(join(target, "tls/key"), USER, FS_GROUP)).toBe("key-4");
    for (const file of FILES) expect(await refusedTo(join(target, file), USER, USER)).toMatch(/Permission denied/);
    expect(await refusedTo(join(target, "config/app.json"), USER, FS_GROUP + 1)).toMatch(/Permission denied/);
  });

  it("without a group the volume is exactly as before: root:root, the provider's modes, the root 0755", async () => {
    const target = await publish();
    expect(await layout(target)).toEqual(UNGROUPED);
    await rotateTo(version + 1, [target]);
    expect(await layout(target)).toEqual(UNGROUPED);
    // world-readable files are readable by anyone, the others by no one but root
    expect(await readAs(join(target, "config/app.json"), USER, USER)).toBe(`{"v":${version}}`);
    expect(await refusedTo(join(target, "db-password"), USER, FS_GROUP)).toMatch(/Permission denied/);
  });

  it("refuses a volume_mount_group that is not a decimal group id, before mounting anything", async () => {
    const volume = "vol-bad";
    const req = (group: string) => ({ ...request(volume, group), volume_id: "csi-bad" });
    await mkdir(join(req("x").target_path, ".."), { recursive: true });
    for (const group of ["abc", "-1", "2000.5", "02000", "4294967295", " 2000", "1e3"]) {
      const message = await expectGrpcError(csi.call("Node", "NodePublishVolume", req(group)), grpc.status.INVALID_ARGUMENT);
      expect(message).toContain("is not a decimal group id (kubelet sends the pod's fsGroup, 0 to 4294967294)");
    }
    expect((await listMounts()).some((m) => m.mountPoint === req("x").target_path)).toBe(false);
  });

  it("a republish that brings a group (kubelet delegating after a driver upgrade) re-owns the mounted files at once", async () => {
    const target = await publish();
    expect(await layout(target)).toEqual(UNGROUPED);
    const calls = provider.requests.length;
    await republish(target, "3000");
    expect(await layout(target)).toEqual(grouped(3000));
    expect(provider.requests.length, "no provider call for the owner change").toBe(calls);
    expect(await readAs(join(target, "db-password"), USER, 3000)).toBe(`password-${version}`);
  });

  it("a restarted driver keeps the group of the volumes it finds mounted when it rotates them", async () => {
    const target = await publish(String(FS_GROUP));
    await driver.stop();
    driver = await startDriverProcess(join(base, "csi.sock"), driverArgs());
    csi.close();
    csi = csiClient(driver.socketPath);
    await waitFor(() => driver.output().includes("recovered mounted volumes after restart"), { description: "the restarted driver to adopt its volumes" });
    await rotateTo(version + 1, [target]);
    expect(await layout(target)).toEqual(grouped(FS_GROUP));
  });
});
