// The chart, deploy/ and examples/ against a real kube-apiserver (the shared
// test cluster): every object is submitted with a server-side dry run and
// strict field validation, so an unknown field, a wrong type or a value the
// API rejects fails here. The driver's RBAC is also created for real and
// checked with the API server's own authorizer (kubectl auth can-i).
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import YAML from "yaml";
import { DEPLOY_DIR } from "../../scripts/generate-deploy.ts";
import { createNamespace, kubeConfigFromInjected } from "../harness/kube.ts";
import { findHelm, render, type K8sObject } from "./chart.ts";
import { loadExamples } from "./examples.ts";

const kubeconfig = inject("kubeconfig");
const kubectlPath = join(findHelm(), "..", "kubectl");
const suffix = randomBytes(3).toString("hex");

function kubectl(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(kubectlPath, ["--kubeconfig", kubeconfig, ...args], { input, encoding: "utf8", timeout: 60_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/**
 * Submits objects with a server-side dry run; returns kubectl's output, fails
 * with its message, and treats any warning (deprecated API, ignored field) as
 * a failure too.
 */
function dryRun(objects: K8sObject[], extra: string[] = []): string {
  const input = objects.map((o) => YAML.stringify(o)).join("---\n");
  // --force-conflicts: the RBAC objects have upstream's fixed names, so another
  // test may have created them already; who owns a field is not what is tested.
  const run = kubectl(["apply", "--server-side", "--force-conflicts", "--field-manager=sscsi-install-test", "--dry-run=server", "--validate=strict", ...extra, "-f", "-"], input);
  if (run.status !== 0) throw new Error(`server-side dry run refused:\n${run.stderr}`);
  expect(run.stderr, "the API server warned").toBe("");
  return run.stdout;
}

let serverVersion: string;
// Kinds whose APIs a bare control plane does not serve (they come with the Prometheus operator).
const NOT_SERVED = new Set(["monitoring.coreos.com/v1"]);

beforeAll(() => {
  const version = JSON.parse(execFileSync(kubectlPath, ["--kubeconfig", kubeconfig, "version", "-o", "json"], { encoding: "utf8" })) as {
    serverVersion: { gitVersion: string };
  };
  serverVersion = version.serverVersion.gitVersion.replace(/^v/, "").replace(/[-+].*$/, "");
});

const VALUE_SETS: Record<string, Record<string, unknown>> = {
  defaults: {},
  "sync on, rotation off": { syncSecret: { enabled: true }, enableSecretRotation: false },
  "workload identity audiences": { tokenRequests: [{ audience: "api://AzureADTokenExchange", expirationSeconds: 3600 }, { audience: "api://AKSIdentityBinding" }] },
  "everything optional on": {
    linux: {
      image: { repository: "registry.example.com/driver", digest: "sha256:" + "1".repeat(64) },
      livenessProbe: { sidecar: true },
      registrar: { sidecar: true },
      priorityClassName: "system-node-critical",
      env: [{ name: "EXTRA", value: "1" }],
    },
    provider: { hostNetwork: true, privileged: true, cloudName: "AzureChinaCloud", metricsAddr: 9100, runAsUser: 65532 },
    constructPEMChain: false,
    writeCertAndKeyInSeparateFiles: true,
    metrics: { podMonitor: { enabled: true } },
    grafanaDashboard: { enabled: true },
    imagePullSecrets: [{ name: "pull" }],
    logVerbosity: 6,
    logFormatJSON: true,
  },
  // The admission policies' CEL is compiled and type-checked by the API server.
  "SecretSync controller on": {
    syncController: { enabled: true, tokenRequestAudience: [{ audience: "api://AzureADTokenExchange" }, { audience: "api://AKSIdentityBinding" }] },
  },
};

describe.each(Object.entries(VALUE_SETS))("chart with %s", (_name, values) => {
  it("is accepted by the API server object by object (hooks included)", () => {
    const objects = render(values, { kubeVersion: serverVersion, namespace: "kube-system", releaseName: `sscsi-${suffix}` });
    const served = objects.filter((o) => !NOT_SERVED.has(o.apiVersion));
    const skipped = objects.filter((o) => NOT_SERVED.has(o.apiVersion)).map((o) => o.kind);
    if (values.metrics) expect(skipped).toEqual(["PodMonitor", "PodMonitor"]);
    else expect(skipped).toEqual([]);
    const out = dryRun(served);
    for (const o of served) expect(out).toContain(`${o.metadata.name} serverside-applied (server dry run)`);
  });
});

describe("the CSIDriver on this API server", () => {
  it("accepts serviceAccountTokenInSecrets where the chart renders it", () => {
    const [major, minor] = serverVersion.split(".").map(Number) as [number, number];
    const csiDriver = render({}, { kubeVersion: serverVersion }).find((o) => o.kind === "CSIDriver")!;
    const spec = csiDriver.spec as Record<string, unknown>;
    if (major > 1 || minor >= 35) expect(spec.serviceAccountTokenInSecrets).toBe(true);
    const out = kubectl(["apply", "--server-side", "--field-manager=sscsi-install-test", "--dry-run=server", "-o", "json", "-f", "-"], YAML.stringify(csiDriver));
    expect(out.stderr).toBe("");
    const echoed = JSON.parse(out.stdout) as { spec: Record<string, unknown> };
    expect(echoed.spec).toMatchObject(spec);
  });
});

describe("deploy/", () => {
  it("is accepted by the API server (kubectl apply -k deploy/)", () => {
    const run = kubectl(["apply", "--server-side", "--force-conflicts", "--field-manager=sscsi-install-test", "--dry-run=server", "--validate=strict", "-k", DEPLOY_DIR]);
    expect(run.status, run.stderr).toBe(0);
    // deploy/ targets Kubernetes 1.30, which has no serviceAccountTokenInSecrets;
    // 1.35 and newer say so, and nothing else may be warned about.
    const [major, minor] = serverVersion.split(".").map(Number) as [number, number];
    const warnings = run.stderr.split("\n").filter((l) => l.trim() !== "");
    if (major > 1 || minor >= 35) {
      expect(warnings).toEqual([expect.stringMatching(/^Warning: spec\.serviceAccountTokenInSecrets is unset/)]);
    } else {
      expect(warnings).toEqual([]);
    }
    expect(run.stdout).toContain("daemonset.apps/csi-secrets-store serverside-applied (server dry run)");
    expect(run.stdout).toContain("daemonset.apps/csi-secrets-store-provider-azure serverside-applied (server dry run)");
    expect(run.stdout).toContain("csidriver.storage.k8s.io/secrets-store.csi.k8s.io serverside-applied (server dry run)");
  });

  it("has an optional Secret-sync RBAC file the API server accepts", () => {
    const run = kubectl(["apply", "--server-side", "--force-conflicts", "--field-manager=sscsi-install-test", "--dry-run=server", "--validate=strict", "-f", join(DEPLOY_DIR, "rbac-secretprovidersyncing.yaml")]);
    expect(run.stderr).toBe("");
    expect(run.stdout).toContain("clusterrole.rbac.authorization.k8s.io/secretprovidersyncing-role serverside-applied (server dry run)");
    expect(run.stdout).toContain("clusterrolebinding.rbac.authorization.k8s.io/secretprovidersyncing-rolebinding serverside-applied (server dry run)");
  });
});

describe("deploy/secrets-store-sync-controller.yaml", () => {
  it("is accepted by the API server, admission policies and their CEL included", () => {
    const run = kubectl(["apply", "--server-side", "--force-conflicts", "--field-manager=sscsi-install-test", "--dry-run=server", "--validate=strict", "-f", join(DEPLOY_DIR, "secrets-store-sync-controller.yaml")]);
    expect(run.stderr).toBe("");
    expect(run.stdout).toContain("deployment.apps/secrets-store-sync-controller-manager serverside-applied (server dry run)");
    expect(run.stdout).toContain("validatingadmissionpolicy.admissionregistration.k8s.io/secrets-store-sync-controller-create-update-policy serverside-applied (server dry run)");
  });
});

describe("examples/", () => {
  const ns = `examples-${suffix}`;
  beforeAll(async () => {
    await createNamespace(kubeConfigFromInjected(), ns);
  });
  afterAll(() => {
    kubectl(["delete", "namespace", ns, "--wait=false", "--ignore-not-found"]);
  });

  it.each(loadExamples().map((e) => [e.name, e] as const))("%s is accepted by the API server", (_name, example) => {
    // Pod admission looks the pod's ServiceAccount up, so the prerequisites
    // (ServiceAccounts, Secrets) are created for real; the rest is a dry run.
    const prerequisites = example.objects.filter((o) => o.kind === "ServiceAccount" || o.kind === "Secret");
    if (prerequisites.length > 0) {
      const run = kubectl(["apply", "-n", ns, "--server-side", "--field-manager=sscsi-install-test", "--validate=strict", "-f", "-"], prerequisites.map((o) => YAML.stringify(o)).join("---\n"));
      expect(run.stderr).toBe("");
    }
    const rest = example.objects.filter((o) => !prerequisites.includes(o)) as K8sObject[];
    const out = dryRun(rest, ["-n", ns]);
    expect(out).toContain(`secretproviderclass.secrets-store.csi.x-k8s.io/${example.objects.find((o) => o.kind === "SecretProviderClass")!.metadata.name} serverside-applied (server dry run)`);
    const kinds: Record<string, string> = { Pod: "pod", Deployment: "deployment.apps", SecretSync: "secretsync.secret-sync.x-k8s.io" };
    const workloads = example.objects.filter((o) => o.kind in kinds);
    expect(workloads.length).toBeGreaterThan(0);
    for (const o of workloads) expect(out).toContain(`${kinds[o.kind]}/${o.metadata.name} serverside-applied (server dry run)`);
  });
});

describe("driver RBAC, enforced by the API server", () => {
  const release = `rbac-${suffix}`;
  const created: string[] = [];
  const sa = (name: string) => `system:serviceaccount:kube-system:${name}`;

  function install(values: Record<string, unknown>): K8sObject[] {
    const objects = render({ ...values, linux: { crds: { enabled: false } } }, { releaseName: release, noHooks: true }).filter((o) =>
      ["ClusterRole", "ClusterRoleBinding", "ServiceAccount"].includes(o.kind),
    );
    // The roles have upstream's fixed names, so another test may have applied them: take them over.
    const run = kubectl(["apply", "--server-side", "--force-conflicts", "--field-manager=sscsi-install-test", "-f", "-"], objects.map((o) => YAML.stringify(o)).join("---\n"));
    expect(run.stderr).toBe("");
    for (const o of objects) created.push(`${o.kind.toLowerCase()}/${o.metadata.name}`);
    return objects;
  }

  function can(who: string, verb: string, resource: string): boolean {
    const run = kubectl(["auth", "can-i", verb, resource, "--as", who, "-n", "default"]);
    if (run.status !== 0 && run.stdout.trim() !== "no") throw new Error(`kubectl auth can-i failed: ${run.stderr}`);
    return run.stdout.trim() === "yes";
  }

  afterAll(() => {
    for (const name of created) kubectl(["delete", name, "-n", "kube-system", "--ignore-not-found", "--wait=false"]);
  });

  it("lets the driver read SecretProviderClasses and pods and write pod statuses and events, but not Secrets", () => {
    install({});
    const driver = sa(`${release}-secrets-store-csi`);
    expect(can(driver, "get", "secretproviderclasses.secrets-store.csi.x-k8s.io")).toBe(true);
    expect(can(driver, "list", "secretproviderclasses.secrets-store.csi.x-k8s.io")).toBe(false);
    expect(can(driver, "watch", "pods")).toBe(true);
    expect(can(driver, "create", "secretproviderclasspodstatuses.secrets-store.csi.x-k8s.io")).toBe(true);
    expect(can(driver, "delete", "secretproviderclasspodstatuses.secrets-store.csi.x-k8s.io")).toBe(false);
    expect(can(driver, "create", "events")).toBe(true);
    expect(can(driver, "create", "secretproviderclasses.secrets-store.csi.x-k8s.io")).toBe(false);
    expect(can(driver, "get", "secrets")).toBe(false);
    expect(can(driver, "create", "serviceaccounts/token")).toBe(false);
    expect(can(driver, "list", "nodes")).toBe(false);
  });

  it("gives the provider nothing", () => {
    const provider = sa(`${release}-secrets-store-csi-provider-azure`);
    for (const [verb, resource] of [
      ["get", "secretproviderclasses.secrets-store.csi.x-k8s.io"],
      ["get", "pods"],
      ["get", "secrets"],
      ["create", "events"],
    ] as const) {
      expect(can(provider, verb, resource), `${verb} ${resource}`).toBe(false);
    }
  });

  it("adds Secret access with syncSecret.enabled", () => {
    install({ syncSecret: { enabled: true } });
    const driver = sa(`${release}-secrets-store-csi`);
    expect(can(driver, "create", "secrets")).toBe(true);
    expect(can(driver, "patch", "secrets")).toBe(true);
    expect(can(driver, "delete", "secrets")).toBe(false);
    expect(can(driver, "list", "secrets")).toBe(false);
  });
});
