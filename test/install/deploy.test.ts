// deploy/ holds the chart rendered with default values (scripts/generate-deploy.ts);
// it must be exactly what the generator produces now, and usable with kubectl.
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { checkGenerated, DEPLOY_DIR, generate, REPO_ROOT } from "../../scripts/generate-deploy.ts";
import { findHelm } from "./chart.ts";

describe("deploy/", () => {
  let files: Map<string, string>;
  beforeAll(() => {
    files = generate(findHelm());
  });

  it("is identical to the generator's output (node scripts/generate-deploy.ts --check)", () => {
    const run = spawnSync(process.execPath, [join(REPO_ROOT, "scripts", "generate-deploy.ts"), "--check"], { encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/files up to date/);
  });

  it("--check notices a changed, a missing and a stale file", () => {
    const changed = new Map(files);
    changed.set("deploy/csidriver.yaml", files.get("deploy/csidriver.yaml")!.replace("requiresRepublish: true", "requiresRepublish: false"));
    changed.delete("deploy/provider-azure.yaml");
    changed.set("deploy/not-there-yet.yaml", "x\n");
    const problems = checkGenerated(changed);
    expect(problems).toContainEqual(expect.stringMatching(/^deploy\/csidriver\.yaml: differs \(line \d+: on disk "  requiresRepublish: true"/));
    expect(problems).toContain("deploy/not-there-yet.yaml: missing");
    expect(problems).toContain("deploy/provider-azure.yaml: stale (no longer generated)");
  });

  it("is plain Kubernetes YAML without Helm's own labels or hooks", () => {
    for (const [path, text] of files) {
      if (!path.startsWith("deploy/") || !path.endsWith(".yaml")) continue;
      expect(text, path).not.toMatch(/helm\.sh\/|managed-by: Helm|\{\{/);
      for (const doc of YAML.parseAllDocuments(text)) expect(doc.errors, path).toEqual([]);
    }
  });

  it("targets the oldest supported Kubernetes: tokens stay in the volume context", () => {
    const csiDriver = YAML.parseAllDocuments(files.get("deploy/csidriver.yaml")!)
      .map((d) => d.toJS() as { kind?: string; spec?: Record<string, unknown> } | null)
      .find((o) => o?.kind === "CSIDriver");
    expect(csiDriver?.spec?.serviceAccountTokenInSecrets).toBeUndefined();
    expect(csiDriver?.spec?.tokenRequests).toEqual([{ audience: "api://AzureADTokenExchange" }, { audience: "api://AKSIdentityBinding" }]);
  });

  it("builds with kubectl kustomize into the CRDs, the CSIDriver, RBAC and both DaemonSets", () => {
    const kubectl = join(findHelm(), "..", "kubectl");
    const out = execFileSync(kubectl, ["kustomize", DEPLOY_DIR], { encoding: "utf8" });
    const objects = YAML.parseAllDocuments(out).map((d) => d.toJS() as { kind: string; metadata: { name: string } });
    const names = objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(names).toEqual(
      [
        "CSIDriver/secrets-store.csi.k8s.io",
        "ClusterRole/secretproviderclasses-role",
        "ClusterRole/secretproviderclasses-admin-role",
        "ClusterRole/secretproviderclasses-viewer-role",
        "ClusterRole/secretproviderclasspodstatuses-viewer-role",
        "ClusterRoleBinding/secretproviderclasses-rolebinding",
        "CustomResourceDefinition/secretproviderclasses.secrets-store.csi.x-k8s.io",
        "CustomResourceDefinition/secretproviderclasspodstatuses.secrets-store.csi.x-k8s.io",
        "CustomResourceDefinition/secretsyncs.secret-sync.x-k8s.io",
        "DaemonSet/csi-secrets-store",
        "DaemonSet/csi-secrets-store-provider-azure",
        "ServiceAccount/csi-secrets-store",
        "ServiceAccount/csi-secrets-store-provider-azure",
      ].sort(),
    );
  });

  it("keeps Secret access in a separate, optional file", () => {
    const sync = files.get("deploy/rbac-secretprovidersyncing.yaml")!;
    expect(sync).toContain("--enable-secret-sync=true");
    expect(sync).toMatch(/resources: \["secrets"\]/);
    // The SecretSync controller writes Secrets too: its file is optional as well.
    const optional = ["deploy/rbac-secretprovidersyncing.yaml", "deploy/secrets-store-sync-controller.yaml"];
    for (const [path, text] of files) if (!optional.includes(path) && path.endsWith(".yaml")) expect(text, path).not.toMatch(/"secrets"\]/);
    const kustomization = YAML.parse(files.get("deploy/kustomization.yaml")!) as { resources: string[] };
    expect(kustomization.resources).not.toContain("rbac-secretprovidersyncing.yaml");
    expect(kustomization.resources).not.toContain("secrets-store-sync-controller.yaml");
    expect(files.get("deploy/secrets-store-sync-controller.yaml")).toContain("kind: ValidatingAdmissionPolicy");
    expect(kustomization.resources).toContain("secrets-store-csi-driver.yaml");
  });
});
