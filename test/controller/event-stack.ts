// What the event-driven rotation tests add to the SecretSync stack
// (stack.ts): the driver program on real tmpfs against the same API server
// and provider, pods "on" its node whose volumes it publishes through its CSI
// socket as kubelet would (workload identity tokens from the API server), the
// controller's webhook certificate and query secrets, and small helpers to
// post deliveries straight to the webhook and to wait for event outcomes.
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { csiClient, type CsiClient } from "../support/csi-client.ts";
import { removeTestTree, startDriverProcess, type DriverProcess } from "../support/driver-process.ts";
import { waitFor } from "../harness/kube.ts";
import { AUDIENCE, metricValue, type ControllerProcess, type SyncStack } from "./stack.ts";

export const DRIVER_NAME = "secrets-store.csi.k8s.io";
export const WEBHOOK_AUDIENCE = "api://secrets-store-events-test";
export const QUERY_SECRETS = ["first-query-secret-0123456789abcdef", "second-query-secret-0123456789abcdef"];

export interface NodeDriver {
  base: string;
  driver: DriverProcess;
  csi: CsiClient;
  node: string;
  /** target path by pod name */
  targets: Map<string, string>;
  createPod(namespace: string, name: string, serviceAccount: string): Promise<string>;
  /** NodePublishVolume for the pod's volume of `spc`, with a token for its service account; returns the target path. */
  publish(namespace: string, pod: string, spc: string, serviceAccount: string): Promise<string>;
  stop(): Promise<void>;
}

/** The driver program on real tmpfs, rotation polling `pollInterval` (1h: only requests refresh). */
export async function startNodeDriver(stack: SyncStack, node: string, pollInterval = "1h"): Promise<NodeDriver> {
  const base = await mkdtemp(join(tmpdir(), "events-node-"));
  const providerDir = join(stack.provider.socket, "..");
  const driver = await startDriverProcess(join(base, "csi.sock"), [
    `--nodeid=${node}`,
    `--kubelet-dir=${base}`,
    `--kubeconfig=${inject("kubeconfig")}`,
    `--provider-volume=${providerDir}`,
    "--additional-provider-volume-paths=",
    "--metrics-addr=",
    "--health-addr=",
    "--enable-secret-rotation=true",
    `--rotation-poll-interval=${pollInterval}`,
  ]);
  const csi = csiClient(driver.socketPath);
  const uids = new Map<string, string>();
  const targets = new Map<string, string>();
  let n = 0;
  return {
    base,
    driver,
    csi,
    node,
    targets,
    async createPod(namespace, name, serviceAccount) {
      const pod = await stack.core.createNamespacedPod({
        namespace,
        body: { metadata: { name }, spec: { nodeName: node, serviceAccountName: serviceAccount, containers: [{ name: "c", image: "registry.k8s.io/pause:3.10" }] } },
      });
      uids.set(`${namespace}/${name}`, pod.metadata!.uid!);
      return pod.metadata!.uid!;
    },
    async publish(namespace, pod, spc, serviceAccount) {
      const uid = uids.get(`${namespace}/${pod}`)!;
      const tr = await stack.core.createNamespacedServiceAccountToken({
        name: serviceAccount,
        namespace,
        body: { spec: { audiences: [AUDIENCE], expirationSeconds: 3600, boundObjectRef: { kind: "Pod", apiVersion: "v1", name: pod, uid } } },
      });
      const dir = join(base, "pods", uid, "volumes", "kubernetes.io~csi", `secrets-${++n}`);
      await mkdir(dir, { recursive: true });
      const target = join(dir, "mount");
      await csi.call(
        "Node",
        "NodePublishVolume",
        {
          volume_id: `csi-${n}`,
          target_path: target,
          volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
          readonly: true,
          volume_context: {
            secretProviderClass: spc,
            "csi.storage.k8s.io/pod.name": pod,
            "csi.storage.k8s.io/pod.namespace": namespace,
            "csi.storage.k8s.io/pod.uid": uid,
            "csi.storage.k8s.io/serviceAccount.name": serviceAccount,
            "csi.storage.k8s.io/ephemeral": "true",
            "csi.storage.k8s.io/serviceAccount.tokens": JSON.stringify({ [AUDIENCE]: { token: tr.status!.token, expirationTimestamp: tr.status!.expirationTimestamp } }),
          },
        },
        120_000,
      );
      targets.set(pod, target);
      return target;
    },
    async stop() {
      for (const [, target] of targets) await csi.call("Node", "NodeUnpublishVolume", { volume_id: "x", target_path: target }).catch(() => undefined);
      csi.close();
      await driver.stop();
      await removeTestTree(base);
    },
  };
}

