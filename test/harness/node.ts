// A real Kubernetes node on this machine for the node tier: containerd (its
// own root, state and socket), runc, an isolated CNI bridge, images imported
// from tars, and kubelet registered with a test cluster. stop() removes
// everything the node made, even after a failed test: pods, containers, mounts,
// cgroups, iptables chains, network namespaces and the directories kubelet and
// containerd create outside their own (see host-state.ts).
//
// Only one node can run on a machine at a time (kubelet hard-codes a few
// paths), so node test files run one after the other.
import { execFile } from "node:child_process";
import { access, constants, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CoreV1Api, RbacAuthorizationV1Api, type V1Node, type V1Pod } from "@kubernetes/client-node";
import YAML from "yaml";
import type { Cluster } from "./cluster.ts";
import { hostDifferences, restoreHost, snapshotHost, unmountUnder, type HostSnapshot } from "./host-state.ts";
import { loadKubeConfig } from "./kube.ts";
import { freePorts, launch, sleep, stopProcess, waitReady, type Proc } from "./processes.ts";
import { BUSYBOX_IMAGE, BUSYBOX_STATIC, isStaticElf, PAUSE_IMAGE, writeBusyboxImage, writePauseImage } from "./node-images.ts";

const run = promisify(execFile);

export { BUSYBOX_IMAGE, PAUSE_IMAGE };

/** What the node tier needs from Debian, with the package that brings each piece. */
const HOST_REQUIREMENTS: { path: string; pkg: string }[] = [
  { path: "/usr/bin/containerd", pkg: "containerd" },
  { path: "/usr/bin/containerd-shim-runc-v2", pkg: "containerd" },
  { path: "/usr/bin/ctr", pkg: "containerd" },
  { path: "/usr/sbin/runc", pkg: "runc" },
  { path: "/usr/sbin/iptables", pkg: "iptables" },
  { path: "/usr/lib/cni/bridge", pkg: "containernetworking-plugins" },
  { path: "/usr/lib/cni/host-local", pkg: "containernetworking-plugins" },
  { path: "/usr/lib/cni/loopback", pkg: "containernetworking-plugins" },
  { path: BUSYBOX_STATIC, pkg: "busybox-static" },
];
const CNI_BIN_DIR = "/usr/lib/cni";

export interface NodeOptions {
  /** The loopback address kubelet and containerd's stream server listen on; also the node's name. */
  address: string;
  /** Image archives (docker-archive tars) to import besides the pause and busybox images. */
  images?: string[];
  /** Kept after stop() when given (logs); a temporary directory otherwise. */
  dataDir?: string;
}

export interface Node {
  /** The Node object's name (the address, as kubelet's --hostname-override). */
  name: string;
  /** kubelet's --root-dir: pods/, plugins/ and plugins_registry/ are below it. */
  kubeletDir: string;
  dataDir: string;
  kubeletLogPath: string;
  containerdLogPath: string;
  /** Imports a docker-archive into containerd's k8s.io namespace (visible to kubelet). */
  importImage(archivePath: string): Promise<void>;
  /** Names of the images kubelet's runtime holds. */
  images(): Promise<string[]>;
  /** Deletes every pod bound to the node and waits until kubelet has torn each down (CSI volumes need their driver). */
  deletePods(): Promise<void>;
  /** What is still changed on the machine compared with before start (empty once stopped cleanly). */
  hostDifferences(): Promise<string[]>;
  stop(): Promise<void>;
}

/** Fails loudly, naming the Debian packages to install, when a piece of the node is missing. */
export async function checkNodeRequirements(binDir: string): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("the node tier runs kubelet and containerd and must run as root (uid 0)");
  const missing = new Set<string>();
  for (const { path, pkg } of HOST_REQUIREMENTS) {
    if (!(await access(path, constants.X_OK).then(() => true, () => false))) missing.add(pkg);
  }
  if (!missing.has("busybox-static") && !(await isStaticElf(BUSYBOX_STATIC))) missing.add("busybox-static");
  if (missing.size > 0) {
    throw new Error(
      `the node tier needs Debian packages that are not installed: ${[...missing].join(", ")}\n` +
        `  install them with: apt-get install -y ${[...missing].join(" ")}   (scripts/setup-test-machine.sh, which npm test runs first, does this)`,
    );
  }
  for (const name of ["kubelet", "kube-scheduler", "sscsi-pause"]) {
    if (!(await access(join(binDir, name), constants.X_OK).then(() => true, () => false))) {
      throw new Error(`the node tier needs ${join(binDir, name)}: run bash test/harness/install-tools.sh (it builds kubelet, kube-scheduler and the pause program)`);
    }
  }
}

