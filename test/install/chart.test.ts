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
  namespacedRolesBoundTo,
  podSpec,
  providerDaemonSet,
  render,
  renderError,
  rolesBoundTo,
  syncControllerDeployment,
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
  "SecretSync controller on": { syncController: { enabled: true } },
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
      if (["ClusterRole", "ClusterRoleBinding", "CSIDriver", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"].includes(o.kind)) {
        expect(o.metadata.namespace).toBeUndefined();
      } else expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe("kube-system");
    }
    for (const ds of [...find(objects, "DaemonSet"), ...find(objects, "Deployment")]) {
      const spec = podSpec(ds);
      expect((spec.nodeSelector as Record<string, string>)["kubernetes.io/os"]).toBe("linux");
      for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) expect(c.image, c.name).toMatch(/(:[\w][\w.-]*|@sha256:[a-f0-9]{64})$/);
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

  it("declares an inline ephemeral, attach-free driver that gets pod info and workload identity and identity binding tokens", () => {
    const spec = csiDriver({}, "1.30.0");
    expect(spec).toEqual({
      podInfoOnMount: true,
      attachRequired: false,
      volumeLifecycleModes: ["Ephemeral"],
      requiresRepublish: true,
      tokenRequests: [{ audience: "api://AzureADTokenExchange" }, { audience: "api://AKSIdentityBinding" }],
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
    // Status objects: watch (refresh requests from the controller) only with rotation.
    expect([...verbsOn(roles, SPC_GROUP, "secretproviderclasspodstatuses")].sort()).toEqual(["create", "get", "list", "update", "watch"]);
    expect([...verbsOn(rolesBoundTo(render({ enableSecretRotation: false }), "csi-secrets-store"), SPC_GROUP, "secretproviderclasspodstatuses")].sort()).toEqual([
      "create",
      "get",
      "list",
      "update",
    ]);
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
    const views = find(objects, "ClusterRole").filter((o) => o.metadata.labels?.["rbac.authorization.k8s.io/aggregate-to-view"] === "true");
    expect([...verbsOn(views, SPC_GROUP, "secretproviderclasses")].sort()).toEqual(["get", "list", "watch"]);
    expect([...verbsOn(views, SPC_GROUP, "secretproviderclasspodstatuses")].sort()).toEqual(["get", "list", "watch"]);
  });

  it("names its roles and bindings as upstream's chart does, so users' bindings and scripts find them", () => {
    const names = (objects: ReturnType<typeof render>) =>
      objects
        .filter((o) => ["ClusterRole", "ClusterRoleBinding"].includes(o.kind) && o.metadata.labels?.["app.kubernetes.io/component"] !== "crds")
        .map((o) => `${o.kind}/${o.metadata.name}`)
        .sort();
    expect(names(render({ syncSecret: { enabled: true } }))).toEqual(
      [
        "ClusterRole/secretproviderclasses-role",
        "ClusterRoleBinding/secretproviderclasses-rolebinding",
        "ClusterRole/secretprovidersyncing-role",
        "ClusterRoleBinding/secretprovidersyncing-rolebinding",
        "ClusterRole/secretproviderclasses-admin-role",
        "ClusterRole/secretproviderclasses-viewer-role",
        "ClusterRole/secretproviderclasspodstatuses-viewer-role",
      ].sort(),
    );
    const bindings = find(render({ syncSecret: { enabled: true } }), "ClusterRoleBinding") as unknown as { metadata: { name: string }; roleRef: { name: string } }[];
    for (const b of bindings.filter((b) => !b.metadata.name.endsWith("upgrade-crds"))) expect(b.roleRef.name).toBe(b.metadata.name.replace(/binding$/, ""));
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
      runAsUser: 65532,
      runAsGroup: 65532,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
    });
    // The driver's pod opens the socket directory to it; its own pod needs no init container.
    expect(spec.initContainers).toBeUndefined();
    expect(c.volumeMounts).toEqual([
      { name: "providervol", mountPath: "/provider" },
      { name: "tmp", mountPath: "/tmp" },
      { name: "cluster-ca", mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true },
    ]);
    expect(spec.volumes).toContainEqual({ name: "providervol", hostPath: { path: "/var/run/secrets-store-csi-providers", type: "DirectoryOrCreate" } });
  });

  it("has its socket directory opened to its group by the driver's pod, with CAP_CHOWN only", () => {
    const objects = render({ linux: { providersDir: "/run/providers" }, provider: { runAsUser: 1234, runAsGroup: 5678 } });
    const init = container(driverDaemonSet(objects), "provider-dir");
    expect(init.command).toEqual([
      "/bin/sh",
      "-c",
      'chgrp "$1" "$0" && chmod 1775 "$0" && if [ -S "$0/azure.sock" ]; then chown "$2:$1" "$0/azure.sock"; fi',
      "/run/providers",
      "5678",
      "1234",
    ]);
    expect(init.image).toBe(container(driverDaemonSet(objects), "secrets-store").image);
    expect(init.securityContext).toEqual({ runAsUser: 0, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"], add: ["CHOWN"] } });
    expect(init.volumeMounts).toEqual([{ name: "providers-dir", mountPath: "/run/providers" }]);
    expect(container(providerDaemonSet(objects), "provider-azure-installer").securityContext).toMatchObject({ runAsUser: 1234, runAsGroup: 5678, runAsNonRoot: true });
  });

  it("prepares its socket directory itself only without the driver, and runs as root only when asked", () => {
    const alone = providerDaemonSet(render({ linux: { enabled: false } }));
    const init = container(alone, "provider-dir");
    expect(init.command?.slice(3)).toEqual(["/provider", "65532", "65532"]);
    expect(init.securityContext).toMatchObject({ runAsUser: 0, capabilities: { drop: ["ALL"], add: ["CHOWN"] } });
    const root = render({ provider: { runAsUser: 0 } });
    expect(container(providerDaemonSet(root), "provider-azure-installer").securityContext).toMatchObject({ runAsUser: 0, runAsNonRoot: false });
    expect(podSpec(driverDaemonSet(root)).initContainers).toBeUndefined();
    expect(podSpec(driverDaemonSet(render({ provider: { enabled: false } }))).initContainers).toBeUndefined();
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

  it("gives identity binding its flags and the cluster CA, without a token", () => {
    const byDefault = providerDaemonSet(render());
    const c = container(byDefault, "provider-azure-installer");
    expect([flag(c.args, "token-proxy-url"), flag(c.args, "sni-name")]).toEqual([undefined, undefined]);
    // the provider's default --token-proxy-ca-file; the ConfigMap every namespace has holds the cluster CA
    expect(podSpec(byDefault).volumes).toContainEqual({
      name: "cluster-ca",
      configMap: { name: "kube-root-ca.crt", optional: true, items: [{ key: "ca.crt", path: "ca.crt" }] },
    });
    expect(podSpec(byDefault).automountServiceAccountToken).toBe(false);
    const set = providerDaemonSet(render({ provider: { identityBinding: { tokenProxyURL: "https://proxy.example.com", sniName: "a0123.ests.aks", mountClusterCA: false } } }));
    const args = container(set, "provider-azure-installer").args;
    expect([flag(args, "token-proxy-url"), flag(args, "sni-name")]).toEqual(["https://proxy.example.com", "a0123.ests.aks"]);
    expect(podSpec(set).volumes?.map((v) => v.name)).not.toContain("cluster-ca");
    expect(container(set, "provider-azure-installer").volumeMounts?.map((m) => m.name)).not.toContain("cluster-ca");
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
    expect(kinds.sort()).toEqual([
      "secretproviderclasses.secrets-store.csi.x-k8s.io",
      "secretproviderclasspodstatuses.secrets-store.csi.x-k8s.io",
      "secretsyncs.secret-sync.x-k8s.io",
    ]);
  });
});

describe("SecretSync controller", () => {
  const SS_GROUP = "secret-sync.x-k8s.io";
  const enabled = (more: Record<string, unknown> = {}) => render({ syncController: { enabled: true, ...more } });

  it("is not rendered unless enabled (only its CRD ships with the chart)", () => {
    const objects = render();
    expect(objects.filter((o) => o.metadata.labels?.["app.kubernetes.io/component"] === "sync-controller")).toEqual([]);
    expect(find(objects, "ValidatingAdmissionPolicy")).toEqual([]);
  });

  it("runs the controller from the driver's image, unprivileged, with the Azure provider as a sidecar on a shared emptyDir", () => {
    const deployment = syncControllerDeployment(enabled());
    expect(deployment.metadata.name).toBe("secrets-store-sync-controller-manager");
    expect((deployment.spec as { replicas: number }).replicas).toBe(2);
    const spec = podSpec(deployment);
    expect(spec.serviceAccountName).toBe("secrets-store-sync-controller-manager");
    expect(spec.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } });
    expect(spec.containers.map((c) => c.name)).toEqual(["manager"]);
    const manager = container(deployment, "manager");
    expect(manager.image).toBe(container(driverDaemonSet(enabled()), "secrets-store").image);
    expect(manager.command).toEqual(["node", "--lite-mode", "--no-icu-timezone-data", "/opt/secrets-store-sync-controller/secrets-store-sync-controller.mjs"]);
    expect(flag(manager.args, "provider-volume")).toBe("/provider");
    expect(flag(manager.args, "token-request-audience")).toBe("api://AzureADTokenExchange");
    expect(flag(manager.args, "leader-elect")).toBe("");
    expect(flag(manager.args, "rotation-poll-interval")).toBe("2m");
    expect(flag(manager.args, "metrics-bind-address")).toBe(":8085");
    expect(flag(manager.args, "health-probe-bind-address")).toBe(":8081");
    expect(manager.env?.map((e) => e.name)).toEqual(["SYNC_CONTROLLER_POD_NAME", "SYNC_CONTROLLER_POD_UID", "SYNC_CONTROLLER_POD_NAMESPACE", "LOG_LEVEL"]);
    expect(manager.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    const provider = container(deployment, "provider-azure");
    // A sidecar: an init container that keeps running, started (and ready) before the controller.
    expect(provider.restartPolicy).toBe("Always");
    expect(provider.image).toBe(container(providerDaemonSet(enabled()), "provider-azure-installer").image);
    expect(flag(provider.args, "endpoint")).toBe("unix:///provider/azure.sock");
    expect([flag(provider.args, "healthz-port"), flag(provider.args, "prometheus-port")]).toEqual(["8990", "8899"]);
    expect(provider.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    for (const c of [manager, provider]) expect(c.volumeMounts).toContainEqual({ name: "provider-socket", mountPath: "/provider" });
    const volumes = spec.volumes as { name: string; hostPath?: unknown; emptyDir?: unknown }[];
    expect(volumes.find((v) => v.name === "provider-socket")).toEqual({ name: "provider-socket", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } });
    expect(volumes.some((v) => v.hostPath)).toBe(false);
  });

  it("gives only the controller container an API token; the provider sidecar has none", () => {
    const deployment = syncControllerDeployment(enabled());
    expect(podSpec(deployment).automountServiceAccountToken).toBe(false);
    expect(container(deployment, "manager").volumeMounts).toContainEqual({ name: "api-token", mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true });
    expect(container(deployment, "provider-azure").volumeMounts?.map((m) => m.name)).not.toContain("api-token");
  });

  it("follows its values: replicas, interval, audiences, ports, image", () => {
    const deployment = syncControllerDeployment(
      enabled({
        replicas: 1,
        rotationPollInterval: "30s",
        tokenRequestAudience: [{ audience: "api://AzureADTokenExchange" }, { audience: "api://AKSIdentityBinding" }],
        metricsPort: 9085,
        healthPort: 9081,
        image: { repository: "registry.example.com/controller", tag: "v2" },
        providerSidecar: { healthzPort: 9990, metricsPort: 9899 },
      }),
    );
    expect((deployment.spec as { replicas: number }).replicas).toBe(1);
    const manager = container(deployment, "manager");
    expect(manager.image).toBe("registry.example.com/controller:v2");
    expect(flag(manager.args, "rotation-poll-interval")).toBe("30s");
    expect(flag(manager.args, "token-request-audience")).toBe("api://AzureADTokenExchange,api://AKSIdentityBinding");
    expect(manager.ports).toEqual([
      { name: "metrics", containerPort: 9085, protocol: "TCP" },
      { name: "healthz", containerPort: 9081, protocol: "TCP" },
    ]);
    expect([flag(container(deployment, "provider-azure").args, "healthz-port"), flag(container(deployment, "provider-azure").args, "prometheus-port")]).toEqual(["9990", "9899"]);
    expect(flag(container(syncControllerDeployment(enabled({ tokenRequestAudience: [] })), "manager").args, "token-request-audience")).toBeUndefined();
  });

  it("grants exactly the calls it makes, under upstream's role names, and its Lease only", () => {
    const objects = enabled();
    const roles = rolesBoundTo(objects, "secrets-store-sync-controller-manager");
    expect(roles.map((r) => r.metadata.name)).toEqual(["secrets-store-sync-controller-manager-role"]);
    expect([...verbsOn(roles, SS_GROUP, "secretsyncs")].sort()).toEqual(["list", "watch"]);
    expect([...verbsOn(roles, SS_GROUP, "secretsyncs/status")].sort()).toEqual(["patch"]);
    expect([...verbsOn(roles, SPC_GROUP, "secretproviderclasses")].sort()).toEqual(["list", "watch"]);
    expect([...verbsOn(roles, "", "secrets")].sort()).toEqual(["create", "patch"]);
    expect([...verbsOn(roles, "", "serviceaccounts/token")].sort()).toEqual(["create"]);
    expect([...verbsOn(roles, "", "events")].sort()).toEqual(["create"]);
    const resources = roles.flatMap((r) => (r as unknown as { rules: { resources: string[] }[] }).rules.flatMap((rule) => rule.resources));
    expect(new Set(resources)).toEqual(new Set(["secretsyncs", "secretsyncs/status", "secretproviderclasses", "serviceaccounts/token", "secrets", "events"]));
    const leader = namespacedRolesBoundTo(objects, "secrets-store-sync-controller-manager");
    expect(leader.map((r) => r.metadata.name)).toEqual(["secrets-store-sync-controller-leader-election-role"]);
    expect((leader[0] as unknown as { rules: unknown[] }).rules).toEqual([
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], resourceNames: ["secrets-store-sync-controller-leader"], verbs: ["get", "update"] },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
    ]);
    // Namespace admins and editors manage SecretSyncs; viewers read them.
    const editor = one(objects, "ClusterRole", (o) => o.metadata.name === "secretsync-editor-role");
    expect(editor.metadata.labels?.["rbac.authorization.k8s.io/aggregate-to-edit"]).toBe("true");
    expect(one(objects, "ClusterRole", (o) => o.metadata.name === "secretsync-viewer-role").metadata.labels?.["rbac.authorization.k8s.io/aggregate-to-view"]).toBe("true");
  });

  it("with Key Vault events, may watch and annotate status objects, nothing more; with restart on rotation, watch and patch three workload kinds", () => {
    const base = ["secretsyncs", "secretsyncs/status", "secretproviderclasses", "serviceaccounts/token", "secrets", "events"];
    const resources = (objects: ReturnType<typeof render>) =>
      new Set(rolesBoundTo(objects, "secrets-store-sync-controller-manager").flatMap((r) => (r as unknown as { rules: { resources: string[] }[] }).rules.flatMap((rule) => rule.resources)));
    const pull = { pull: { enabled: true, namespaceEndpoint: "https://ns.eastus-1.eventgrid.azure.net", topic: "kv", subscription: "controller" } };
    const events = enabled({ events: pull });
    const roles = rolesBoundTo(events, "secrets-store-sync-controller-manager");
    expect([...verbsOn(roles, SPC_GROUP, "secretproviderclasspodstatuses")].sort()).toEqual(["list", "patch", "watch"]);
    expect(resources(events)).toEqual(new Set([...base, "secretproviderclasspodstatuses"]));
    expect(verbsOn(roles, "", "pods").size).toBe(0);

    const restart = enabled({ restartOnRotation: { enabled: true } });
    const restartRoles = rolesBoundTo(restart, "secrets-store-sync-controller-manager");
    expect([...verbsOn(restartRoles, SPC_GROUP, "secretproviderclasspodstatuses")].sort()).toEqual(["list", "watch"]);
    for (const kind of ["deployments", "statefulsets", "daemonsets"]) expect([...verbsOn(restartRoles, "apps", kind)].sort()).toEqual(["list", "patch", "watch"]);
    expect(resources(restart)).toEqual(new Set([...base, "secretproviderclasspodstatuses", "deployments", "statefulsets", "daemonsets"]));
    expect(flag(container(syncControllerDeployment(restart), "manager").args, "restart-on-rotation")).toBe("");
    expect(flag(container(syncControllerDeployment(restart), "manager").args, "restart-min-interval")).toBe("30s");
    // Off by default: no events, no restarts, none of these rights.
    expect(resources(enabled())).toEqual(new Set(base));
  });

  it("serves the event webhook from a Service (and an Ingress when asked), with its certificate and query secret mounted", () => {
    const webhook = {
      enabled: true,
      tlsSecretName: "events-tls",
      querySecret: { secretName: "events-query" },
      entraId: { tenantId: "72f988bf-0000-4000-8000-000000000001", audiences: ["api://keyvault-events"] },
      ingress: { enabled: true, host: "events.example.com", className: "nginx", annotations: { "nginx.ingress.kubernetes.io/backend-protocol": "HTTPS" } },
    };
    const objects = enabled({ events: { webhook } });
    const manager = container(syncControllerDeployment(objects), "manager");
    expect(flag(manager.args, "event-webhook-bind-address")).toBe(":8443");
    expect(flag(manager.args, "event-webhook-tls-cert-file")).toBe("/etc/event-webhook/tls/tls.crt");
    expect(flag(manager.args, "event-webhook-query-secrets-file")).toBe("/etc/event-webhook/query-secret/secrets");
    expect(flag(manager.args, "event-webhook-tenant-id")).toBe("72f988bf-0000-4000-8000-000000000001");
    expect(flag(manager.args, "event-webhook-audience")).toBe("api://keyvault-events");
    expect(manager.ports).toContainEqual({ name: "event-webhook", containerPort: 8443, protocol: "TCP" });
    const volumes = podSpec(syncControllerDeployment(objects)).volumes as { name: string; secret?: { secretName: string } }[];
    expect(volumes.filter((v) => v.secret).map((v) => v.secret!.secretName)).toEqual(["events-tls", "events-query"]);
    const service = one(objects, "Service", (o) => o.metadata.name === "secrets-store-sync-controller-manager-events");
    expect((service.spec as { ports: unknown[] }).ports).toEqual([{ name: "event-webhook", port: 443, targetPort: "event-webhook", protocol: "TCP" }]);
    const ingress = one(objects, "Ingress", () => true);
    expect(ingress.metadata.annotations).toEqual({ "nginx.ingress.kubernetes.io/backend-protocol": "HTTPS" });
    expect(JSON.stringify(ingress.spec)).toContain("events.example.com");
    // Nothing is exposed without the webhook.
    expect(find(enabled(), "Service")).toEqual([]);
  });

  it("refuses a webhook without a certificate or an authentication, and pull without its topic", () => {
    expect(renderError({ syncController: { enabled: true, events: { webhook: { enabled: true, querySecret: { secretName: "q" } } } } })).toContain("tlsSecretName is required");
    expect(renderError({ syncController: { enabled: true, events: { webhook: { enabled: true, tlsSecretName: "t" } } } })).toContain("needs an authentication");
    expect(renderError({ syncController: { enabled: true, events: { pull: { enabled: true, namespaceEndpoint: "https://ns.eastus-1.eventgrid.azure.net" } } } })).toContain(
      "needs namespaceEndpoint, topic and subscription",
    );
  });

  it("pulls events as its own workload identity", () => {
    const objects = enabled({
      events: { pull: { enabled: true, namespaceEndpoint: "https://ns.eastus-1.eventgrid.azure.net", topic: "kv", subscription: "controller", workloadIdentity: { clientId: "53333333-3333-4333-8333-333333333333" } } },
    });
    const deployment = syncControllerDeployment(objects);
    const manager = container(deployment, "manager");
    expect([flag(manager.args, "event-namespace-endpoint"), flag(manager.args, "event-namespace-topic"), flag(manager.args, "event-namespace-subscription")]).toEqual([
      "https://ns.eastus-1.eventgrid.azure.net",
      "kv",
      "controller",
    ]);
    expect((deployment.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels["azure.workload.identity/use"]).toBe("true");
    const sa = one(objects, "ServiceAccount", (o) => o.metadata.name === "secrets-store-sync-controller-manager");
    expect(sa.metadata.annotations).toEqual({ "azure.workload.identity/client-id": "53333333-3333-4333-8333-333333333333" });
  });

  it("ships upstream's admission policies for its service account, plus ours for every other one, each with a Deny binding", () => {
    const objects = enabled();
    const policies = find(objects, "ValidatingAdmissionPolicy");
    expect(policies.map((p) => p.metadata.name).sort()).toEqual(
      [
        "secrets-store-sync-controller-create-update-policy",
        "secrets-store-sync-controller-create-update-token-deny-policy",
        "secrets-store-sync-controller-delete-policy",
        "secrets-store-sync-controller-update-check-oldobject-policy",
        "secrets-store-sync-controller-update-label-policy",
        "secrets-store-sync-controller-validate-token-policy",
        "secrets-store-sync-controller-validate-label-policy",
        "secrets-store-sync-controller-validate-annotation-policy",
        "secrets-store-sync-controller-secret-writers-policy",
      ].sort(),
    );
    const bindings = find(objects, "ValidatingAdmissionPolicyBinding") as unknown as { metadata: { name: string }; spec: { policyName: string; validationActions: string[] } }[];
    expect(bindings.map((b) => b.spec.policyName).sort()).toEqual(policies.map((p) => p.metadata.name).sort());
    for (const b of bindings) {
      expect(b.spec.validationActions).toEqual(["Deny"]);
      expect(b.metadata.name).toBe(`${b.spec.policyName}-binding`);
    }
    const spec = (name: string) => one(objects, "ValidatingAdmissionPolicy", (o) => o.metadata.name === name).spec as { failurePolicy: string; matchConditions?: { expression: string }[]; variables?: { name: string; expression: string }[] };
    for (const p of policies) expect((p.spec as { failurePolicy: string }).failurePolicy).toBe("Fail");
    expect(spec("secrets-store-sync-controller-delete-policy").matchConditions?.[0]?.expression).toBe(
      "request.userInfo.username == 'system:serviceaccount:kube-system:secrets-store-sync-controller-manager'",
    );
    const token = spec("secrets-store-sync-controller-validate-token-policy").variables!;
    expect(token.find((v) => v.name === "hasCorrectAudience")?.expression).toContain("['api://AzureADTokenExchange']");
    const types = spec("secrets-store-sync-controller-create-update-policy").variables!.find((v) => v.name === "allowedSecretType")!.expression;
    expect(types).toContain("'kubernetes.io/tls'");
    expect(types).not.toContain("service-account-token");
    expect(enabled({ validatingAdmissionPolicies: { enabled: false } }).filter((o) => o.kind.startsWith("ValidatingAdmissionPolicy"))).toEqual([]);
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
