// vitest globalSetup of the "cluster" project: one real control plane for the
// whole run. Tests get its coordinates through inject(); the few operations that
// must run where the Cluster object lives (starting the controller manager,
// minting user kubeconfigs) go through a small loopback control endpoint that
// test/harness/kube.ts calls.
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startCluster, type Cluster } from "./cluster.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** Path of the admin kubeconfig (system:masters). */
    kubeconfig: string;
    /** https://127.0.0.1:<port> */
    kubeServer: string;
    /** JSON-lines audit log (Metadata level, every request). */
    auditLogPath: string;
    /** Directory with etcd, kube-apiserver, kube-controller-manager and csi-sanity. */
    kubeBinDir: string;
    /** Base URL of the harness control endpoint (used by kube.ts; includes a secret path segment). */
    kubeControlUrl: string;
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function startControlServer(cluster: Cluster, secret: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const handle = async (): Promise<void> => {
      if (req.method !== "POST") return reply(405, { error: "POST only" });
      if (req.url === `/${secret}/controller-manager`) {
        await cluster.startControllerManager();
        return reply(200, {});
      }
      if (req.url === `/${secret}/kubeconfig`) {
        const { user, groups } = JSON.parse(await readBody(req)) as { user?: unknown; groups?: unknown };
        if (typeof user !== "string" || (groups !== undefined && !Array.isArray(groups))) {
          return reply(400, { error: "body must be {user: string, groups?: string[]}" });
        }
        return reply(200, { path: await cluster.kubeconfigFor(user, (groups as string[] | undefined) ?? []) });
      }
      return reply(404, { error: "not found" });
    };
    handle().catch((err: unknown) => reply(500, { error: err instanceof Error ? err.message : String(err) }));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      resolve({ server, url: `http://127.0.0.1:${port}/${secret}` });
    });
  });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const keepLogs = process.env.SSCSI_KEEP_CLUSTER_LOGS === "1";
  // A caller-provided data directory survives stop(); that is how logs are kept.
  const dataDir = keepLogs ? await mkdtemp(join(tmpdir(), "sscsi-cluster-")) : undefined;
  const started = Date.now();
  const cluster = await startCluster(dataDir === undefined ? {} : { dataDir });
  let control: { server: Server; url: string };
  try {
    control = await startControlServer(cluster, randomBytes(16).toString("hex"));
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  console.log(`[cluster] kube-apiserver ${cluster.server} ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);

  project.provide("kubeconfig", cluster.kubeconfigPath);
  project.provide("kubeServer", cluster.server);
  project.provide("auditLogPath", cluster.auditLogPath);
  project.provide("kubeBinDir", cluster.binDir);
  project.provide("kubeControlUrl", control.url);

  return async () => {
    await new Promise<void>((resolve) => control.server.close(() => resolve()));
    await cluster.stop();
    if (dataDir !== undefined) console.log(`[cluster] logs, certificates and audit log kept in ${dataDir}`);
  };
}