function containerdConfig(dir: string, address: string): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
root = "${dir}/root"
state = "${dir}/state"
# Snapshotters this machine has no use for stay off, so nothing probes the host for them.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "${dir}/containerd.sock"

[ttrpc]
  address = "${dir}/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/opt"

[${cri}]
  sandbox_image = "${PAUSE_IMAGE}"
  # This machine lacks CAP_SYS_RESOURCE: without this runc fails every sandbox
  # with "failed to update /proc/self/oom_score_adj: Permission denied".
  restrict_oom_score_adj = true
  stream_server_address = "${address}"
  stream_server_port = "0"
  enable_selinux = false

[${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[${cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "${dir}/runc"

[${cri}.cni]
  bin_dir = "${CNI_BIN_DIR}"
  conf_dir = "${dir}/cni"
`;
}

/**
 * The pod network: a bridge with no address on the node, no gateway, no NAT and
 * no forwarding, so pods get the eth0 that containerd requires but nothing they
 * send leaves the bridge. Test pods need no network: the driver and provider
 * talk to kubelet over host sockets. Addresses are link-local, never routed.
 */
export const CNI_BRIDGE = "sscsi-cni0";
function cniConfig(ipamDir: string): string {
  return JSON.stringify(
    {
      cniVersion: "1.0.0",
      name: "sscsi-pods",
      plugins: [
        {
          type: "bridge",
          bridge: CNI_BRIDGE,
          isGateway: false,
          ipMasq: false,
          ipam: { type: "host-local", ranges: [[{ subnet: "169.254.123.0/24" }]], dataDir: ipamDir },
        },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(o: {
  address: string;
  port: number;
  healthzPort: number;
  caPath: string;
  containerdSocket: string;
  podLogsDir: string;
}): string {
  return YAML.stringify({
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    address: o.address,
    port: o.port,
    readOnlyPort: 0,
    healthzBindAddress: o.address,
    healthzPort: o.healthzPort,
    // The API server's kubelet client certificate is signed by the cluster CA.
    authentication: { anonymous: { enabled: false }, webhook: { enabled: false }, x509: { clientCAFile: o.caPath } },
    authorization: { mode: "AlwaysAllow" },
    containerRuntimeEndpoint: `unix://${o.containerdSocket}`,
    cgroupDriver: "cgroupfs",
    // This machine has cgroup v1 (hybrid); kubelet 1.35 refuses it unless told otherwise.
    failCgroupV1: false,
    failSwapOn: false,
    // Imported images have no registry to come back from: never collect them.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // A shared, busy disk must not evict test pods.
    evictionHard: { "memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%" },
    // No KUBE-FIREWALL chains: the node changes no packet filtering.
    makeIPTablesUtilChains: false,
    podLogsDir: o.podLogsDir,
    clusterDomain: "cluster.local",
    serializeImagePulls: false,
    // Volume manager and status loops fast enough for tests.
    syncFrequency: "10s",
    nodeStatusUpdateFrequency: "5s",
    shutdownGracePeriod: "0s",
    rotateCertificates: false,
    serverTLSBootstrap: false,
  });
}

async function ctr(socket: string, args: string[]): Promise<string> {
  const { stdout } = await run("ctr", ["--address", socket, "--namespace", "k8s.io", ...args], { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** Grants kubelet's user what the Node authorizer would (this cluster runs RBAC only). */
async function grantNodeRole(cluster: Cluster, nodeName: string): Promise<void> {
  const rbac = loadKubeConfig(cluster.kubeconfigPath).makeApiClient(RbacAuthorizationV1Api);
  const name = `sscsi-node-${nodeName}`;
  await rbac.deleteClusterRoleBinding({ name }).catch(() => undefined);
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:node" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: `system:node:${nodeName}` }],
    },
  });
}

function isReady(node: V1Node): boolean {
  return Boolean(node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
}

export async function startNode(cluster: Cluster, options: NodeOptions): Promise<Node> {
  await checkNodeRequirements(cluster.binDir);
  const name = options.address;
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "sscsi-node-")));
  const before: HostSnapshot = await snapshotHost();
  const containerdDir = join(dataDir, "containerd");
  const kubeletDir = join(dataDir, "kubelet");
  const containerdSocket = join(containerdDir, "containerd.sock");
  const containerdLogPath = join(dataDir, "containerd.log");
  const kubeletLogPath = join(dataDir, "kubelet.log");
  const core = loadKubeConfig(cluster.kubeconfigPath).makeApiClient(CoreV1Api);
  let containerd: Proc | undefined;
  let kubelet: Proc | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= teardown());
  const teardown = async (): Promise<void> => {
    const problems: string[] = [];
    // 1. Pods first, through kubelet while it runs: it unpublishes CSI volumes and
    //    tears sandboxes down (network namespaces) properly.
    if (kubelet && kubelet.exitDescription === undefined) {
      try {
        await drainPods(core, name, kubelet);
      } catch (err) {
        problems.push(`pods on the node did not terminate: ${(err as Error).message}`);
      }
    }
    await stopProcess(kubelet, 10_000);
    // 2. Whatever still runs in containerd: kill and delete every task and container.
    if (containerd && containerd.exitDescription === undefined) {
      try {
        await removeAllContainers(containerdSocket);
      } catch (err) {
        problems.push(`containers left in containerd: ${(err as Error).message}`);
      }
    }
    await stopProcess(containerd, 10_000);
    await killShims(dataDir);
    // 3. Mounts below our directories (volumes, snapshots, sandbox /dev/shm), then the rest.
    await unmountUnder([dataDir]);
    await core.deleteNode({ name }).catch(() => undefined);
    try {
      await restoreHost(before);
    } catch (err) {
      problems.push((err as Error).message);
    }
    if (ownsDataDir) await rm(dataDir, { recursive: true, force: true }).catch((err: Error) => problems.push(`removing ${dataDir}: ${err.message}`));
    if (problems.length > 0) throw new Error(`node teardown: ${problems.join("\n")}`);
  };

  try {
    await mkdir(join(containerdDir, "cni"), { recursive: true });
    await mkdir(kubeletDir, { recursive: true });
    await writeFile(join(containerdDir, "config.toml"), containerdConfig(containerdDir, options.address));
    await writeFile(join(containerdDir, "cni", "10-sscsi-pods.conflist"), cniConfig(join(dataDir, "cni-ipam")));
    containerd = launch("containerd", "containerd", ["--config", join(containerdDir, "config.toml"), "--log-level", "info"], containerdLogPath);
    await waitReady(containerd, "containerd's socket", async () => {
      await ctr(containerdSocket, ["version"]);
      return true;
    });

    const images = join(dataDir, "images");
    await mkdir(images);
    const archives = [
      await writePauseImage(join(cluster.binDir, "sscsi-pause"), join(images, "pause.tar")),
      await writeBusyboxImage(join(images, "busybox.tar")),
      ...(options.images ?? []),
    ];
    for (const archive of archives) await ctr(containerdSocket, ["images", "import", archive]);

    await grantNodeRole(cluster, name);
    const nodeKubeconfig = await cluster.kubeconfigFor(`system:node:${name}`, ["system:nodes"]);
    const [kubeletPort, healthzPort] = await freePorts(options.address, 2);
    await writeFile(
      join(dataDir, "kubelet-config.yaml"),
      kubeletConfig({
        address: options.address,
        port: kubeletPort!,
        healthzPort: healthzPort!,
        caPath: cluster.caPath,
        containerdSocket,
        podLogsDir: join(dataDir, "pod-logs"),
      }),
    );
    kubelet = launch(
      "kubelet",
      join(cluster.binDir, "kubelet"),
      [
        `--config=${join(dataDir, "kubelet-config.yaml")}`,
        `--kubeconfig=${nodeKubeconfig}`,
        `--root-dir=${kubeletDir}`,
        `--cert-dir=${join(dataDir, "kubelet-pki")}`,
        // --node-ip refuses loopback addresses; the hostname becomes the address the API server dials.
        `--hostname-override=${options.address}`,
        "--v=2",
      ],
      kubeletLogPath,
    );
    await waitReady(kubelet, `node ${name} to be Ready`, async () => isReady(await core.readNode({ name })));
  } catch (err) {
    await stop().catch((teardownErr: Error) => {
      (err as Error).message += `\n(and the teardown failed: ${teardownErr.message})`;
    });
    throw err;
  }

  return {
    name,
    kubeletDir,
    dataDir,
    kubeletLogPath,
    containerdLogPath,
    importImage: async (archive) => {
      await ctr(containerdSocket, ["images", "import", archive]);
    },
    deletePods: () => drainPods(core, name, kubelet!),
    images: async () => (await ctr(containerdSocket, ["images", "ls", "-q"])).split("\n").filter(Boolean),
    hostDifferences: async () => [...(await hostDifferences(before)), ...(await processesNaming(dataDir)).map((p) => `process ${p} still runs`)],
    stop,
  };
}

