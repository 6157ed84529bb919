// The provider's one HTTPS agent: a burst of requests to one host shares a
// bounded number of kept-alive TLS connections instead of opening one per
// request, and every request is answered.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, get, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { boundedAgent, MAX_SOCKETS_PER_HOST } from "../../../src/provider/keyvault/vault-agent.ts";

describe("the provider's HTTPS agent", () => {
  let server: Server;
  let port: number;
  let cert: string;
  let connections = 0;
  let inFlight = 0;
  let mostInFlight = 0;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "vault-agent-"));
    try {
      execFileSync(
        "openssl",
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        { stdio: "ignore" },
      );
      cert = readFileSync(join(dir, "cert.pem"), "utf8");
      server = createServer({ key: readFileSync(join(dir, "key.pem")), cert }, (req, res) => {
        inFlight++;
        mostInFlight = Math.max(mostInFlight, inFlight);
        // Answered on the next turn of the loop, so that requests overlap.
        setImmediate(() => {
          inFlight--;
          res.end(req.url);
        });
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    server.on("secureConnection", () => connections++);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it(`sends 200 requests at once to one host over at most ${MAX_SOCKETS_PER_HOST} connections, and every one is answered`, async () => {
    const agent = boundedAgent({ ca: cert });
    const fetchOne = (i: number) =>
      new Promise<string>((resolve, reject) => {
        get({ host: "127.0.0.1", port, path: `/secrets/s-${i}`, agent }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (body += chunk));
          res.on("end", () => resolve(body));
        }).on("error", reject);
      });
    const bodies = await Promise.all(Array.from({ length: 200 }, (_, i) => fetchOne(i)));
    expect(bodies).toEqual(Array.from({ length: 200 }, (_, i) => `/secrets/s-${i}`));
    expect(connections).toBeGreaterThan(1);
    expect(connections).toBeLessThanOrEqual(MAX_SOCKETS_PER_HOST);
    expect(mostInFlight).toBeLessThanOrEqual(MAX_SOCKETS_PER_HOST);
    agent.destroy();
  });
});
