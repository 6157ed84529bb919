// The provider's one HTTP client: a burst of requests to one host shares a
// bounded pool of kept-alive TLS connections instead of opening one per
// request, and requests that bring their own agent (a proxy) keep it.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent, createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDefaultHttpClient, createHttpHeaders, createPipelineRequest } from "@azure/core-rest-pipeline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_CONNECTIONS_PER_HOST, sharedHttpClient } from "../../../src/provider/keyvault/http-client.ts";

describe("the provider's HTTP client", () => {
  let server: Server;
  let url: string;
  let cert: string;
  let connections = 0;
  let inFlight = 0;
  let mostInFlight = 0;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "http-client-"));
    try {
      execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
      cert = readFileSync(join(dir, "cert.pem"), "utf8");
      server = createServer({ key: readFileSync(join(dir, "key.pem")), cert }, (req, res) => {
        inFlight++;
        mostInFlight = Math.max(mostInFlight, inFlight);
        // Answered on the next turn, so that requests overlap.
        setImmediate(() => {
          inFlight--;
          res.setHeader("content-type", "application/json");
          res.end(JSON.stringify({ value: req.url }));
        });
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    server.on("secureConnection", () => connections++);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it(`sends 200 requests at once over at most ${MAX_CONNECTIONS_PER_HOST} connections, and every one is answered`, async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: MAX_CONNECTIONS_PER_HOST, maxFreeSockets: MAX_CONNECTIONS_PER_HOST, ca: cert });
    const client = sharedHttpClient(createDefaultHttpClient(), agent);
    connections = 0;
    const responses = await Promise.all(Array.from({ length: 200 }, (_, i) => client.sendRequest(createPipelineRequest({ url: `${url}/secrets/s-${i}`, method: "GET" }))));
    expect(responses.map((r) => r.status)).toEqual(Array.from({ length: 200 }, () => 200));
    expect(responses.map((r) => JSON.parse(r.bodyAsText!).value)).toEqual(Array.from({ length: 200 }, (_, i) => `/secrets/s-${i}`));
    expect(connections).toBeGreaterThan(1);
    expect(connections).toBeLessThanOrEqual(MAX_CONNECTIONS_PER_HOST);
    expect(mostInFlight).toBeLessThanOrEqual(MAX_CONNECTIONS_PER_HOST);
    agent.destroy();
  });

  it("leaves a request's own agent (the SDK's proxy policy sets one) in place", async () => {
    const own = new Agent({ keepAlive: false, ca: cert });
    const shared = new Agent({ keepAlive: true, maxSockets: 1, ca: "not a certificate" });
    const client = sharedHttpClient(createDefaultHttpClient(), shared);
    const request = createPipelineRequest({ url: `${url}/own`, method: "GET", headers: createHttpHeaders() });
    request.agent = own;
    const response = await client.sendRequest(request);
    expect(response.status).toBe(200);
    expect(request.agent).toBe(own);
    own.destroy();
    shared.destroy();
  });
});
