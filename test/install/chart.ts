// Helpers for the chart tests: render the chart with helm (the pinned one from
// scripts/install-helm.sh) and look objects up in the output.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CHART_DIR, findHelm, helmTemplate, parseDocuments, type TemplateOptions } from "../../scripts/generate-deploy.ts";

export { CHART_DIR, findHelm };

/** A rendered Kubernetes object (plain data). */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: { name: string; containerPort: number }[];
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string; mountPropagation?: string }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
}

export interface PodSpec {
  containers: Container[];
  initContainers?: (Container & { restartPolicy?: string; command?: string[] })[];
  volumes?: { name: string; hostPath?: { path: string; type?: string }; emptyDir?: unknown }[];
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  hostNetwork?: boolean;
  [key: string]: unknown;
}

let helm: string | undefined;
function helmPath(): string {
  helm ??= findHelm();
  return helm;
}

/** Renders the chart and returns every object; helm errors (schema, fail) throw with helm's message. */
export function render(values: Record<string, unknown> = {}, options: Omit<TemplateOptions, "helm" | "values"> = {}): K8sObject[] {
  const text = helmTemplate({ ...options, helm: helmPath(), values });
  return parseDocuments(text).map((d) => d.toJS() as K8sObject);
}

/** The message helm prints when it refuses the values, or undefined when it renders. */
export function renderError(values: Record<string, unknown>, options: Omit<TemplateOptions, "helm" | "values"> = {}): string | undefined {
  try {
    render(values, options);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Runs `helm lint --strict` with the given values; returns helm's output, throws on failure. */
export function lint(values: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "sscsi-lint-"));
  try {
    const file = join(dir, "values.json");
    writeFileSync(file, JSON.stringify(values));
    return execFileSync(helmPath(), ["lint", "--strict", CHART_DIR, "--values", file], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`helm lint failed:\n${e.stdout ?? ""}${e.stderr ?? e.message}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function find(objects: K8sObject[], kind: string, name?: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
}

export function one(objects: K8sObject[], kind: string, predicate: (o: K8sObject) => boolean = () => true): K8sObject {
  const found = objects.filter((o) => o.kind === kind && predicate(o));
  if (found.length !== 1) {
    throw new Error(`expected one ${kind}, found ${found.length}: ${found.map((o) => o.metadata.name).join(", ") || "none"}`);
  }
  return found[0]!;
}

const component = (c: string) => (o: K8sObject) => o.metadata.labels?.["app.kubernetes.io/component"] === c;

export function driverDaemonSet(objects: K8sObject[]): K8sObject {
  return one(objects, "DaemonSet", component("driver"));
}

export function providerDaemonSet(objects: K8sObject[]): K8sObject {
  return one(objects, "DaemonSet", component("provider-azure"));
}

export function syncControllerDeployment(objects: K8sObject[]): K8sObject {
  return one(objects, "Deployment", component("sync-controller"));
}

export function podSpec(workload: K8sObject): PodSpec {
  return (workload as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
}

export function container(workload: K8sObject, name: string): Container & { command?: string[]; restartPolicy?: string } {
  const spec = podSpec(workload);
  const c = [...spec.containers, ...(spec.initContainers ?? [])].find((x) => x.name === name);
  if (!c) throw new Error(`${workload.kind}/${workload.metadata.name} has no container ${name}`);
  return c;
}

/** The value of --name=value in args, or undefined when the flag is absent. */
export function flag(args: string[] | undefined, name: string): string | undefined {
  const hit = (args ?? []).find((a) => a === `--${name}` || a.startsWith(`--${name}=`) || a === `-${name}` || a.startsWith(`-${name}=`));
  if (hit === undefined) return undefined;
  const eq = hit.indexOf("=");
  return eq < 0 ? "" : hit.slice(eq + 1);
}

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** Verbs a set of ClusterRoles grants on group/resource. */
export function verbsOn(roles: K8sObject[], group: string, resource: string): Set<string> {
  const verbs = new Set<string>();
  for (const role of roles) {
    for (const rule of (role as unknown as { rules: Rule[] }).rules) {
      if (rule.apiGroups.includes(group) && rule.resources.includes(resource)) for (const v of rule.verbs) verbs.add(v);
    }
  }
  return verbs;
}

/** Roles bound (through RoleBindings) to a ServiceAccount. */
export function namespacedRolesBoundTo(objects: K8sObject[], serviceAccount: string): K8sObject[] {
  const names = new Set<string>();
  for (const b of find(objects, "RoleBinding")) {
    const binding = b as unknown as { subjects: { kind: string; name: string }[]; roleRef: { name: string } };
    if (binding.subjects.some((s) => s.kind === "ServiceAccount" && s.name === serviceAccount)) names.add(binding.roleRef.name);
  }
  return find(objects, "Role").filter((r) => names.has(r.metadata.name));
}

/** ClusterRoles bound (through ClusterRoleBindings) to a ServiceAccount. */
export function rolesBoundTo(objects: K8sObject[], serviceAccount: string): K8sObject[] {
  const names = new Set<string>();
  for (const b of find(objects, "ClusterRoleBinding")) {
    const binding = b as unknown as { subjects: { kind: string; name: string }[]; roleRef: { name: string } };
    if (binding.subjects.some((s) => s.kind === "ServiceAccount" && s.name === serviceAccount)) names.add(binding.roleRef.name);
  }
  return find(objects, "ClusterRole").filter((r) => names.has(r.metadata.name));
}
