// The Helm chart: lint and render with several value sets and check the
// rendered objects (flags, RBAC, CSIDriver, security contexts) rather than
// snapshots, so each expectation says why it matters.
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { REPO_ROOT } from "../../scripts/generate-deploy.ts";
import {
  container,
  driverDaemonSet,
  find,
  findHelm,
  flag,
  lint,
  one,
  podSpec,
  providerDaemonSet,
  render,
  rolesBoundTo,
  verbsOn,
  type K8sObject,
} from "./chart.ts";

const DIGEST = "sha256:" + "ab".repeat(32);
const SPC_GROUP = "secrets-store.csi.x-k8s.io";

const VALUE_SETS: Record<string, Record<string, unknown>> = {
  defaults: {},
  "sync on": { syncSecret: { enabled: true } },
  "rotation off": { enableSecretRotation: false },
  "workload identity": { tokenRequests: [{ audience: "api://AzureADTokenExchange", expirationSeconds: 3600 }, { audience: "api://AKSIdentityBinding" }] },
  "custom images and digests": {
    linux: {
      image: { repository: "registry.example.com:5000/team/driver", digest: DIGEST },
      registrarImage: { repository: "mirror.example.com/sig-storage/csi-node-driver-registrar", tag: "v2.16.0" },
      registrar: { sidecar: true },
    },
    provider: { image: { repository: "registry.example.com/team/provider-azure", tag: "v9.9.9-rc.1" } },
  },
  "everything optional on": {
    linux: { livenessProbe: { sidecar: true }, registrar: { sidecar: true }, priorityClassName: "system-node-critical" },
    metrics: { podMonitor: { enabled: true, labels: { release: "prom" } } },
    grafanaDashboard: { enabled: true },
    provider: { hostNetwork: true, privileged: true },
    imagePullSecrets: [{ name: "pull" }],
    logVerbosity: 5,
    logFormatJSON: true,
  },
};

describe("helm tooling", () => {
  it("install-helm.sh installs helm v4 and is a fast no-op the second time", () => {
    const first = findHelm();
    const binaries = [first, join(first, "..", "kubectl")];
    const identity = () => binaries.map((b) => statSync(b)).map((s) => `${s.ino}/${s.mtimeMs}`);
    const before = identity();
    // A no-op, shown by what it did rather than how long it took: it fetched
    // nothing (the fetch announces itself on stderr) and rewrote no binary.
    const again = spawnSync("bash", [join(REPO_ROOT, "scripts", "install-helm.sh")], { encoding: "utf8" });
    expect([again.status, again.stderr]).toEqual([0, ""]);
    expect(again.stdout.trim().split("\n").pop()).toBe(first);
    expect(identity()).toEqual(before);
    expect(execFileSync(first, ["version", "--short"], { encoding: "utf8" })).toMatch(/^v4\./);
    expect(execFileSync(join(first, "..", "kubectl"), ["version", "--client", "-o", "json"], { encoding: "utf8" })).toContain('"gitVersion"');
  });
});

describe.each(Object.entries(VALUE_SETS))("chart with %s", (_name, values) => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = render(values);
  });

  it("passes helm lint --strict", () => {
    expect(lint(values)).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it("renders only namespaced objects in the release namespace and pins every image", () => {
    for (const o of objects) {
      if (["ClusterRole", "ClusterRoleBinding", "CSIDriver"].includes(o.kind)) expect(o.metadata.namespace).toBeUndefined();
      else expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe("kube-system");
    }
    for (const ds of find(objects, "DaemonSet")) {
      const spec = podSpec(ds);
      expect((spec.nodeSelector as Record<string, string>)["kubernetes.io/os"]).toBe("linux");
      for (const c of spec.containers) expect(c.image, c.name).toMatch(/(:[\w][\w.-]*|@sha256:[a-f0-9]{64})$/);
    }
  });
});

