// The driver never harms the node: every case of a hostile or merely unlucky
// kubelet, tried through the driver's real socket on real tmpfs mounts, with
// a real kube-apiserver (SecretProviderClasses, status objects, events) and a
// test provider on a real unix socket. Each asserts the safe outcome: what the
// driver did not make survives byte for byte, no secret byte lands outside its
// tmpfs, and mountinfo shows at most the driver's one tmpfs per target.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, readFile, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { listMounts } from "../../../src/driver/volume/mounter.ts";
import { buildPodStatus } from "../../../src/driver/kube/pod-status.ts";
import { createNamespace, kubeConfigFromInjected, waitFor } from "../../harness/kube.ts";
import { csiClient, expectGrpcError, type CsiClient } from "../../support/csi-client.ts";
import { removeTestTree, requireRoot, startDriverProcess, type DriverProcess } from "../../support/driver-process.ts";
import { defaultMount, sleep, startFakeProvider, type FakeMountResponse, type FakeProvider } from "../../support/fake-provider.ts";
import { snapshotTree } from "../../support/snapshot.ts";

const GROUP = "secrets-store.csi.x-k8s.io";
const NS = "node-safety";
const NODE = "safety-node";
const DRIVER_SOURCE = "secrets-store.csi.k8s.io";

async function mountsAt(path: string) {
  return (await listMounts()).filter((m) => m.mountPoint === path);
}

