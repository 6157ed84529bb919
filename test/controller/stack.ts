// The SecretSync controller on real parts, for *.cluster.test.ts files: the
// shared kube-apiserver (with kube-controller-manager for garbage
// collection), the chart's RBAC and admission policies applied for real, the
// Key Vault emulator over HTTPS trusting the cluster's service-account issuer
// (workload identity), our Azure provider program on a unix socket, and the
// controller program itself as a child process running as the chart's
// service account.
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import { CoreV1Api, CustomObjectsApi, KubernetesObjectApi, type KubeConfig, type KubernetesObject } from "@kubernetes/client-node";
import YAML from "yaml";
import type { Emulator } from "../../src/emulator/index.ts";
import type { SecretSync } from "../../src/controller/api/secret-sync.ts";
import { apiErrorCode, applyYaml, createNamespace, kubeConfigFromInjected, kubeconfigFor, rawRequest, startControllerManager, waitFor } from "../harness/kube.ts";
import { DNS_HOOK, lastLines, startProvider, startTestEmulator, type RunningProvider } from "../provider/env.ts";
import { render, type K8sObject } from "../install/chart.ts";

const REPO = resolve(import.meta.dirname, "../..");
export const CONTROLLER_MAIN = resolve(REPO, "src/controller/main.ts");
export const SS_GROUP = "secret-sync.x-k8s.io";
export const SS_VERSION = "v1alpha1";
export const SPC_GROUP = "secrets-store.csi.x-k8s.io";
export const AUDIENCE = "api://AzureADTokenExchange";
export const WI_CLIENT_ID = "53333333-3333-4333-8333-333333333333";
export const CONTROLLER_SA = "secrets-store-sync-controller-manager";

export interface ControllerProcess {
  child: ChildProcess;
  podName: string;
  output(): string;
  metrics(): Promise<string>;
  ready(): Promise<number>;
  /** SIGTERM, and wait for the exit (SIGKILL after 30 s). */
  stop(): Promise<number | null>;
  kill(): Promise<void>;
}

export interface SyncStack {
  kc: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  objects: KubernetesObjectApi;
  emulator: Emulator;
  /** The loopback address the emulator listens on (port 443), for a process's DNS hook. */
  emulatorAddress: string;
  /** The cluster's service-account issuer, which the emulator's Entra ID trusts. */
  issuer: string;
  provider: RunningProvider;
  /** Where the chart is "installed": the controller's service account and Lease live here. */
  systemNamespace: string;
  /** The controller's identity, a client certificate for system:serviceaccount:<ns>:<name>. */
  controllerUser: string;
  controllerKubeconfig: string;
  chartObjects: K8sObject[];
  /**
   * Starts the controller program. `azure`: with the emulator's DNS hook and
   * CA, so Entra ID and Event Grid names reach the emulator; `env`: more
   * environment (e.g. a workload identity's AZURE_* variables).
   */
  startController(options?: { args?: string[]; podName?: string; azure?: boolean; env?: Record<string, string> }): Promise<ControllerProcess>;
  stop(): Promise<void>;
}

export interface StackOptions {
  systemNamespace: string;
  /** (namespace, service account) pairs that get a federated credential of the workload identity app. */
  workloads: [string, string][];
  vaults: { name: string; secrets?: { name: string; value: string }[]; certificates?: Record<string, unknown>[] }[];
  /** More chart values under syncController (events, restartOnRotation), for the RBAC applied. */
  chartValues?: Record<string, unknown>;
  /** Event Grid's clock in the emulator (retries, locks, release delays). */
  eventTimeScale?: number;
  /** More applications for the emulator's Entra ID (e.g. the controller's own identity). */
  applications?: Record<string, unknown>[];
  /** Event Grid namespaces of the emulator. */
  eventGridNamespaces?: Record<string, unknown>[];
}

/** The chart's objects for the controller (RBAC and admission policies), rendered for `namespace`. */
export function controllerChartObjects(namespace: string, values: Record<string, unknown> = {}): K8sObject[] {
  return render({ syncController: { enabled: true, tokenRequestAudience: [{ audience: AUDIENCE }], ...values } }, { namespace, noHooks: true }).filter(
    (o) => o.metadata.labels?.["app.kubernetes.io/component"] === "sync-controller" && !["Deployment", "Service", "Ingress"].includes(o.kind),
  );
}

