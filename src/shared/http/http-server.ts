// The small HTTP servers every program runs: /metrics for Prometheus and
// /healthz for liveness probes.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { parseListenAddress } from "../grpc/endpoint.ts";

export type HealthCheck = () => Promise<void>;

export interface HttpRoutes {
  registry?: Registry;
  metricsPath?: string;
  health?: HealthCheck;
  healthPath?: string;
  /** More checks by path (e.g. "/readyz"), answered as /healthz is. */
  checks?: Record<string, HealthCheck>;
}

export interface RunningHttpServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export async function startHttpServer(listen: string, routes: HttpRoutes): Promise<RunningHttpServer> {
  const { host, port } = parseListenAddress(listen);
  const metricsPath = routes.metricsPath ?? "/metrics";
  const healthPath = routes.healthPath ?? "/healthz";
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    if (routes.registry && path === metricsPath) {
      routes.registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { "content-type": routes.registry!.contentType });
          res.end(body);
        })
        .catch((err: unknown) => {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(String(err));
        });
      return;
    }
    const check = routes.health && path === healthPath ? routes.health : path && routes.checks && Object.hasOwn(routes.checks, path) ? routes.checks[path] : undefined;
    if (check) {
      check()
        .then(() => {
          res.writeHead(200, { "content-type": "text/plain" });
          res.end("ok");
        })
        .catch((err: unknown) => {
          res.writeHead(503, { "content-type": "text/plain" });
          res.end(err instanceof Error ? err.message : String(err));
        });
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
