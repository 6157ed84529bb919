// secrets-store-csi-lint --kubeconfig against the real kube-apiserver: it
// lists the SecretProviderClasses of every namespace (and only lists: the
// audit log shows no other call), reports each as it does for files, and a
// user without list permission gets a clear error and exit status 2.
import { CustomObjectsApi, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { beforeAll, describe, expect, inject, it } from "vitest";
import type { LintResult } from "../../src/lint/report.ts";
import { auditLogOffset, createNamespace, kubeConfigFromInjected, kubeconfigFor, readAuditEvents, waitFor } from "../harness/kube.ts";
import { runLint } from "./run.ts";

const GROUP = "secrets-store.csi.x-k8s.io";
const objects = (item: string) => `array:\n  - |\n${item.replace(/^/gm, "    ")}\n`;

describe("secrets-store-csi-lint --kubeconfig", () => {
  beforeAll(async () => {
    const kc = kubeConfigFromInjected();
    const custom = kc.makeApiClient(CustomObjectsApi);
    const classes: Array<[string, string, string]> = [
      ["lint-cluster-a", "good", "objectName: db\nobjectType: secret"],
      ["lint-cluster-b", "mode-zero", 'objectName: db\nobjectType: secret\nfilePermission: "999"'],
      ["lint-cluster-b", "dot-alias", "objectName: db\nobjectType: secret\nobjectAlias: ./db"],
    ];
    for (const ns of new Set(classes.map((c) => c[0]))) await createNamespace(kc, ns);
    for (const [namespace, name, item] of classes) {
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: "v1",
        namespace,
        plural: "secretproviderclasses",
        body: {
          apiVersion: `${GROUP}/v1`,
          kind: "SecretProviderClass",
          metadata: { name },
          spec: { provider: "azure", parameters: { keyvaultName: "kv1", tenantID: "00000000-0000-4000-8000-000000000000", objects: objects(item) } },
        },
      });
    }
  });

  it("reports the classes of every namespace, listing them and nothing else", async () => {
    const offset = await auditLogOffset();
    const run = await runLint([`--kubeconfig=${inject("kubeconfig")}`, "--output=json"]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(1);
    const result = JSON.parse(run.stdout) as LintResult;
    const ours = result.classes.filter((c) => c.namespace.startsWith("lint-cluster-"));
    expect(ours.map((c) => [c.namespace, c.name, c.verdict, c.source])).toEqual([
      ["lint-cluster-a", "good", "fine", "cluster"],
      ["lint-cluster-b", "dot-alias", "differs", "cluster"],
      ["lint-cluster-b", "mode-zero", "refused", "cluster"],
    ]);
    // the admin identity is the lint's alone while it runs (test files run one at a time), but for
    // kube-controller-manager's, which runs with it once a test started one (it adds each new
    // namespace's kube-root-ca.crt ConfigMap, maybe just now)
    const calls = (await readAuditEvents({ fromOffset: offset })).filter(
      (e) => e.user.username === "sscsi-admin" && e.stage === "ResponseComplete" && !(e.userAgent ?? "").startsWith("kube-controller-manager/"),
    );
    expect(calls.length).toBeGreaterThan(0);
    expect(new Set(calls.map((e) => `${e.verb} ${e.objectRef?.resource} ${e.objectRef?.namespace ?? "(all namespaces)"}`))).toEqual(new Set(["list secretproviderclasses (all namespaces)"]));
  });

  it("a user who may not list SecretProviderClasses gets exit status 2 and the API server's answer", async () => {
    const kubeconfig = await kubeconfigFor("lint-nobody");
    const run = await runLint([`--kubeconfig=${kubeconfig}`]);
    expect(run.status).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(/^secrets-store-csi-lint: listing SecretProviderClasses in https:\/\/127\.0\.0\.1:\d+ failed \(HTTP 403\): /);
  });

  it("list on secretproviderclasses, cluster-wide, is all it needs", async () => {
    const kc = kubeConfigFromInjected();
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createClusterRole({ body: { metadata: { name: "spc-lint" }, rules: [{ apiGroups: [GROUP], resources: ["secretproviderclasses"], verbs: ["list"] }] } });
    await rbac.createClusterRoleBinding({
      body: { metadata: { name: "spc-lint" }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "spc-lint" }, subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "lint-reader" }] },
    });
    const kubeconfig = await kubeconfigFor("lint-reader");
    // the authorizer sees a new binding within moments
    const run = await waitFor(
      async () => {
        const r = await runLint([`--kubeconfig=${kubeconfig}`]);
        return r.stderr.includes("HTTP 403") ? undefined : r;
      },
      { description: "the new ClusterRoleBinding to let lint-reader list SecretProviderClasses" },
    );
    expect(run.stderr).toBe("");
    expect(run.stdout).toContain("lint-cluster-a/good (cluster): fine");
    expect(run.stdout).toContain("lint-cluster-b/mode-zero (cluster): refused here");
    expect(run.stdout).toContain("lint-cluster-b/dot-alias (cluster): mounts differently from upstream");
  });
});