describe("driver DaemonSet", () => {
  it("runs privileged with Bidirectional propagation on kubelet's pods dir and registers itself with kubelet", () => {
    const ds = driverDaemonSet(render());
    const spec = podSpec(ds);
    // One container per node: no registrar and no livenessprobe sidecar.
    expect(spec.containers.map((c) => c.name)).toEqual(["secrets-store"]);
    const driver = container(ds, "secrets-store");
    expect(driver.securityContext).toEqual({ privileged: true });
    expect(driver.volumeMounts).toContainEqual({ name: "mountpoint-dir", mountPath: "/var/lib/kubelet/pods", mountPropagation: "Bidirectional" });
    expect(spec.volumes).toContainEqual({ name: "mountpoint-dir", hostPath: { path: "/var/lib/kubelet/pods", type: "DirectoryOrCreate" } });
    // kubelet dials the path the driver reports, so the driver sees its socket and
    // plugins_registry/ at their node paths.
    expect(flag(driver.args, "register-with-kubelet")).toBe("true");
    expect(flag(driver.args, "kubelet-dir")).toBe("/var/lib/kubelet");
    expect(driver.env).toContainEqual({ name: "CSI_ENDPOINT", value: "unix:///var/lib/kubelet/plugins/csi-secrets-store/csi.sock" });
    expect(driver.volumeMounts).toContainEqual({ name: "plugin-dir", mountPath: "/var/lib/kubelet/plugins/csi-secrets-store" });
    expect(driver.volumeMounts).toContainEqual({ name: "registration-dir", mountPath: "/var/lib/kubelet/plugins_registry" });
    expect(spec.volumes).toContainEqual({ name: "registration-dir", hostPath: { path: "/var/lib/kubelet/plugins_registry/", type: "Directory" } });
    expect(flag(driver.args, "endpoint")).toBe("$(CSI_ENDPOINT)");
    expect(flag(driver.args, "nodeid")).toBe("$(KUBE_NODE_NAME)");
    expect(podSpec(ds).serviceAccountName).toBe("csi-secrets-store");
    expect((ds.spec as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations).toMatchObject({
      "kubectl.kubernetes.io/default-container": "secrets-store",
    });
  });

  it("registers through the node-driver-registrar sidecar as upstream does when asked", () => {
    const ds = driverDaemonSet(render({ linux: { registrar: { sidecar: true } } }));
    expect(podSpec(ds).containers.map((c) => c.name)).toEqual(["node-driver-registrar", "secrets-store"]);
    const registrar = container(ds, "node-driver-registrar");
    expect(flag(registrar.args, "csi-address")).toBe("/csi/csi.sock");
    expect(flag(registrar.args, "kubelet-registration-path")).toBe("/var/lib/kubelet/plugins/csi-secrets-store/csi.sock");
    expect(flag(registrar.args, "v")).toBe("5");
    expect(registrar.volumeMounts).toEqual([
      { name: "plugin-dir", mountPath: "/csi" },
      { name: "registration-dir", mountPath: "/registration" },
    ]);
    const driver = container(ds, "secrets-store");
    expect(flag(driver.args, "register-with-kubelet")).toBeUndefined();
    expect(driver.env).toContainEqual({ name: "CSI_ENDPOINT", value: "unix:///csi/csi.sock" });
    expect(driver.volumeMounts).toContainEqual({ name: "plugin-dir", mountPath: "/csi" });
    expect(driver.volumeMounts?.map((m) => m.name)).not.toContain("registration-dir");
  });

  it("serves /healthz itself on 9808 and metrics on 8095 by default, without the livenessprobe sidecar", () => {
    const driver = container(driverDaemonSet(render()), "secrets-store");
    expect(flag(driver.args, "health-addr")).toBe(":9808");
    expect(flag(driver.args, "metrics-addr")).toBe(":8095");
    expect(driver.ports).toEqual([
      { name: "healthz", containerPort: 9808, protocol: "TCP" },
      { name: "metrics", containerPort: 8095, protocol: "TCP" },
    ]);
    expect(driver.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: "healthz" });
  });

  it("hands /healthz to the livenessprobe sidecar when asked, and turns the driver's own listener off", () => {
    const ds = driverDaemonSet(render({ linux: { livenessProbe: { sidecar: true } }, livenessProbe: { port: 9900 } }));
    const sidecar = container(ds, "liveness-probe");
    expect(flag(sidecar.args, "http-endpoint")).toBe("0.0.0.0:9900");
    expect(flag(sidecar.args, "csi-address")).toBe("/csi/csi.sock");
    const driver = container(ds, "secrets-store");
    expect(flag(driver.args, "health-addr")).toBe("");
    expect(driver.ports).toContainEqual({ name: "healthz", containerPort: 9900, protocol: "TCP" });
  });

  it("moves the metrics listener with linux.metricsAddr (flag, port and scrape annotation)", () => {
    const ds = driverDaemonSet(render({ linux: { metricsAddr: "0.0.0.0:9095" } }));
    const driver = container(ds, "secrets-store");
    expect(flag(driver.args, "metrics-addr")).toBe("0.0.0.0:9095");
    expect(driver.ports).toContainEqual({ name: "metrics", containerPort: 9095, protocol: "TCP" });
    expect((ds.spec as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations["prometheus.io/port"]).toBe("9095");
  });

  it("passes rotation, sync, message size, tmpfs size and health-check flags explicitly", () => {
    const defaults = container(driverDaemonSet(render()), "secrets-store").args;
    expect(flag(defaults, "enable-secret-rotation")).toBe("true");
    expect(flag(defaults, "rotation-poll-interval")).toBe("2m");
    expect(flag(defaults, "enable-secret-sync")).toBe("false");
    expect(flag(defaults, "max-call-recv-msg-size")).toBe("4194304");
    expect(flag(defaults, "tmpfs-size")).toBe("64Mi");
    expect(flag(defaults, "provider-health-check")).toBe("false");
    expect(flag(defaults, "v")).toBeUndefined();
    expect(flag(defaults, "log-format-json")).toBeUndefined();

    const custom = container(
      driverDaemonSet(
        render({
          enableSecretRotation: false,
          rotationPollInterval: "1h30m",
          syncSecret: { enabled: true },
          maxCallRecvMsgSize: 16777216,
          tmpfsSize: "1Gi",
          providerHealthCheck: true,
          providerHealthCheckInterval: "45s",
          logVerbosity: 5,
          logFormatJSON: true,
        }),
      ),
      "secrets-store",
    );
    expect(flag(custom.args, "enable-secret-rotation")).toBe("false");
    expect(flag(custom.args, "rotation-poll-interval")).toBe("1h30m");
    expect(flag(custom.args, "enable-secret-sync")).toBe("true");
    // Helm reads numbers as floats; a large one must not come out as 1.6777216e+07.
    expect(flag(custom.args, "max-call-recv-msg-size")).toBe("16777216");
    expect(flag(custom.args, "tmpfs-size")).toBe("1Gi");
    expect(flag(custom.args, "provider-health-check")).toBe("true");
    expect(flag(custom.args, "provider-health-check-interval")).toBe("45s");
    expect(flag(custom.args, "v")).toBe("5");
    expect(flag(custom.args, "log-format-json")).toBe("");
    expect(custom.env).toContainEqual({ name: "LOG_LEVEL", value: "debug" });
  });

  it("follows kubeletRootDir and the provider directories, skipping a repeat of providersDir", () => {
    const ds = driverDaemonSet(
      render({
        linux: {
          kubeletRootDir: "/var/data/kubelet/",
          providersDir: "/run/providers",
          additionalProvidersDirs: ["/etc/kubernetes/secrets-store-csi-providers", "/run/providers", "/opt/providers"],
        },
      }),
    );
    const driver = container(ds, "secrets-store");
    expect(flag(driver.args, "provider-volume")).toBe("/run/providers");
    expect(flag(driver.args, "kubelet-dir")).toBe("/var/data/kubelet");
    expect(flag(driver.args, "additional-provider-volume-paths")).toBe("/etc/kubernetes/secrets-store-csi-providers,/opt/providers");
    const paths = (podSpec(ds).volumes ?? []).map((v) => `${v.name}=${v.hostPath?.path}`);
    expect(paths).toEqual([
      "mountpoint-dir=/var/data/kubelet/pods",
      "registration-dir=/var/data/kubelet/plugins_registry/",
      "plugin-dir=/var/data/kubelet/plugins/csi-secrets-store/",
      "providers-dir=/run/providers",
      "providers-dir-0=/etc/kubernetes/secrets-store-csi-providers",
      "providers-dir-1=/opt/providers",
    ]);
    expect(driver.volumeMounts).toContainEqual({ name: "mountpoint-dir", mountPath: "/var/data/kubelet/pods", mountPropagation: "Bidirectional" });
    expect(driver.env).toContainEqual({ name: "CSI_ENDPOINT", value: "unix:///var/data/kubelet/plugins/csi-secrets-store/csi.sock" });
    expect(driver.volumeMounts).toContainEqual({ name: "registration-dir", mountPath: "/var/data/kubelet/plugins_registry" });
    const withRegistrar = driverDaemonSet(render({ linux: { kubeletRootDir: "/var/data/kubelet/", registrar: { sidecar: true } } }));
    expect(flag(container(withRegistrar, "node-driver-registrar").args, "kubelet-registration-path")).toBe("/var/data/kubelet/plugins/csi-secrets-store/csi.sock");
  });

  it("uses the digest instead of the tag when one is given, and v<appVersion> when the tag is empty", () => {
    const objects = render(VALUE_SETS["custom images and digests"]!);
    expect(container(driverDaemonSet(objects), "secrets-store").image).toBe(`registry.example.com:5000/team/driver@${DIGEST}`);
    expect(container(driverDaemonSet(objects), "node-driver-registrar").image).toBe("mirror.example.com/sig-storage/csi-node-driver-registrar:v2.16.0");
    expect(container(providerDaemonSet(objects), "provider-azure-installer").image).toBe("registry.example.com/team/provider-azure:v9.9.9-rc.1");
    const chart = YAML.parse(readFileSync(join(REPO_ROOT, "charts/secrets-store-csi-driver-azure/Chart.yaml"), "utf8")) as { appVersion: string };
    expect(container(driverDaemonSet(render()), "secrets-store").image).toBe(`ghcr.io/secrets-store-csi/driver:v${chart.appVersion}`);
  });
});

describe("CSIDriver", () => {
  const csiDriver = (values: Record<string, unknown> = {}, kubeVersion?: string) =>
    one(render(values, kubeVersion ? { kubeVersion } : {}), "CSIDriver").spec as Record<string, unknown>;

  it("declares an inline ephemeral, attach-free driver that gets pod info and workload identity tokens", () => {
    const spec = csiDriver({}, "1.30.0");
    expect(spec).toEqual({
      podInfoOnMount: true,
      attachRequired: false,
      volumeLifecycleModes: ["Ephemeral"],
      requiresRepublish: true,
      tokenRequests: [{ audience: "api://AzureADTokenExchange" }],
    });
  });

  it("makes requiresRepublish follow enableSecretRotation", () => {
    expect(csiDriver({ enableSecretRotation: true }).requiresRepublish).toBe(true);
    expect(csiDriver({ enableSecretRotation: false }).requiresRepublish).toBe(false);
  });

  it("moves tokens into the request secrets only on Kubernetes 1.35 and newer, and only with tokenRequests", () => {
    expect(csiDriver({}, "1.34.9").serviceAccountTokenInSecrets).toBeUndefined();
    expect(csiDriver({}, "1.35.0").serviceAccountTokenInSecrets).toBe(true);
    const none = csiDriver({ tokenRequests: [] }, "1.36.0");
    expect(none.tokenRequests).toBeUndefined();
    expect(none.serviceAccountTokenInSecrets).toBeUndefined();
  });

  it("renders custom audiences with their expiration", () => {
    expect(csiDriver(VALUE_SETS["workload identity"]!).tokenRequests).toEqual([
      { audience: "api://AzureADTokenExchange", expirationSeconds: 3600 },
      { audience: "api://AKSIdentityBinding" },
    ]);
  });
});

describe("RBAC", () => {
  it("gives the driver exactly what it needs and no Secret access unless sync is enabled", () => {
    const objects = render();
    const roles = rolesBoundTo(objects, "csi-secrets-store");
    // The exact calls, as measured by rbac.cluster.test.ts against a real API server.
    expect([...verbsOn(roles, SPC_GROUP, "secretproviderclasses")].sort()).toEqual(["get"]);
    expect([...verbsOn(roles, SPC_GROUP, "secretproviderclasspodstatuses")].sort()).toEqual(["create", "get", "list", "update"]);
    expect([...verbsOn(roles, "", "events")].sort()).toEqual(["create"]);
    expect(verbsOn(roles, "", "secrets").size).toBe(0);
    expect(verbsOn(roles, "", "serviceaccounts/token").size).toBe(0);
    // Pods: read always; list/watch (on-demand refresh requests) only with rotation.
    expect([...verbsOn(roles, "", "pods")].sort()).toEqual(["get", "list", "watch"]);
    expect([...verbsOn(rolesBoundTo(render({ enableSecretRotation: false }), "csi-secrets-store"), "", "pods")]).toEqual(["get"]);
    // Nothing beyond those four resources.
    const resources = roles.flatMap((r) => (r as unknown as { rules: { resources: string[] }[] }).rules.flatMap((rule) => rule.resources));
    expect(new Set(resources)).toEqual(new Set(["secretproviderclasses", "secretproviderclasspodstatuses", "pods", "events"]));
  });

  it("adds Secret access with syncSecret.enabled", () => {
    const roles = rolesBoundTo(render({ syncSecret: { enabled: true } }), "csi-secrets-store");
    expect([...verbsOn(roles, "", "secrets")].sort()).toEqual(["create", "get", "patch"]);
  });

  it("gives the provider no Kubernetes API access at all", () => {
    const objects = render();
    const sa = one(objects, "ServiceAccount", (o) => o.metadata.name === "csi-secrets-store-provider-azure");
    expect(sa.automountServiceAccountToken).toBe(false);
    expect(rolesBoundTo(objects, "csi-secrets-store-provider-azure")).toEqual([]);
    expect(find(objects, "RoleBinding")).toEqual([]);
    const spec = podSpec(providerDaemonSet(objects));
    expect(spec.serviceAccountName).toBe("csi-secrets-store-provider-azure");
    expect(spec.automountServiceAccountToken).toBe(false);
  });

  it("aggregates SecretProviderClass management into admin/edit and reading into view", () => {
    const objects = render();
    const admin = one(objects, "ClusterRole", (o) => o.metadata.labels?.["rbac.authorization.k8s.io/aggregate-to-admin"] === "true");
    expect(admin.metadata.labels?.["rbac.authorization.k8s.io/aggregate-to-edit"]).toBe("true");
    expect(verbsOn([admin], SPC_GROUP, "secretproviderclasses")).toContain("create");
    const view = one(objects, "ClusterRole", (o) => o.metadata.labels?.["rbac.authorization.k8s.io/aggregate-to-view"] === "true");
    expect([...verbsOn([view], SPC_GROUP, "secretproviderclasspodstatuses")].sort()).toEqual(["get", "list", "watch"]);
  });

  it("renders no RBAC objects or ServiceAccounts with rbac.install=false", () => {
    const objects = render({ rbac: { install: false }, linux: { crds: { enabled: false } } });
    expect(objects.filter((o) => ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"].includes(o.kind))).toEqual([]);
  });
});

describe("provider DaemonSet", () => {
  it("runs without privileges, capabilities or a writable root filesystem", () => {
    const ds = providerDaemonSet(render());
    const spec = podSpec(ds);
    expect(spec.hostNetwork).toBe(false);
    expect(spec.dnsPolicy).toBe("ClusterFirst");
    expect(spec.securityContext).toEqual({ seccompProfile: { type: "RuntimeDefault" } });
    const c = container(ds, "provider-azure-installer");
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsUser: 0,
      runAsNonRoot: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(c.volumeMounts).toEqual([
      { name: "providervol", mountPath: "/provider" },
      { name: "tmp", mountPath: "/tmp" },
    ]);
    expect(spec.volumes).toContainEqual({ name: "providervol", hostPath: { path: "/var/run/secrets-store-csi-providers", type: "DirectoryOrCreate" } });
  });

  it("can run as a non-root uid", () => {
    const c = container(providerDaemonSet(render({ provider: { runAsUser: 65532 } })), "provider-azure-installer");
    expect(c.securityContext).toMatchObject({ runAsUser: 65532, runAsNonRoot: true });
  });

  it("serves the socket the driver looks for, health on 8989 and metrics on 8898", () => {
    const c = container(providerDaemonSet(render()), "provider-azure-installer");
    expect(flag(c.args, "endpoint")).toBe("unix:///provider/azure.sock");
    expect(flag(c.args, "healthz-port")).toBe("8989");
    expect(flag(c.args, "healthz-path")).toBe("/healthz");
    expect(flag(c.args, "prometheus-port")).toBe("8898");
    expect(c.ports).toEqual([
      { name: "healthz", containerPort: 8989, protocol: "TCP" },
      { name: "metrics", containerPort: 8898, protocol: "TCP" },
    ]);
    expect(c.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: "healthz" });
  });

  it("renders --construct-pem-chain=false when constructPEMChain is false (upstream dropped the flag)", () => {
    const on = container(providerDaemonSet(render()), "provider-azure-installer");
    expect(flag(on.args, "construct-pem-chain")).toBe("true");
    expect(flag(on.args, "write-cert-and-key-in-separate-files")).toBe("false");
    const off = container(providerDaemonSet(render({ constructPEMChain: false, writeCertAndKeyInSeparateFiles: true })), "provider-azure-installer");
    expect(flag(off.args, "construct-pem-chain")).toBe("false");
    expect(flag(off.args, "write-cert-and-key-in-separate-files")).toBe("true");
  });

  it("moves the metrics listener with provider.metricsAddr (upstream only moved the container port)", () => {
    const ds = providerDaemonSet(render({ provider: { metricsAddr: "9100", cloudName: "AzureChinaCloud" } }));
    const c = container(ds, "provider-azure-installer");
    expect(flag(c.args, "prometheus-port")).toBe("9100");
    expect(c.ports).toContainEqual({ name: "metrics", containerPort: 9100, protocol: "TCP" });
    expect(flag(c.args, "cloud-name")).toBe("AzureChinaCloud");
    expect((ds.spec as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations["prometheus.io/port"]).toBe("9100");
    // An integer works as well as upstream's string form.
    expect(flag(container(providerDaemonSet(render({ provider: { metricsAddr: 9200 } })), "provider-azure-installer").args, "prometheus-port")).toBe("9200");
  });

  it("passes the bounds of one mount, and the cloud file directory when one is set", () => {
    const byDefault = container(providerDaemonSet(render()), "provider-azure-installer");
    expect([flag(byDefault.args, "max-objects-per-mount"), flag(byDefault.args, "max-files-per-mount"), flag(byDefault.args, "max-request-bytes")]).toEqual(["1000", "5000", "1048576"]);
    expect(flag(byDefault.args, "cloud-env-file-dir")).toBeUndefined();
    const set = container(
      providerDaemonSet(render({ provider: { cloudEnvFileDir: "/cloudEnv,/etc/kubernetes", limits: { objectsPerMount: 50, filesPerMount: 60, requestBytes: 65536 } } })),
      "provider-azure-installer",
    );
    expect([flag(set.args, "max-objects-per-mount"), flag(set.args, "max-files-per-mount"), flag(set.args, "max-request-bytes")]).toEqual(["50", "60", "65536"]);
    expect(flag(set.args, "cloud-env-file-dir")).toBe("/cloudEnv,/etc/kubernetes");
  });

  it("switches to the node's network and the privileged mode only when asked", () => {
    const ds = providerDaemonSet(render({ provider: { hostNetwork: true, privileged: true } }));
    expect(podSpec(ds).hostNetwork).toBe(true);
    expect(podSpec(ds).dnsPolicy).toBe("ClusterFirstWithHostNet");
    expect(container(ds, "provider-azure-installer").securityContext).toEqual({ privileged: true });
  });

  it("can be left out, and so can the driver", () => {
    expect(find(render({ provider: { enabled: false } }), "DaemonSet").map((d) => d.metadata.name)).toEqual(["csi-secrets-store"]);
    expect(find(render({ linux: { enabled: false } }), "DaemonSet").map((d) => d.metadata.name)).toEqual(["csi-secrets-store-provider-azure"]);
  });
});

describe("CRD upgrade hook", () => {
  it("applies exactly the CRDs of deploy/crds/ before an upgrade", () => {
    const objects = render();
    const job = one(objects, "Job");
    expect(job.metadata.annotations?.["helm.sh/hook"]).toBe("pre-upgrade");
    const c = podSpec(job).containers[0]!;
    expect(c.args).toEqual(["apply", "--server-side", "--force-conflicts", "--field-manager=secrets-store-csi-driver-azure", "--filename=/crds"]);
    const cm = one(objects, "ConfigMap", (o) => o.metadata.name === "csi-secrets-store-upgrade-crds");
    const data = cm.data as Record<string, string>;
    const crdDir = join(REPO_ROOT, "deploy", "crds");
    const files = readdirSync(crdDir).filter((f) => f.endsWith(".yaml"));
    expect(Object.keys(data).sort()).toEqual(files.sort());
    for (const f of files) expect(YAML.parse(data[f]!)).toEqual(YAML.parse(readFileSync(join(crdDir, f), "utf8")));
    const role = one(objects, "ClusterRole", (o) => o.metadata.name === "csi-secrets-store-upgrade-crds");
    expect(verbsOn([role], "apiextensions.k8s.io", "customresourcedefinitions")).toEqual(new Set(["get", "patch", "update", "create"]));
  });

  it("is left out with linux.crds.enabled=false and with --no-hooks", () => {
    expect(find(render({ linux: { crds: { enabled: false } } }), "Job")).toEqual([]);
    expect(render({}, { noHooks: true }).filter((o) => o.metadata.annotations?.["helm.sh/hook"])).toEqual([]);
  });

  it("ships the CRDs in crds/ so helm install creates them first", () => {
    const kinds = render({}, { includeCrds: true }).filter((o) => o.kind === "CustomResourceDefinition").map((o) => o.metadata.name);
    expect(kinds.sort()).toEqual(["secretproviderclasses.secrets-store.csi.x-k8s.io", "secretproviderclasspodstatuses.secrets-store.csi.x-k8s.io"]);
  });
});

describe("monitoring", () => {
  it("annotates both pods for Prometheus scraping by default", () => {
    const objects = render();
    for (const ds of [driverDaemonSet(objects), providerDaemonSet(objects)]) {
      const ann = (ds.spec as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations;
      expect(ann["prometheus.io/scrape"]).toBe("true");
      expect(ann["prometheus.io/path"]).toBe("/metrics");
    }
    expect(find(objects, "PodMonitor")).toEqual([]);
  });

  it("creates a PodMonitor per DaemonSet that selects its pods' metrics port", () => {
    const objects = render({ metrics: { podMonitor: { enabled: true, interval: "15s", labels: { release: "prom" } } } });
    const monitors = find(objects, "PodMonitor");
    expect(monitors.map((m) => m.metadata.name).sort()).toEqual(["csi-secrets-store-driver", "csi-secrets-store-provider-azure"]);
    for (const m of monitors) {
      expect(m.apiVersion).toBe("monitoring.coreos.com/v1");
      expect(m.metadata.labels?.release).toBe("prom");
      const spec = m.spec as { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: { port: string; interval: string }[] };
      expect(spec.podMetricsEndpoints[0]).toMatchObject({ port: "metrics", interval: "15s" });
      const target = find(objects, "DaemonSet").filter((ds) => {
        const labels = (ds.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
        return Object.entries(spec.selector.matchLabels).every(([k, v]) => labels[k] === v);
      });
      expect(target).toHaveLength(1);
      expect(podSpec(target[0]!).containers.some((c) => c.ports?.some((p) => p.name === "metrics"))).toBe(true);
    }
  });

  it("ships the Grafana dashboard as a labelled ConfigMap when enabled", () => {
    expect(find(render(), "ConfigMap").filter((c) => c.metadata.name.endsWith("grafana-dashboard"))).toEqual([]);
    const cm = one(render({ grafanaDashboard: { enabled: true, namespace: "monitoring" } }), "ConfigMap", (o) => o.metadata.name.endsWith("grafana-dashboard"));
    expect(cm.metadata.namespace).toBe("monitoring");
    expect(cm.metadata.labels?.grafana_dashboard).toBe("1");
    const json = JSON.parse((cm.data as Record<string, string>)["secrets-store-csi-driver-azure.json"]!) as { uid: string; panels: unknown[] };
    expect(json.uid).toBe("secrets-store-csi-azure");
    expect(json.panels.length).toBeGreaterThan(10);
  });
});

describe("names", () => {
  it("uses the release name alone when it says secrets-store, else adds a suffix, and honours fullnameOverride", () => {
    const names = (release: string, values: Record<string, unknown> = {}) =>
      find(render(values, { releaseName: release }), "DaemonSet")
        .map((d) => d.metadata.name)
        .sort();
    expect(names("csi-secrets-store")).toEqual(["csi-secrets-store", "csi-secrets-store-provider-azure"]);
    expect(names("kv")).toEqual(["kv-secrets-store-csi", "kv-secrets-store-csi-provider-azure"]);
    expect(names("kv", { fullnameOverride: "sscsi" })).toEqual(["sscsi", "sscsi-provider-azure"]);
  });
});