export async function startSyncStack(options: StackOptions): Promise<SyncStack> {
  const kc = kubeConfigFromInjected();
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const objects = KubernetesObjectApi.makeApiClient(kc);
  await startControllerManager();
  await createNamespace(kc, options.systemNamespace);
  const chartObjects = controllerChartObjects(options.systemNamespace, options.chartValues);
  await applyYaml(kc, chartObjects.map((o) => YAML.stringify(o)).join("---\n"));
  const controllerUser = `system:serviceaccount:${options.systemNamespace}:${CONTROLLER_SA}`;
  const controllerKubeconfig = await kubeconfigFor(controllerUser, ["system:serviceaccounts", `system:serviceaccounts:${options.systemNamespace}`]);

  const jwks = JSON.parse((await rawRequest(kc, "GET", "/openid/v1/jwks", undefined, { accept: "application/jwk-set+json" })).body) as { keys: unknown[] };
  const discovery = (await rawRequest(kc, "GET", "/.well-known/openid-configuration")).json as { issuer: string };
  const { emulator, address } = await startTestEmulator({}, { eventTimeScale: options.eventTimeScale });
  await emulator.seed({
    vaults: options.vaults,
    serviceAccountIssuers: [{ issuer: discovery.issuer, jwks: jwks as never }],
    applications: [
      {
        name: "workload",
        clientId: WI_CLIENT_ID,
        federatedCredentials: options.workloads.map(([ns, sa]) => ({ issuer: discovery.issuer, subject: `system:serviceaccount:${ns}:${sa}` })),
        roleAssignments: options.vaults.map((v) => ({ vault: v.name, permissions: ["secrets", "keys", "certificates"] })),
      },
      ...(options.applications ?? []),
    ],
    ...(options.eventGridNamespaces ? { eventGridNamespaces: options.eventGridNamespaces } : {}),
  } as never);
  const provider = await startProvider(emulator, address);
  const providerDir = resolve(provider.socket, "..");
  const running: ControllerProcess[] = [];

  const stack: SyncStack = {
    kc,
    core,
    custom,
    objects,
    emulator,
    emulatorAddress: address,
    issuer: discovery.issuer,
    provider,
    systemNamespace: options.systemNamespace,
    controllerUser,
    controllerKubeconfig,
    chartObjects,
    async startController({ args = [], podName = `ssc-${randomUUID().slice(0, 8)}`, azure = false, env = {} } = {}) {
      const child = spawn(
        process.execPath,
        [
          ...(azure ? ["--import", DNS_HOOK] : []),
          CONTROLLER_MAIN,
          `--kubeconfig=${controllerKubeconfig}`,
          `--provider-volume=${providerDir}`,
          `--token-request-audience=${AUDIENCE}`,
          "--metrics-bind-address=127.0.0.1:0",
          "--health-probe-bind-address=127.0.0.1:0",
          ...args,
        ],
        {
          env: {
            ...process.env,
            LOG_LEVEL: "debug",
            SYNC_CONTROLLER_POD_NAME: podName,
            SYNC_CONTROLLER_POD_UID: randomUUID(),
            SYNC_CONTROLLER_POD_NAMESPACE: options.systemNamespace,
            ...(azure ? { NODE_EXTRA_CA_CERTS: emulator.caCertPath, SSCSI_EMULATOR_ADDRESS: address } : {}),
            ...env,
          },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let out = "";
      child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
      const ports = await waitFor(
        () => {
          if (child.exitCode !== null) throw new Error(`the controller exited with ${child.exitCode}:\n${lastLines(out)}`);
          return startedPorts(out);
        },
        { description: "the controller to start", timeoutMs: 30_000, intervalMs: 50 },
      ).catch((err: unknown) => {
        child.kill("SIGKILL");
        throw err;
      });
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      const proc: ControllerProcess = {
        child,
        podName,
        output: () => out,
        metrics: async () => (await fetch(`http://127.0.0.1:${ports.metricsPort}/metrics`)).text(),
        ready: async () => (await fetch(`http://127.0.0.1:${ports.healthPort}/readyz`)).status,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill("SIGTERM");
            const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
            await exited;
            clearTimeout(timer);
          }
          return child.exitCode;
        },
        async kill() {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill("SIGKILL");
            await exited;
          }
        },
      };
      running.push(proc);
      return proc;
    },
    async stop() {
      for (const p of running) await p.kill();
      await provider.stop();
      await emulator.close();
      await removeChartObjects(kc, chartObjects);
    },
  };
  return stack;
}

/**
 * Removes what controllerChartObjects() applied: the admission policies and
 * the roles are cluster-wide, with fixed names, so none is left behind for
 * other tests.
 */
export async function removeChartObjects(kc: KubeConfig, chartObjects: K8sObject[]): Promise<void> {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  for (const o of [...chartObjects].reverse()) {
    await objects.delete(o as KubernetesObject).catch((err: unknown) => {
      if (apiErrorCode(err) !== 404) throw err;
    });
  }
}

function startedPorts(output: string): { metricsPort: number; healthPort: number } | undefined {
  for (const line of output.split("\n")) {
    if (!line.includes('"controller started"')) continue;
    try {
      const entry = JSON.parse(line) as { metricsPort: number; healthPort: number };
      return entry;
    } catch {
      // the rest of the line has not arrived yet
    }
  }
  return undefined;
}

/** A metric's value (summed over label sets matching `labels`), 0 when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? ([-+0-9.eE]+|NaN)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const set = Object.fromEntries([...(m[3] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => set[k] === v)) total += Number(m[4]);
  }
  return total;
}

export function secretSyncBody(name: string, spec: Partial<SecretSync["spec"]> & Pick<SecretSync["spec"], "secretProviderClassName" | "serviceAccountName">): SecretSync {
  return {
    apiVersion: `${SS_GROUP}/${SS_VERSION}`,
    kind: "SecretSync",
    metadata: { name },
    spec: { secretObject: { type: "Opaque", data: [] }, ...spec } as SecretSync["spec"],
  };
}

export function secretProviderClassBody(name: string, vault: string, tenantId: string, objects: string[], extra: Record<string, string> = {}): object {
  return {
    apiVersion: `${SPC_GROUP}/v1`,
    kind: "SecretProviderClass",
    metadata: { name },
    spec: {
      provider: "azure",
      parameters: {
        keyvaultName: vault,
        tenantID: tenantId,
        clientID: WI_CLIENT_ID,
        objects: ["array:", ...objects.map((o) => `  - |\n${o.split("\n").map((l) => `    ${l}`).join("\n")}`)].join("\n"),
        ...extra,
      },
    },
  };
}