/**
 * Deletes every pod bound to the node and waits until kubelet has torn each one
 * down: first the workloads (their CSI volumes need the driver, which may itself
 * be a DaemonSet pod), then DaemonSet pods, each deleted once (their controller
 * may create new ones; the teardown removes whatever still runs).
 */
async function drainPods(core: CoreV1Api, nodeName: string, kubelet: Proc): Promise<void> {
  const fieldSelector = `spec.nodeName=${nodeName}`;
  const ownedByDaemonSet = (pod: V1Pod) => Boolean(pod.metadata?.ownerReferences?.some((o) => o.kind === "DaemonSet"));
  for (const daemons of [false, true]) {
    const pods = (await core.listPodForAllNamespaces({ fieldSelector })).items.filter((p) => ownedByDaemonSet(p) === daemons);
    for (const pod of pods) {
      await core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, gracePeriodSeconds: 1 }).catch(() => undefined);
    }
    const uids = new Set(pods.map((p) => p.metadata!.uid!));
    await waitReady(
      kubelet,
      `${daemons ? "DaemonSet" : "workload"} pods on the node to be gone`,
      async () => !(await core.listPodForAllNamespaces({ fieldSelector })).items.some((p) => uids.has(p.metadata!.uid!)),
      90_000,
    );
  }
}