/** The webhook's certificate (from the emulator's CA, which its deliveries trust) and query secrets file, in `dir`. */
export async function webhookFiles(stack: SyncStack, dir: string): Promise<{ certFile: string; keyFile: string; secretsFile: string }> {
  const tls = await stack.emulator.issueServerCertificate(["127.0.0.1"]);
  const certFile = join(dir, "tls.crt");
  const keyFile = join(dir, "tls.key");
  const secretsFile = join(dir, "query-secrets");
  await writeFile(certFile, tls.certificatePem);
  await writeFile(keyFile, tls.keyPem, { mode: 0o600 });
  await writeFile(secretsFile, QUERY_SECRETS.join("\n") + "\n", { mode: 0o600 });
  return { certFile, keyFile, secretsFile };
}

/** The controller's flags for a webhook on 127.0.0.1 (a port the kernel picks), with both authentications. */
export function webhookArgs(stack: SyncStack, files: { certFile: string; keyFile: string; secretsFile: string }): string[] {
  return [
    "--event-webhook-bind-address=127.0.0.1:0",
    `--event-webhook-tls-cert-file=${files.certFile}`,
    `--event-webhook-tls-key-file=${files.keyFile}`,
    `--event-webhook-query-secrets-file=${files.secretsFile}`,
    `--event-webhook-tenant-id=${stack.emulator.tenantId}`,
    `--event-webhook-audience=${WEBHOOK_AUDIENCE}`,
  ];
}

/** The port the controller's webhook listens on, once it leads. */
export async function webhookPort(controller: ControllerProcess): Promise<number> {
  return waitFor(
    () => {
      for (const line of controller.output().split("\n")) {
        if (!line.includes('"event webhook listening"')) continue;
        try {
          return (JSON.parse(line) as { port: number }).port;
        } catch {
          // not a whole line yet
        }
      }
      return undefined;
    },
    { description: "the controller's event webhook to listen", timeoutMs: 60_000, intervalMs: 100 },
  );
}

export interface PostResult {
  status: number;
  body: string;
}

/** An HTTPS request to the webhook, trusting the emulator's CA. */
export function postToWebhook(
  stack: SyncStack,
  port: number,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: string },
): Promise<PostResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, method: options.method ?? "POST", path: options.path ?? "/", ca: stack.emulator.caCertPem, headers: options.headers ?? {} },
      (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

/** How many events of this kind ended with this outcome, from the controller's metrics. */
export async function eventOutcomes(controller: ControllerProcess, outcome: string, kind?: string): Promise<number> {
  return metricValue(await controller.metrics(), "keyvault_events_total", { outcome, ...(kind ? { kind } : {}) });
}

/** Waits until the controller's count of `outcome` events reaches `atLeast`. */
export async function waitForOutcome(controller: ControllerProcess, outcome: string, atLeast: number, kind?: string): Promise<void> {
  await waitFor(async () => (await eventOutcomes(controller, outcome, kind)) >= atLeast, {
    description: `${atLeast} key vault event(s) with outcome ${outcome}${kind ? ` (${kind})` : ""}`,
    timeoutMs: 60_000,
  });
}

/** An Event Grid schema delivery body for a new version (for posts straight to the webhook). */
export function newVersionEvent(id: string, vault: string, name: string, version: string, time = new Date()): Record<string, unknown> {
  return {
    id,
    topic: `/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/${vault}`,
    subject: name,
    eventType: "Microsoft.KeyVault.SecretNewVersionCreated",
    eventTime: time.toISOString(),
    dataVersion: "1",
    metadataVersion: "1",
    data: { Id: `https://${vault}.vault.azure.net/secrets/${name}/${version}`, VaultName: vault, ObjectType: "Secret", ObjectName: name, Version: version, NBF: null, EXP: null },
  };
}
