// NodePublishVolume / NodeUnpublishVolume through the driver's real socket,
// with SecretProviderClasses in a real kube-apiserver, a provider serving the
// provider API on a real unix socket, and real tmpfs mounts.
import { existsSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readlink, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { listMounts } from "../../../src/driver/volume/mounter.ts";
import { apiErrorCode, applyYaml, createNamespace, kubeConfigFromInjected, rawRequest, waitFor } from "../../harness/kube.ts";
import { csiClient, expectGrpcError, type CsiClient } from "../../support/csi-client.ts";
import { metricsUrl, removeTestTree, requireRoot, startDriverProcess, type DriverProcess } from "../../support/driver-process.ts";
import { defaultMount, sleep, startFakeProvider, type FakeProvider } from "../../support/fake-provider.ts";

const GROUP = "secrets-store.csi.x-k8s.io";
const TOKENS = "csi.storage.k8s.io/serviceAccount.tokens";
const NS = "publish-test";

async function isTmpfs(path: string): Promise<boolean> {
  return (await listMounts()).some((m) => m.mountPoint === path && m.fsType === "tmpfs");
}

describe("NodePublishVolume against a real kube-apiserver", () => {
  let base: string;
  let providerDir: string;
  let kc: KubeConfig;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let provider: FakeProvider;
  let driver: DriverProcess;
  let csi: CsiClient;
  let podUid: string;
  let n = 0;

  const volumeContext = (extra: Record<string, string> = {}) => ({
    secretProviderClass: "fake-spc",
    "csi.storage.k8s.io/pod.name": "app",
    "csi.storage.k8s.io/pod.namespace": NS,
    "csi.storage.k8s.io/pod.uid": podUid,
    "csi.storage.k8s.io/serviceAccount.name": "default",
    "csi.storage.k8s.io/ephemeral": "true",
    ...extra,
  });

  /** A fresh kubelet-style target path whose parent exists. */
  async function newTarget(): Promise<string> {
    const vol = join(base, "pods", podUid, "volumes", "kubernetes.io~csi", `vol-${++n}`);
    await mkdir(vol, { recursive: true });
    return join(vol, "mount");
  }

  const publishRequest = (target: string, overrides: Record<string, unknown> = {}) => ({
    volume_id: `csi-${n}`,
    target_path: target,
    volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
    readonly: true,
    secrets: {},
    volume_context: volumeContext(),
    ...overrides,
  });

  async function createSpc(name: string, providerName: string, parameters: Record<string, string> = { objects: "a,b" }) {
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: "v1",
      namespace: NS,
      plural: "secretproviderclasses",
      body: { apiVersion: `${GROUP}/v1`, kind: "SecretProviderClass", metadata: { name }, spec: { provider: providerName, parameters } },
    });
  }

  type PodStatusObject = { metadata: { labels: Record<string, string>; ownerReferences: Array<Record<string, unknown>> }; status: Record<string, unknown> };
  async function readStatus(name: string): Promise<PodStatusObject | undefined> {
    try {
      return (await custom.getNamespacedCustomObject({ group: GROUP, version: "v1", namespace: NS, plural: "secretproviderclasspodstatuses", name })) as PodStatusObject;
    } catch (err) {
      if (apiErrorCode(err) === 404) return undefined;
      throw err;
    }
  }

  beforeAll(async () => {
    requireRoot();
    kc = kubeConfigFromInjected();
    core = kc.makeApiClient(CoreV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
    await createNamespace(kc, NS);
    const pod = await core.createNamespacedPod({
      namespace: NS,
      body: { metadata: { name: "app" }, spec: { containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] } },
    });
    podUid = pod.metadata!.uid!;
    await createSpc("fake-spc", "fake");
    await createSpc("spc-no-provider-socket", "absent");
    await createSpc("spc-bad-paths", "bad");
    await createSpc("spc-future-api", "future");

    base = await mkdtemp(join(tmpdir(), "publish-"));
    providerDir = join(base, "providers");
    await mkdir(providerDir);
    provider = await startFakeProvider(join(providerDir, "fake.sock"));
    driver = await startDriverProcess(join(base, "csi.sock"), [
      "--nodeid=node-a",
      `--kubelet-dir=${base}`,
      `--kubeconfig=${inject("kubeconfig")}`,
      `--provider-volume=${providerDir}`,
      `--additional-provider-volume-paths=${join(base, "no-such-dir")}`,
      "--metrics-addr=127.0.0.1:0",
      "--health-addr=127.0.0.1:0",
      "--tmpfs-size=1Mi",
    ], { LOG_LEVEL: "debug" });
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

  it("mounts the provider's files on a size-limited tmpfs and records the pod status", async () => {
    const target = await newTarget();
    await csi.call("Node", "NodePublishVolume", publishRequest(target));

    expect(await isTmpfs(target)).toBe(true);
    const mount = (await listMounts()).find((m) => m.mountPoint === target)!;
    expect(mount.fsType).toBe("tmpfs");
    expect(await readFile(join(target, "a"), "utf8")).toBe("alpha");
    expect(await readFile(join(target, "dir/b"), "utf8")).toBe("bravo");
    const data = await readlink(join(target, "..data"));
    expect((await stat(join(target, data, "a"))).mode & 0o777).toBe(0o644);
    expect((await stat(join(target, data, "dir/b"))).mode & 0o777).toBe(0o600);
    expect((await stat(target)).mode & 0o777).toBe(0o755);

    // What the provider was sent, as upstream sends it.
    expect(provider.requests).toHaveLength(1);
    const sent = provider.requests[0]!;
    const attributes = JSON.parse(sent.attributes) as Record<string, string>;
    expect(attributes.objects).toBe("a,b");
    expect(attributes["csi.storage.k8s.io/pod.name"]).toBe("app");
    expect(attributes.secretProviderClass).toBe("fake-spc");
    expect(Object.keys(attributes)).toEqual(Object.keys(attributes).sort());
    expect(sent.secrets).toBe("null");
    expect(sent.permission).toBe("420");
    expect(sent.target_path).toBe(target);
    expect(provider.authorities[0]).toBe("localhost");

    // Written once the publish has answered.
    const status = await waitFor(() => readStatus(`app-${NS}-fake-spc`), { description: "the volume's status object" });
    expect(status.metadata.labels["internal.secrets-store.csi.k8s.io/node-name"]).toBe("node-a");
    expect(status.metadata.ownerReferences).toEqual([{ apiVersion: "v1", kind: "Pod", name: "app", uid: podUid }]);
    expect(status.status).toEqual({
      podName: "app",
      secretProviderClassName: "fake-spc",
      mounted: true,
      targetPath: target,
      objects: [
        { id: "secret/a", version: "v1" },
        { id: "secret/b", version: "v1" },
      ],
    });

    // Republish of a live mount is cheap: no provider call.
    await csi.call("Node", "NodePublishVolume", publishRequest(target));
    expect(provider.requests).toHaveLength(1);

    await csi.call("Node", "NodeUnpublishVolume", { volume_id: "csi-x", target_path: target });
    expect(await isTmpfs(target)).toBe(false);
    expect(existsSync(target)).toBe(false);
    await csi.call("Node", "NodeUnpublishVolume", { volume_id: "csi-x", target_path: target });

    const metrics = await (await fetch(await metricsUrl(driver))).text();
    expect(metrics).toMatch(/node_publish_total\{provider="fake",os_type="linux"\} [1-9]/);
    expect(metrics).toMatch(/node_unpublish_total\{os_type="linux"\} [1-9]/);
  });

  it("answers before the status object is written: one the API server refuses leaves the volume mounted and is written once it is taken", async () => {
    const late = await core.createNamespacedPod({
      namespace: NS,
      body: { metadata: { name: "late" }, spec: { containers: [{ name: "app", image: "registry.k8s.io/pause:3.10" }] } },
    });
    const statusName = `late-${NS}-fake-spc`;
    // Every status object write in this namespace refused, as by an admission policy or a webhook that is down.
    const policy = `refuse-pod-statuses-${NS}`;
    await applyYaml(
      kc,
      `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: ${policy}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - {apiGroups: ["${GROUP}"], apiVersions: ["*"], operations: ["CREATE", "UPDATE"], resources: ["secretproviderclasspodstatuses"]}
  validations:
    - {expression: "false", message: "status objects are refused in this test"}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: ${policy}}
spec:
  policyName: ${policy}
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ${NS}}}
`,
    );
    const removePolicy = async () => {
      await rawRequest(kc, "DELETE", `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/${policy}`);
      await rawRequest(kc, "DELETE", `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/${policy}`);
    };
    try {
      // The policy is in force once a status object of our own is refused.
      let probe = 0;
      await waitFor(
        async () => {
          const name = `probe-${++probe}`;
          try {
            await custom.createNamespacedCustomObject({
              group: GROUP,
              version: "v1",
              namespace: NS,
              plural: "secretproviderclasspodstatuses",
              body: { apiVersion: `${GROUP}/v1`, kind: "SecretProviderClassPodStatus", metadata: { name } },
            });
          } catch (err) {
            return apiErrorCode(err) === 422 || apiErrorCode(err) === 403;
          }
          await custom.deleteNamespacedCustomObject({ group: GROUP, version: "v1", namespace: NS, plural: "secretproviderclasspodstatuses", name });
          return false;
        },
        { description: "the admission policy to refuse status objects" },
      );

      const target = await newTarget();
      const context = volumeContext({ "csi.storage.k8s.io/pod.name": "late", "csi.storage.k8s.io/pod.uid": late.metadata!.uid! });
      await csi.call("Node", "NodePublishVolume", publishRequest(target, { volume_context: context }));
      expect(await isTmpfs(target)).toBe(true);
      expect(await readFile(join(target, "a"), "utf8")).toBe("alpha");
      await waitFor(() => driver.output().includes("could not write the volume's status object; the volume is mounted, retrying"), {
        description: "the driver to log the refused status write",
      });
      expect(await readStatus(statusName)).toBeUndefined();

      await removePolicy();
      const status = await waitFor(() => readStatus(statusName), { description: "the status object, once the API server takes it" });
      expect(status.metadata.ownerReferences).toEqual([{ apiVersion: "v1", kind: "Pod", name: "late", uid: late.metadata!.uid }]);
      expect(status.status).toMatchObject({ podName: "late", mounted: true, targetPath: target, objects: [{ id: "secret/a", version: "v1" }, { id: "secret/b", version: "v1" }] });

      await csi.call("Node", "NodeUnpublishVolume", { volume_id: `csi-${n}`, target_path: target });
      expect(await isTmpfs(target)).toBe(false);
    } finally {
      await removePolicy().catch(() => undefined);
    }
  });

  describe("a class changed a moment ago", () => {
    // Each file is named after the class's `objects` parameter, so a volume shows which version of the class it was mounted from.
    const fromClass = (req: { attributes: string }) => {
      const objects = (JSON.parse(req.attributes) as Record<string, string>).objects!;
      return { object_version: [{ id: `secret/${objects}`, version: "v1" }], files: [{ path: objects, mode: 0o644, contents: objects }] };
    };
    const replaceClass = async (spec: { provider: string; parameters: Record<string, string> }) => {
      const current = (await custom.getNamespacedCustomObject({ group: GROUP, version: "v1", namespace: NS, plural: "secretproviderclasses", name: "fresh-spc" })) as {
        metadata: Record<string, unknown>;
      };
      await custom.replaceNamespacedCustomObject({
        group: GROUP,
        version: "v1",
        namespace: NS,
        plural: "secretproviderclasses",
        name: "fresh-spc",
        body: { apiVersion: `${GROUP}/v1`, kind: "SecretProviderClass", metadata: current.metadata, spec },
      });
    };
    const publishFresh = async () => {
      const target = await newTarget();
      await csi.call("Node", "NodePublishVolume", publishRequest(target, { volume_context: volumeContext({ secretProviderClass: "fresh-spc" }) }));
      return target;
    };

    it("is what the next publish mounts: each publish reads the class, the copy only lets the provider call start early", async () => {
      provider.behaviour = fromClass;
      await createSpc("fresh-spc", "fake", { objects: "one" });
      const first = await publishFresh();
      expect(await readFile(join(first, "one"), "utf8")).toBe("one");
      // Unchanged: one provider call per publish.
      const second = await publishFresh();
      expect(await readFile(join(second, "one"), "utf8")).toBe("one");
      expect(provider.requests).toHaveLength(2);

      await replaceClass({ provider: "fake", parameters: { objects: "two" } });
      const third = await publishFresh();
      expect(await readFile(join(third, "two"), "utf8")).toBe("two");
      expect(existsSync(join(third, "one"))).toBe(false);
      expect(JSON.parse(provider.requests.at(-1)!.attributes).objects).toBe("two");
      for (const target of [first, second, third]) await csi.call("Node", "NodeUnpublishVolume", { volume_id: "v", target_path: target });
    });

    it("leaves none of the old class's files when the provider writes them itself (files: [] in its answer)", async () => {
      // A provider of the older API writes into the target path it is given.
      provider.behaviour = (req) => {
        const objects = (JSON.parse(req.attributes) as Record<string, string>).objects!;
        writeFileSync(join(req.target_path, objects), objects);
        return { object_version: [{ id: `secret/${objects}`, version: "v1" }] };
      };
      await replaceClass({ provider: "fake", parameters: { objects: "old" } });
      const warm = await publishFresh();
      expect(await readFile(join(warm, "old"), "utf8")).toBe("old");
      await replaceClass({ provider: "fake", parameters: { objects: "new" } });
      const changed = await publishFresh();
      expect(await readFile(join(changed, "new"), "utf8")).toBe("new");
      // Asked with the node's copy first, then again with the class as it is now, on a fresh tmpfs.
      expect(provider.requests.slice(-2).map((r) => JSON.parse(r.attributes).objects)).toEqual(["old", "new"]);
      expect(existsSync(join(changed, "old"))).toBe(false);
      for (const target of [warm, changed]) await csi.call("Node", "NodeUnpublishVolume", { volume_id: "v", target_path: target });
    });

    it("to another provider, or deleted, fails the next publish as a GET would, and nothing stays mounted", async () => {
      provider.behaviour = fromClass;
      await replaceClass({ provider: "fake", parameters: { objects: "three" } });
      const warm = await publishFresh();
      await csi.call("Node", "NodeUnpublishVolume", { volume_id: "v", target_path: warm });

      await replaceClass({ provider: "absent", parameters: { objects: "four" } });
      const moved = await newTarget();
      const details = await expectGrpcError(
        csi.call("Node", "NodePublishVolume", publishRequest(moved, { volume_context: volumeContext({ secretProviderClass: "fresh-spc" }) })),
        grpc.status.UNAVAILABLE,
      );
      expect(details).toContain('provider not found: provider "absent"');
      expect(existsSync(moved)).toBe(false);

      await replaceClass({ provider: "fake", parameters: { objects: "five" } });
      await csi.call("Node", "NodeUnpublishVolume", { volume_id: "v", target_path: await publishFresh() });
      await custom.deleteNamespacedCustomObject({ group: GROUP, version: "v1", namespace: NS, plural: "secretproviderclasses", name: "fresh-spc" });
      const gone = await newTarget();
      const notFound = await expectGrpcError(
        csi.call("Node", "NodePublishVolume", publishRequest(gone, { volume_context: volumeContext({ secretProviderClass: "fresh-spc" }) })),
        grpc.status.NOT_FOUND,
      );
      expect(notFound).toBe(`failed to get secretproviderclass ${NS}/fresh-spc, error: secretproviderclasses.${GROUP} "fresh-spc" not found`);
      expect(await isTmpfs(gone)).toBe(false);
      expect(existsSync(gone)).toBe(false);
    });
  });

  it("sends service-account tokens from secrets before the volume context", async () => {
    const target = await newTarget();
    const loggedBefore = driver.output().length;
    await csi.call(
      "Node",
      "NodePublishVolume",
      publishRequest(target, { secrets: { [TOKENS]: "from-secrets", clientid: "id" }, volume_context: volumeContext({ [TOKENS]: "from-context" }) }),
    );
    const sent = provider.requests[0]!;
    expect(JSON.parse(sent.attributes)[TOKENS]).toBe("from-secrets");
    expect(JSON.parse(sent.secrets)).toEqual({ [TOKENS]: "from-secrets", clientid: "id" });
    await csi.call("Node", "NodeUnpublishVolume", { volume_id: "v", target_path: target });
    // Every CSI call is logged at debug level, with secrets and tokens stripped
    // (waited for, not slept for: the lines reach this process through a pipe).
    const logged = await waitFor(
      () => {
        const lines = driver.output().slice(loggedBefore).split("\n");
        const call = (method: string) => lines.find((l) => l.includes(`"method":"${method}"`) && l.includes('"msg":"csi call"'));
        return call("NodeUnpublishVolume") && call("NodePublishVolume");
      },
      { description: "the driver's log lines of both calls" },
    );
    expect(logged).toContain("***stripped***");
    for (const secret of ["from-secrets", "from-context", "alpha", "bravo"]) expect(driver.output()).not.toContain(secret);
  });

  it("never reports success for a target that is a plain directory, not a live tmpfs", async () => {
    const target = await newTarget();
    await mkdir(target);
    await csi.call("Node", "NodePublishVolume", publishRequest(target));
    expect(await isTmpfs(target)).toBe(true);
    expect(provider.requests).toHaveLength(1);
    await csi.call("Node", "NodeUnpublishVolume", { volume_id: "v", target_path: target });
  });

  it("a 1 MiB volume_id or volume attribute gives log lines of a few KiB", async () => {
    const target = await newTarget();
    const huge = "v".repeat(1024 * 1024);
    const outputBefore = driver.output().length;
    await csi.call("Node", "NodePublishVolume", publishRequest(target, { volume_id: huge, volume_context: volumeContext({ padding: huge }) }));
    await csi.call("Node", "NodeUnpublishVolume", { volume_id: huge, target_path: target });
    await expectGrpcError(csi.call("Node", "NodeUnpublishVolume", { volume_id: huge, target_path: "relative" }), grpc.status.INVALID_ARGUMENT);
    const lines = driver.output().slice(outputBefore).split("\n").filter(Boolean);
    const debug = lines.filter((l) => l.includes('"msg":"csi call"'));
    expect(debug.length).toBeGreaterThanOrEqual(2);
    expect(debug[0]).toContain(`"volume_id":"${"v".repeat(512)}…(1048576 characters)"`);
    const longest = Math.max(...lines.map((l) => l.length));
    console.log(`1 MiB volume_id and attribute: ${lines.length} log lines, the longest ${longest} bytes`);
    expect(longest).toBeLessThan(8 * 1024);
  });

  describe("bad input", () => {
    it.each([
      ["volume_capability", { volume_capability: null }, "Volume capability missing in request"],
      ["volume_id", { volume_id: "" }, "Volume ID missing in request"],
      ["target_path", { target_path: "" }, "Target path missing in request"],
      ["volume_context", { volume_context: {} }, "Volume attributes missing in request"],
      ["readonly", { readonly: false }, "Readonly is not true in request: set readOnly: true on the pod's csi volume"],
    ])("missing %s is InvalidArgument", async (_field, overrides, message) => {
      const target = await newTarget();
      const details = await expectGrpcError(csi.call("Node", "NodePublishVolume", publishRequest(target, overrides)), grpc.status.INVALID_ARGUMENT);
      expect(details).toBe(message);
      expect(existsSync(target)).toBe(false);
    });

    it("a volume context without secretProviderClass is InvalidArgument", async () => {
      const ctx = volumeContext();
      delete (ctx as Record<string, string>).secretProviderClass;
      const details = await expectGrpcError(csi.call("Node", "NodePublishVolume", publishRequest(await newTarget(), { volume_context: ctx })), grpc.status.INVALID_ARGUMENT);
      expect(details).toBe("secretProviderClass is not set");
    });

    it("unpublish without volume_id or target_path is InvalidArgument", async () => {
      expect(await expectGrpcError(csi.call("Node", "NodeUnpublishVolume", { target_path: "/x" }), grpc.status.INVALID_ARGUMENT)).toBe("Volume ID missing in request");
      expect(await expectGrpcError(csi.call("Node", "NodeUnpublishVolume", { volume_id: "v" }), grpc.status.INVALID_ARGUMENT)).toBe("Target path missing in request");
    });

    it("a SecretProviderClass that does not exist is NotFound and names namespace/name", async () => {
      const target = await newTarget();
      const details = await expectGrpcError(
        csi.call("Node", "NodePublishVolume", publishRequest(target, { volume_context: volumeContext({ secretProviderClass: "missing" }) })),
        grpc.status.NOT_FOUND,
      );
      expect(details).toBe(`failed to get secretproviderclass ${NS}/missing, error: secretproviderclasses.${GROUP} "missing" not found`);
      expect(existsSync(target)).toBe(false);
    });

    it("a provider without a socket is Unavailable and names the provider", async () => {
      const target = await newTarget();
      const details = await expectGrpcError(
        csi.call("Node", "NodePublishVolume", publishRequest(target, { volume_context: volumeContext({ secretProviderClass: "spc-no-provider-socket" }) })),
        grpc.status.UNAVAILABLE,
      );
      expect(details).toContain('provider not found: provider "absent"');
      expect(details).toContain(`no socket absent.sock in ${join(base, "no-such-dir")}, ${providerDir}`);
      expect(existsSync(target)).toBe(false);
    });

    it.each([
      ["a parent escape", [{ path: "../x", mode: 0o644, contents: "x" }], `"../x": the path contains a '..' element`],
      ["an absolute path", [{ path: "/etc/x", mode: 0o644, contents: "x" }], `"/etc/x": the path is absolute`],
    ])("provider files with %s are refused and nothing stays mounted", async (_what, files, problem) => {
      provider.behaviour = () => ({ object_version: [{ id: "secret/x", version: "1" }], files });
      const target = await newTarget();
      const details = await expectGrpcError(csi.call("Node", "NodePublishVolume", publishRequest(target)), grpc.status.FAILED_PRECONDITION);
      expect(details).toBe(`failed to mount secrets store objects for pod ${NS}/app, err: provider "fake": invalid file paths from provider: ${problem}`);
      expect(await isTmpfs(target)).toBe(false);
      expect(existsSync(target)).toBe(false);
    });

    it("a provider that speaks another provider API version is refused before Mount", async () => {
      const future = await startFakeProvider(join(providerDir, "future.sock"));
      future.apiVersion = "v2";
      try {
        const target = await newTarget();
        const details = await expectGrpcError(
          csi.call("Node", "NodePublishVolume", publishRequest(target, { volume_context: volumeContext({ secretProviderClass: "spc-future-api" }) })),
          grpc.status.FAILED_PRECONDITION,
        );
        expect(details).toBe(`failed to mount secrets store objects for pod ${NS}/app, err: provider "future" speaks provider API v2, this driver speaks v1alpha1`);
        expect(future.requests).toHaveLength(0);
        expect(existsSync(target)).toBe(false);
      } finally {
        await future.stop();
      }
    });

    it("a provider answer without object versions is refused and nothing stays mounted", async () => {
      provider.behaviour = () => ({ object_version: [], files: [{ path: "a", mode: 0o644, contents: "x" }] });
      const target = await newTarget();
      const details = await expectGrpcError(csi.call("Node", "NodePublishVolume", publishRequest(target)), grpc.status.FAILED_PRECONDITION);
      expect(details).toContain('provider "fake" returned no object versions (missing object versions)');
      expect(await isTmpfs(target)).toBe(false);
      expect(existsSync(target)).toBe(false);
    });

    it("a provider error code is reported and nothing stays mounted", async () => {
      provider.behaviour = () => ({ error: { code: "KeyVaultThrottled" } });
      const target = await newTarget();
      const details = await expectGrpcError(csi.call("Node", "NodePublishVolume", publishRequest(target)), grpc.status.UNKNOWN);
      expect(details).toBe(`failed to mount secrets store objects for pod ${NS}/app, err: mount request failed with provider error code KeyVaultThrottled`);
      expect(existsSync(target)).toBe(false);
    });

    it("a provider slower than the deadline is DeadlineExceeded and nothing stays mounted", async () => {
      provider.behaviour = async () => {
        await sleep(6000);
        return defaultMount({} as never, new grpc.Metadata());
      };
      const target = await newTarget();
      const details = await expectGrpcError(csi.call("Node", "NodePublishVolume", publishRequest(target), 4000), grpc.status.DEADLINE_EXCEEDED);
      expect(details).toMatch(/Deadline exceeded|did not answer before the deadline/);
      // The driver cleans up when its own (earlier) provider deadline fires.
      const until = Date.now() + 5000;
      while ((existsSync(target) || (await isTmpfs(target))) && Date.now() < until) await sleep(100);
      expect(await isTmpfs(target)).toBe(false);
      expect(existsSync(target)).toBe(false);
      await sleep(3000);
    });

    it("error metrics name the provider and a stable error type, never the message", async () => {
      const metrics = await (await fetch(await metricsUrl(driver))).text();
      expect(metrics).toMatch(/node_publish_error_total\{provider="fake",error_type="FileWriteError",os_type="linux"\} [1-9]/);
      expect(metrics).toMatch(/node_publish_error_total\{provider="fake",error_type="GRPCProviderError",os_type="linux"\} [1-9]/);
      // a provider's error.code outside the known set is counted as one class (test/shared/provider-api/provider-errors.test.ts)
      expect(metrics).toMatch(/node_publish_error_total\{provider="fake",error_type="ProviderError",os_type="linux"\} [1-9]/);
      expect(metrics).toMatch(/node_publish_error_total\{provider="",error_type="SecretProviderClassNotFound",os_type="linux"\} [1-9]/);
      expect(metrics).not.toContain("alpha");
    });

    it("with the API server unreachable, publish is Unavailable and says so", async () => {
      const down = await startDriverProcess(join(base, "csi-down.sock"), [
        "--nodeid=node-a",
        `--kubelet-dir=${base}`,
        `--kubeconfig=${await writeUnreachableKubeconfig(base)}`,
        `--provider-volume=${providerDir}`,
        "--metrics-addr=",
        "--health-addr=",
      ]);
      const client = csiClient(down.socketPath);
      try {
        // Identity is served without the API server.
        expect((await client.call<{ name: string }>("Identity", "GetPluginInfo", {})).name).toBe("secrets-store.csi.k8s.io");
        const target = await newTarget();
        const details = await expectGrpcError(client.call("Node", "NodePublishVolume", publishRequest(target)), grpc.status.UNAVAILABLE);
        expect(details).toContain(`failed to get secretproviderclass ${NS}/fake-spc: the Kubernetes API server is unreachable`);
        expect(existsSync(target)).toBe(false);
      } finally {
        client.close();
        await down.stop();
      }
    });
  });
});

async function writeUnreachableKubeconfig(dir: string): Promise<string> {
  const path = join(dir, "unreachable.kubeconfig");
  const { writeFile } = await import("node:fs/promises");
  await writeFile(
    path,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:1", "insecure-skip-tls-verify": true } }],
      users: [{ name: "u", user: { token: "t" } }],
      contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
      "current-context": "x",
    }),
  );
  return path;
}