describe("node safety: publish and unpublish under races, foreign mounts and hostile paths", () => {
  let base: string;
  let kc: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let provider: FakeProvider;
  let driver: DriverProcess;
  let csi: CsiClient;
  let podUid: string;
  let n = 0;

  const volumeContext = () => ({
    secretProviderClass: "safety-spc",
    "csi.storage.k8s.io/pod.name": "app",
    "csi.storage.k8s.io/pod.namespace": NS,
    "csi.storage.k8s.io/pod.uid": podUid,
    "csi.storage.k8s.io/serviceAccount.name": "default",
    "csi.storage.k8s.io/ephemeral": "true",
  });
  const publishRequest = (target: string, volumeId = `csi-${n}`) => ({
    volume_id: volumeId,
    target_path: target,
    volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
    readonly: true,
    secrets: {},
    volume_context: volumeContext(),
  });
  const publish = (target: string, timeoutMs?: number) => csi.call("Node", "NodePublishVolume", publishRequest(target), timeoutMs);
  const unpublish = (target: string, volumeId = `csi-${n}`) => csi.call("Node", "NodeUnpublishVolume", { volume_id: volumeId, target_path: target });

  /** A fresh kubelet-style volume directory (the parent kubelet creates) and the target inside it. */
  async function newTarget(uid = podUid): Promise<{ parent: string; target: string }> {
    const parent = join(base, "pods", uid, "volumes", "kubernetes.io~csi", `vol-${++n}`);
    await mkdir(parent, { recursive: true });
    return { parent, target: join(parent, "mount") };
  }

  async function eventsFor(reason: string): Promise<string[]> {
    const list = await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=app,reason=${reason}` });
    return list.items.map((e) => e.message ?? "");
  }

  /** A status object on this node naming target, as a secrets-store driver records it. */
  async function recordPodStatus(target: string, pod = { name: "app", uid: podUid }, spcName = `safety-spc-${n}`): Promise<void> {
    const status = buildPodStatus({ pod: { ...pod, namespace: NS }, spcName, nodeName: NODE, targetPath: target, objectVersions: [] });
    await custom.createNamespacedCustomObject({ group: GROUP, version: "v1", namespace: NS, plural: "secretproviderclasspodstatuses", body: status });
  }

  /**
   * A pod on this node whose CSI volume of the driver is the next target
   * newTarget() makes, naming spcName: what kubelet's pods look like, and
   * what the driver checks before it takes a tmpfs it has no record of for
   * its own. Returns the pod and that target.
   */
  async function podWithNextVolume(spcName: string): Promise<{ pod: { name: string; uid: string }; target: string }> {
    const volume = `vol-${n + 1}`;
    const name = `app-${volume}`;
    const created = await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name },
        spec: {
          nodeName: NODE,
          volumes: [{ name: volume, csi: { driver: DRIVER_SOURCE, readOnly: true, volumeAttributes: { secretProviderClass: spcName } } }],
          containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }],
        },
      },
    });
    const pod = { name, uid: created.metadata!.uid! };
    const { target } = await newTarget(pod.uid);
    return { pod, target };
  }

  /** A publish as kubelet makes it for pod. */
  const publishFor = (target: string, pod: { name: string; uid: string }) =>
    csi.call("Node", "NodePublishVolume", {
      ...publishRequest(target),
      volume_context: { ...volumeContext(), "csi.storage.k8s.io/pod.name": pod.name, "csi.storage.k8s.io/pod.uid": pod.uid },
    });

  /** Mount requests the provider got for refreshes (they carry current versions). */
  /**
   * The provider takes Mount calls but answers none until answer(): `asked`
   * resolves at the first call, when the publish that made it holds its target.
   * Events in order, not sleeps, put a second call inside the first.
   */
  const holdProviderAnswers = () => {
    let asked!: () => void;
    let answer!: () => void;
    const held = { asked: new Promise<void>((r) => (asked = r)), answer: () => answer() };
    const answered = new Promise<void>((r) => (answer = r));
    provider.behaviour = async (req) => {
      asked();
      await answered;
      return defaultMount(req, new grpc.Metadata());
    };
    return held;
  };
  /** Refresh calls (they carry current versions) the provider got for target. */
  const refreshesOf = (target: string) => provider.requests.filter((r) => r.current_object_version.length > 0 && r.target_path === target).length;

  /**
   * Lets the reconciler run `rounds` times, counted on a volume of its own
   * (published, refreshed `rounds` times, unpublished) rather than slept for:
   * what the reconciler would do wrongly in that time, it had its chance to.
   */
  async function reconcilerRounds(rounds: number): Promise<void> {
    const clock = await newTarget();
    const volumeId = `csi-${n}`;
    await publish(clock.target);
    await waitFor(() => refreshesOf(clock.target) >= rounds, { description: `${rounds} refreshes of another volume` });
    await unpublish(clock.target, volumeId);
  }

  beforeAll(async () => {
    requireRoot();
    kc = kubeConfigFromInjected();
    core = kc.makeApiClient(CoreV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
    await createNamespace(kc, NS);
    const pod = await core.createNamespacedPod({
      namespace: NS,
      body: { metadata: { name: "app" }, spec: { nodeName: NODE, containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] } },
    });
    podUid = pod.metadata!.uid!;
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: "v1",
      namespace: NS,
      plural: "secretproviderclasses",
      body: { apiVersion: `${GROUP}/v1`, kind: "SecretProviderClass", metadata: { name: "safety-spc" }, spec: { provider: "fake", parameters: { objects: "a,b" } } },
    });
    base = await mkdtemp(join(tmpdir(), "safety-"));
    await mkdir(join(base, "providers"));
    await mkdir(join(base, "pods"));
    provider = await startFakeProvider(join(base, "providers", "fake.sock"));
    driver = await startDriverProcess(join(base, "csi.sock"), [
      `--nodeid=${NODE}`,
      `--kubeconfig=${inject("kubeconfig")}`,
      `--kubelet-dir=${base}`,
      `--provider-volume=${join(base, "providers")}`,
      "--additional-provider-volume-paths=",
      "--metrics-addr=",
      "--health-addr=",
      "--tmpfs-size=1Mi",
      "--enable-secret-rotation=true",
      "--rotation-poll-interval=1s",
    ]);
    csi = csiClient(driver.socketPath);
  });

  afterAll(async () => {
    csi?.close();
    await driver?.stop();
    await provider?.stop();
    await removeTestTree(base);
  });

  beforeEach(() => {
    provider.behaviour = defaultMount;
    provider.requests.length = 0;
  });

  describe("1. unpublish never deletes what the driver did not make", () => {
    it("unpublishing a populated directory the driver never published is OK and keeps every byte", async () => {
      const { target } = await newTarget();
      await mkdir(join(target, "data", "deep"), { recursive: true });
      await writeFile(join(target, "notes.txt"), "keep me");
      await writeFile(join(target, "data", "deep", "db"), Buffer.from([0, 1, 2, 255]));
      const before = await snapshotTree(target);
      await unpublish(target);
      expect(await snapshotTree(target)).toEqual(before);
    });

    it("publishing over a populated directory is refused naming its content; unpublishing it afterwards keeps it", async () => {
      const { target } = await newTarget();
      await mkdir(target);
      await writeFile(join(target, "a"), "the node's own file");
      await writeFile(join(target, "b"), "another");
      const before = await snapshotTree(target);
      const details = await expectGrpcError(publish(target), grpc.status.FAILED_PRECONDITION);
      expect(details).toBe(`target path ${target} is not empty: it holds 2 entries ("a", "b") the driver did not write; refusing to mount over it`);
      expect(provider.requests).toHaveLength(0);
      expect(await mountsAt(target)).toEqual([]);
      await unpublish(target);
      expect(await snapshotTree(target)).toEqual(before);
    });

    it.each([
      ["a target ending in sub/..", (p: string) => `${p}/sub/..`, "is not clean (it has a '.' or '..' element)"],
      ["a target with //", (p: string) => `${p}//mount`, "is not clean (it has '//' or a trailing '/')"],
      ["a target with a trailing /", (p: string) => `${p}/mount/`, "is not clean (it has '//' or a trailing '/')"],
      ["a target with a . element", (p: string) => `${p}/./mount`, "is not clean (it has a '.' or '..' element)"],
    ])("%s is InvalidArgument for publish and unpublish, and the parent keeps its content", async (_, make, problem) => {
      const { parent } = await newTarget();
      await mkdir(join(parent, "sub"));
      await writeFile(join(parent, "kubelet-file"), "vol_data");
      await writeFile(join(parent, "sub", "x"), "x");
      const before = await snapshotTree(parent);
      const target = make(parent);
      expect(await expectGrpcError(publish(target), grpc.status.INVALID_ARGUMENT)).toBe(`Target path ${target} ${problem}`);
      expect(await expectGrpcError(unpublish(target), grpc.status.INVALID_ARGUMENT)).toBe(`Target path ${target} ${problem}`);
      expect(await snapshotTree(parent)).toEqual(before);
    });

    it.each([
      ["/", "Target path / is the root directory"],
      ["//", "Target path // is not clean (it has '//' or a trailing '/')"],
      ["/tmp/..", "Target path /tmp/.. is not clean (it has a '.' or '..' element)"],
      ["relative/mount", "Target path relative/mount is not absolute"],
    ])("%j never reaches a file system operation", async (target, message) => {
      expect(await expectGrpcError(publish(target), grpc.status.INVALID_ARGUMENT)).toBe(message);
      expect(await expectGrpcError(unpublish(target), grpc.status.INVALID_ARGUMENT)).toBe(message);
    });

    it("a target outside <kubelet-dir>/pods is refused, naming the directory and the flag", async () => {
      const outside = await mkdtemp(join(tmpdir(), "outside-"));
      try {
        await writeFile(join(outside, "f"), "node data");
        for (const target of [join(outside, "mount"), outside, join(base, "pods"), join(base, "podsX", "mount")]) {
          const message = `Target path ${target} is not under ${base}/pods/ (kubelet's pods directory; see --kubelet-dir)`;
          expect(await expectGrpcError(publish(target), grpc.status.INVALID_ARGUMENT)).toBe(message);
          expect(await expectGrpcError(unpublish(target), grpc.status.INVALID_ARGUMENT)).toBe(message);
        }
        expect(await snapshotTree(outside)).toEqual({ f: `file 644 ${Buffer.from("node data").toString("base64")}` });
      } finally {
        await removeTestTree(outside);
      }
    });
  });

  describe("2. rotation never writes onto the node's disk", () => {
    it.each([
      ["umount", ["umount"]],
      ["a lazy umount", ["umount", "-l"]],
    ])("after %s of the volume, refreshes write nothing, warn with MountRotationFailed, and the volume is forgotten", async (_, command) => {
      const { target } = await newTarget();
      await publish(target);
      const versions = { n: 1 };
      provider.behaviour = () => ({ object_version: [{ id: "secret/a", version: `v${++versions.n}` }], files: [{ path: "a", mode: 0o644, contents: `secret-${versions.n}` }] });
      execFileSync(command[0]!, [...command.slice(1), target]);
      expect(await mountsAt(target)).toEqual([]);
      const message = await waitFor(async () => (await eventsFor("MountRotationFailed")).find((m) => m.includes(target)), {
        description: "a MountRotationFailed event naming the target",
      });
      expect(message).toContain(`the volume's tmpfs at ${target} is no longer mounted; nothing was written`);
      // The directory on the node's disk stays empty: no ..data, no secret byte.
      expect(await readdir(target)).toEqual([]);
      // Forgotten by the reconciler: no further refreshes for it.
      const volumeId = `csi-${n}`;
      const calls = refreshesOf(target);
      await reconcilerRounds(3);
      expect(refreshesOf(target)).toBe(calls);
      expect(await readdir(target)).toEqual([]);
      await unpublish(target, volumeId);
      expect(existsSync(target)).toBe(false);
    });

    it("a foreign tmpfs mounted where the volume was is never written into", async () => {
      const { target } = await newTarget();
      await publish(target);
      provider.behaviour = () => ({ object_version: [{ id: "secret/a", version: "v9" }], files: [{ path: "a", mode: 0o644, contents: "rotated" }] });
      execFileSync("umount", [target]);
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "someone-elses", target]);
      try {
        await waitFor(async () => (await eventsFor("MountRotationFailed")).some((m) => m.includes(target)), { description: "MountRotationFailed", timeoutMs: 8000 }).catch((e: unknown) => {
          console.log(driver.output().slice(-3000));
          throw e;
        });
        expect(await readdir(target)).toEqual([]);
        await unpublish(target);
        expect((await mountsAt(target)).map((m) => m.source)).toEqual(["someone-elses"]);
      } finally {
        execFileSync("umount", [target]);
      }
    });
  });

  describe("3 and 4. one operation per target", () => {
    it("two concurrent publishes of one target: one is ABORTED, one tmpfs, and the OK one is readable", async () => {
      const { target } = await newTarget();
      const held = holdProviderAnswers();
      const first = publish(target);
      try {
        // The second comes once the first is asking the provider (so it holds
        // the target), and is answered while the provider still holds the first.
        await held.asked;
        expect(await expectGrpcError(publish(target), grpc.status.ABORTED)).toBe(
          `an operation (NodePublishVolume) is already in progress for ${target} / csi-${n}; retry later`,
        );
      } finally {
        held.answer();
      }
      await first;
      expect((await mountsAt(target)).map((m) => m.source)).toEqual([DRIVER_SOURCE]);
      expect(await readFile(join(target, "a"), "utf8")).toBe("alpha");
      // kubelet's retry then finds the live volume.
      await publish(target);
      expect(await mountsAt(target)).toHaveLength(1);
      await unpublish(target);
      expect(await mountsAt(target)).toEqual([]);
    });

    it("unpublish while a publish is in progress is ABORTED; the retry after it leaves nothing", async () => {
      const { target } = await newTarget();
      const held = holdProviderAnswers();
      const publishing = publish(target);
      try {
        await held.asked;
        expect(await expectGrpcError(unpublish(target), grpc.status.ABORTED)).toContain("an operation (NodePublishVolume) is already in progress");
      } finally {
        held.answer();
      }
      await publishing;
      expect(await readFile(join(target, "a"), "utf8")).toBe("alpha");
      await unpublish(target);
      expect(await mountsAt(target)).toEqual([]);
      expect(existsSync(target)).toBe(false);
    });
  });

  describe("5. mounts the driver did not make", () => {
    it("a foreign bind mount is refused, left mounted, and its content survives publish and unpublish", async () => {
      const { target } = await newTarget();
      await mkdir(target);
      const elsewhere = await mkdtemp(join(base, "bind-source-"));
      await writeFile(join(elsewhere, "host-file"), "host data");
      execFileSync("mount", ["--bind", elsewhere, target]);
      try {
        const before = await snapshotTree(elsewhere);
        expect(await expectGrpcError(publish(target), grpc.status.FAILED_PRECONDITION)).toMatch(/holds a \S+ mount \(source ".*"\) the driver did not make; refusing to mount over it$/);
        expect(provider.requests).toHaveLength(0);
        await unpublish(target);
        expect(await mountsAt(target)).toHaveLength(1);
        expect(await snapshotTree(elsewhere)).toEqual(before);
      } finally {
        execFileSync("umount", [target]);
      }
    });

    it("a foreign tmpfs is not taken for a live volume: refused, never written, never unmounted", async () => {
      const { target } = await newTarget();
      await mkdir(target);
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", target]);
      try {
        await writeFile(join(target, "theirs"), "not the driver's");
        const before = await snapshotTree(target);
        expect(await expectGrpcError(publish(target), grpc.status.FAILED_PRECONDITION)).toBe(
          `target path ${target} holds a tmpfs mount (source "tmpfs") the driver did not make; refusing to mount over it`,
        );
        const volumeId = `csi-${n}`;
        await reconcilerRounds(2);
        await unpublish(target, volumeId);
        expect((await mountsAt(target)).map((m) => m.source)).toEqual(["tmpfs"]);
        expect(await snapshotTree(target)).toEqual(before);
      } finally {
        execFileSync("umount", [target]);
      }
    });
  });

  describe("6. symlinks and aliases", () => {
    it("a target that is a symlink is refused and nothing is mounted at its destination", async () => {
      const { target } = await newTarget();
      const destination = await mkdtemp(join(base, "link-destination-"));
      await symlink(destination, target);
      expect(await expectGrpcError(publish(target), grpc.status.FAILED_PRECONDITION)).toBe(`target path ${target} is a symlink, not a directory; refusing to use it`);
      expect(await mountsAt(destination)).toEqual([]);
      await unpublish(target);
      expect((await lstat(target)).isSymbolicLink()).toBe(true);
      expect(await readdir(destination)).toEqual([]);
    });

    it("a symlink anywhere above the target is refused", async () => {
      const realDir = await mkdtemp(join(base, "real-"));
      const linkedPod = `linked-${++n}`;
      await symlink(realDir, join(base, "pods", linkedPod));
      const target = join(base, "pods", linkedPod, "mount");
      expect(await expectGrpcError(publish(target), grpc.status.FAILED_PRECONDITION)).toBe(
        `target path ${target} is refused: ${join(base, "pods", linkedPod)} is a symlink`,
      );
      expect(await readdir(realDir)).toEqual([]);
      // Nothing of the driver's can be below a symlink: unpublish converges and leaves it.
      await unpublish(target);
      expect((await lstat(join(base, "pods", linkedPod))).isSymbolicLink()).toBe(true);
    });

    it("unpublish of a target whose pod directory kubelet already removed is OK", async () => {
      await unpublish(join(base, "pods", "gone-pod", "volumes", "kubernetes.io~csi", "v", "mount"));
    });

    it("two targets resolving to one directory: the second is refused, and unpublishing it keeps the first pod's volume", async () => {
      const podA = `pod-a-${++n}`;
      const podB = `pod-b-${n}`;
      const a = join(base, "pods", podA, "volumes", "kubernetes.io~csi", "v", "mount");
      await mkdir(join(a, ".."), { recursive: true });
      await publish(a);
      // pods/<B> shows pods/<A>, volume included.
      await mkdir(join(base, "pods", podB));
      execFileSync("mount", ["--rbind", join(base, "pods", podA), join(base, "pods", podB)]);
      try {
        const b = join(base, "pods", podB, "volumes", "kubernetes.io~csi", "v", "mount");
        expect(await readFile(join(b, "a"), "utf8")).toBe("alpha");
        provider.requests.length = 0;
        expect(await expectGrpcError(csi.call("Node", "NodePublishVolume", publishRequest(b, "csi-b")), grpc.status.FAILED_PRECONDITION)).toBe(
          `target path ${b} shows the volume of another target (${a}); refusing to share it`,
        );
        expect(provider.requests).toHaveLength(0);
        await unpublish(b, "csi-b");
        expect(await readFile(join(a, "a"), "utf8")).toBe("alpha");
        expect((await mountsAt(a)).map((m) => m.source)).toEqual([DRIVER_SOURCE]);
      } finally {
        execFileSync("umount", ["-R", join(base, "pods", podB)]);
      }
      await unpublish(a);
      expect(await mountsAt(a)).toEqual([]);
    });
  });

  describe("7. rotation space", () => {
    const bigAnswer = (kib: number, version: string): FakeMountResponse => ({
      object_version: [{ id: "secret/big", version }],
      files: [{ path: "big", mode: 0o644, contents: Buffer.alloc(kib * 1024, version) }],
    });

    it("content above half of --tmpfs-size is refused at the first mount, naming the flag; nothing stays mounted", async () => {
      const { target } = await newTarget();
      provider.behaviour = () => bigAnswer(600, "1");
      const details = await expectGrpcError(publish(target), grpc.status.FAILED_PRECONDITION);
      expect(details).toContain("the 1 files take 600 KiB on tmpfs, more than half of the volume's 1024 KiB");
      expect(details).toContain("raise --tmpfs-size (now 1Mi) to at least 1200 KiB");
      expect(await mountsAt(target)).toEqual([]);
      expect(existsSync(target)).toBe(false);
    });

    it("content up to half of --tmpfs-size rotates every time", async () => {
      const { target } = await newTarget();
      let version = 1;
      provider.behaviour = () => bigAnswer(500, String(version));
      await publish(target);
      for (const next of [2, 3, 4]) {
        version = next;
        await waitFor(async () => (await readFile(join(target, "big")))[0] === String(next).charCodeAt(0), { description: `rotation to version ${next}` });
      }
      expect((await readFile(join(target, "big"))).length).toBe(500 * 1024);
      await unpublish(target);
    });
  });

  describe("8. names, files at the target, deadlines", () => {
    it.each([
      ["a 400-byte element of 200 characters", "é".repeat(200), "has an element longer than 255 bytes"],
      ["a newline", "new\nline", "contains a control character (newline, tab, NUL, ...)"],
      ["a carriage return", "cr\rhere", "contains a control character (newline, tab, NUL, ...)"],
      ["a tab", "tab\there", "contains a control character (newline, tab, NUL, ...)"],
    ])("a target name with %s is InvalidArgument", async (_, name, problem) => {
      const { parent } = await newTarget();
      const target = join(parent, name);
      expect(await expectGrpcError(publish(target), grpc.status.INVALID_ARGUMENT)).toBe(`Target path ${JSON.stringify(target)} ${problem}`.replace(JSON.stringify(target), /[\n\r\t]/.test(target) ? JSON.stringify(target) : target));
      expect(await readdir(parent)).toEqual([]);
    });

    it.each([
      ["a 400-byte name of 200 characters", "é".repeat(200), "the path has an element longer than 255 bytes"],
      ["a newline", "a\nb", "the path contains a control character (newline, tab, NUL, ...)"],
      ["a tab", "a\tb", "the path contains a control character (newline, tab, NUL, ...)"],
    ])("a provider file name with %s is refused with a clear error and nothing stays mounted", async (_, name, problem) => {
      const { target } = await newTarget();
      provider.behaviour = () => ({ object_version: [{ id: "x", version: "1" }], files: [{ path: name, mode: 0o644, contents: "v" }] });
      const details = await expectGrpcError(publish(target), grpc.status.FAILED_PRECONDITION);
      expect(details).toContain(`invalid file paths from provider: ${JSON.stringify(name)}: ${problem}`);
      expect(details).not.toContain("\n");
      expect(await mountsAt(target)).toEqual([]);
    });

    it("a provider file path too long for the kernel once below the target is refused before anything is written; the longest that fits is written", async () => {
      const { target } = await newTarget();
      // 16 elements of 255 bytes: 4,095 bytes, within the limit on its own.
      const tooLong = Array.from({ length: 16 }, (_, i) => String.fromCharCode(97 + i).repeat(255)).join("/");
      provider.behaviour = () => ({ object_version: [{ id: "x", version: "1" }], files: [{ path: tooLong, mode: 0o644, contents: "v" }] });
      const details = await expectGrpcError(publish(target), grpc.status.FAILED_PRECONDITION);
      expect(details).toContain(`is 4095 bytes: below the target ${target} it would take`);
      expect(details).toContain("-byte path limit of the node's kernel (PATH_MAX)");
      const fits = Number(/at most (\d+) bytes fit/.exec(details)![1]);
      expect(await mountsAt(target)).toEqual([]);
      expect(existsSync(target)).toBe(false);
      // The limit it names is the real one: a path of exactly that many bytes is written.
      const longest = tooLong.slice(0, fits).replace(/\/$/, "x");
      provider.behaviour = () => ({ object_version: [{ id: "x", version: "1" }], files: [{ path: longest, mode: 0o644, contents: "fits" }] });
      await publish(target);
      expect(await readFile(join(target, longest), "utf8")).toBe("fits");
      await unpublish(target);
    });

    it("a regular file at the target: publish is refused, unpublish converges and keeps the file", async () => {
      const { target } = await newTarget();
      await writeFile(target, "a file where the directory should be");
      expect(await expectGrpcError(publish(target), grpc.status.FAILED_PRECONDITION)).toBe(`target path ${target} is a regular file, not a directory; refusing to use it`);
      await unpublish(target);
      await unpublish(target);
      expect(await readFile(target, "utf8")).toBe("a file where the directory should be");
    });

    it("once the caller's deadline has passed the driver stops: nothing is mounted or created afterwards", async () => {
      // The provider answers once the caller has given up: late by the order of
      // events, not by a sleep. The driver gives the provider at least 1 s even
      // when the caller allows 500 ms, so the late answer has about 500 ms to
      // reach the driver inside its provider call, and the driver must reach
      // the provider within the first 500 ms. A busy machine can miss either;
      // the driver then stops at an earlier step or at its own provider
      // deadline. So: every try must leave nothing behind, and the check before
      // writing must be what stopped at least one of up to five tries.
      const lines = (text: string) => driver.output().split(text).length - 1;
      const STOPPED_BEFORE_WRITING = "the caller's deadline passed before writing the files";
      const before = lines(STOPPED_BEFORE_WRITING);
      for (let attempt = 1; attempt <= 5 && lines(STOPPED_BEFORE_WRITING) === before; attempt++) {
        const { parent, target } = await newTarget();
        let callerGaveUp!: () => void;
        const gaveUp = new Promise<void>((r) => (callerGaveUp = r));
        provider.behaviour = async (req) => {
          await gaveUp;
          return defaultMount(req, new grpc.Metadata());
        };
        const failedBefore = lines('"msg":"csi call failed"');
        try {
          await expectGrpcError(publish(target, 500), grpc.status.DEADLINE_EXCEEDED);
        } finally {
          callerGaveUp();
        }
        // the driver has finished the call when it logs its failure
        await waitFor(() => lines('"msg":"csi call failed"') > failedBefore, { description: "the driver to end the publish" });
        expect(await mountsAt(target)).toEqual([]);
        expect(await readdir(parent)).toEqual([]);
      }
      expect(lines(STOPPED_BEFORE_WRITING), "no try was stopped by the check before writing").toBeGreaterThan(before);
    });
  });

  describe("9. the driver's own mounts, recognised after a restart, a crash or an upgrade", () => {
    it("a tmpfs of the driver's with no content (a crash between mounting and writing) is mounted again, once", async () => {
      const { pod, target } = await podWithNextVolume("safety-spc");
      await mkdir(target);
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", DRIVER_SOURCE, target]);
      await publishFor(target, pod);
      expect((await mountsAt(target)).map((m) => m.source)).toEqual([DRIVER_SOURCE]);
      expect(await readFile(join(target, "a"), "utf8")).toBe("alpha");
      await unpublish(target);
      expect(await mountsAt(target)).toEqual([]);
      expect(existsSync(target)).toBe(false);
    });

    it("a volume upstream's driver mounted before an upgrade (source tmpfs, named by this node's status object) is republished and unpublished", async () => {
      const { pod, target } = await podWithNextVolume(`safety-spc-${n + 1}`);
      await mkdir(target);
      execFileSync("mount", ["-t", "tmpfs", "tmpfs", target]);
      await mkdir(join(target, "..2026_01_01_00_00_00.1"));
      await writeFile(join(target, "..2026_01_01_00_00_00.1", "a"), "upstream-written");
      await symlink("..2026_01_01_00_00_00.1", join(target, "..data"));
      await symlink("..data/a", join(target, "a"));
      await recordPodStatus(target, pod);
      await publishFor(target, pod);
      expect(await mountsAt(target)).toHaveLength(1);
      expect(provider.requests).toHaveLength(0);
      await unpublish(target);
      expect(await mountsAt(target)).toEqual([]);
      expect(existsSync(target)).toBe(false);
    });

    it("a tmpfs mounted after the status object was written is not taken for upstream's volume", async () => {
      const { pod, target } = await podWithNextVolume(`safety-spc-${n + 1}`);
      await mkdir(target);
      await recordPodStatus(target, pod);
      // Status timestamps have whole seconds: mount clearly later than the object.
      await sleep(2_100);
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", target]);
      try {
        await writeFile(join(target, "theirs"), "x");
        expect(await expectGrpcError(publishFor(target, pod), grpc.status.FAILED_PRECONDITION)).toContain('holds a tmpfs mount (source "tmpfs") the driver did not make');
        await unpublish(target);
        expect((await mountsAt(target)).map((m) => m.source)).toEqual(["tmpfs"]);
        expect(await readFile(join(target, "theirs"), "utf8")).toBe("x");
      } finally {
        execFileSync("umount", [target]);
      }
    });
  });

  describe("10. a tmpfs with the driver's source name that the driver cannot prove its own", () => {
    it("is refused by publish, never written by rotation, left mounted by unpublish, even with a status object naming it", async () => {
      // The pod "app" declares no CSI volume: nothing proves the tmpfs a volume of the driver's.
      const { target } = await newTarget();
      await mkdir(target);
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", DRIVER_SOURCE, target]);
      try {
        await mkdir(join(target, "..2026_01_01_00_00_00.1"));
        await writeFile(join(target, "..2026_01_01_00_00_00.1", "a"), "someone else's");
        await symlink("..2026_01_01_00_00_00.1", join(target, "..data"));
        await symlink("..data/a", join(target, "a"));
        await recordPodStatus(target);
        const before = await snapshotTree(target);
        expect(await expectGrpcError(publish(target), grpc.status.FAILED_PRECONDITION)).toBe(
          `target path ${target} holds a tmpfs mount (source "${DRIVER_SOURCE}") the driver did not make; refusing to mount over it`,
        );
        expect(provider.requests).toHaveLength(0);
        await reconcilerRounds(2);
        await unpublish(target);
        expect((await mountsAt(target)).map((m) => m.source)).toEqual([DRIVER_SOURCE]);
        expect(await snapshotTree(target)).toEqual(before);
        expect(refreshesOf(target)).toBe(0);
        expect(driver.output()).toContain(`"target":"${target}"`);
        expect(driver.output()).toContain("left alone a tmpfs with the driver's source name that the driver has no record of and cannot prove its own");
      } finally {
        execFileSync("umount", [target]);
      }
    });

    it("after a restart, with neither pod nor status object left, unpublish takes it only by kubelet's own record of the volume", async () => {
      const { parent, target } = await newTarget();
      await mkdir(target);
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", DRIVER_SOURCE, target]);
      try {
        // kubelet's vol_data.json, as it writes it beside every CSI volume's mount directory.
        const volData = { specVolID: `vol-${n}`, volumeHandle: `csi-${n}`, driverName: DRIVER_SOURCE, nodeName: NODE, volumeLifecycleMode: "Ephemeral" };
        await writeFile(join(parent, "vol_data.json"), JSON.stringify({ ...volData, volumeHandle: "csi-another-volume" }));
        await unpublish(target);
        expect((await mountsAt(target)).map((m) => m.source)).toEqual([DRIVER_SOURCE]);
        await writeFile(join(parent, "vol_data.json"), JSON.stringify({ ...volData, driverName: "other.csi.example.com" }));
        await unpublish(target);
        expect((await mountsAt(target)).map((m) => m.source)).toEqual([DRIVER_SOURCE]);
        await writeFile(join(parent, "vol_data.json"), JSON.stringify(volData));
        await unpublish(target);
        expect(await mountsAt(target)).toEqual([]);
        expect(existsSync(target)).toBe(false);
      } finally {
        if ((await mountsAt(target)).length > 0) execFileSync("umount", [target]);
      }
    });
  });

  describe("11. path elements swapped under the driver", () => {
    it("the volume's directory moved away and replaced by a symlink: unpublish fails while the tmpfs is still mounted, keeps the record, and removes nothing", async () => {
      const { parent, target } = await newTarget();
      await publish(target);
      const moved = `${parent}-moved`;
      const outside = await mkdtemp(join(tmpdir(), "outside-"));
      try {
        await mkdir(join(outside, "mount"));
        execFileSync("mv", [parent, moved]);
        await symlink(outside, parent);
        const details = await expectGrpcError(unpublish(target), grpc.status.FAILED_PRECONDITION);
        expect(details).toContain(`the driver's tmpfs of this target is still mounted at ${join(moved, "mount")}, but the target path no longer leads to it`);
        expect(existsSync(join(outside, "mount"))).toBe(true);
        expect((await mountsAt(join(moved, "mount"))).map((m) => m.source)).toEqual([DRIVER_SOURCE]);
        // Put back as kubelet had it: the retry unmounts the recorded tmpfs and removes the target.
        execFileSync("rm", [parent]);
        execFileSync("mv", [moved, parent]);
        await unpublish(target);
        expect(await mountsAt(target)).toEqual([]);
        expect(existsSync(target)).toBe(false);
      } finally {
        await removeTestTree(outside);
      }
    });

    it("the volume's directory swapped for a symlink while a first publish waits for the provider: the failed publish unmounts its tmpfs and removes nothing elsewhere", async () => {
      const { parent, target } = await newTarget();
      const hidden = `${parent}-hidden`;
      const outside = await mkdtemp(join(tmpdir(), "outside-"));
      try {
        await mkdir(join(outside, "mount"));
        await writeFile(join(outside, "keep"), "node data");
        const before = await snapshotTree(outside);
        // While the driver waits for the answer, kubelet's directory (with the
        // driver's new tmpfs in it) goes elsewhere and a symlink to the decoy takes its place.
        provider.behaviour = () => {
          execFileSync("mv", [parent, hidden]);
          execFileSync("ln", ["-s", outside, parent]);
          return { error: { code: "FailedToMount" } };
        };
        await expectGrpcError(publish(target), grpc.status.UNKNOWN);
        expect(await snapshotTree(outside)).toEqual(before);
        expect(await mountsAt(join(hidden, "mount"))).toEqual([]);
        expect(await mountsAt(join(outside, "mount"))).toEqual([]);
        // Put back as kubelet had it: the directory the driver made is removed by the next unpublish.
        execFileSync("rm", [parent]);
        execFileSync("mv", [hidden, parent]);
        await unpublish(target);
        expect(existsSync(target)).toBe(false);
      } finally {
        if ((await lstat(parent).catch(() => undefined))?.isSymbolicLink()) execFileSync("rm", [parent]);
        if (existsSync(hidden)) execFileSync("mv", [hidden, parent]);
        await removeTestTree(outside);
      }
    });
  });
});