async function removeAllContainers(socket: string): Promise<void> {
  const tasks = (await ctr(socket, ["tasks", "ls", "-q"])).split("\n").filter(Boolean);
  for (const id of tasks) await ctr(socket, ["tasks", "kill", "--all", "--signal", "SIGKILL", id]).catch(() => undefined);
  for (const id of tasks) {
    for (let i = 0; i < 40; i++) {
      if (await ctr(socket, ["tasks", "delete", id]).then(() => true, () => false)) break;
      await sleep(250);
    }
  }
  const containers = (await ctr(socket, ["containers", "ls", "-q"])).split("\n").filter(Boolean);
  for (const id of containers) await ctr(socket, ["containers", "delete", id]);
}

/** Processes whose command line names `dir` ("pid command ..."). */
async function processesNaming(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).replace(/\0/g, " ").trim();
    if (cmdline.includes(dir)) found.push(`${pid} ${cmdline.slice(0, 200)}`);
  }
  return found;
}

/** containerd's shims outlive containerd; each names our socket on its command line. */
async function killShims(dataDir: string): Promise<void> {
  for (const entry of await processesNaming(dataDir)) {
    const [pid, command] = entry.split(" ");
    if (!command?.startsWith("/usr/bin/containerd-shim")) continue;
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // already gone
    }
  }
}
