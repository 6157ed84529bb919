// The provider's HTTP client for Key Vault and Entra ID, against real TLS
// servers on loopback: a burst to one host shares a bounded number of
// kept-alive connections and every request is answered; connections are
// reused; a kept-alive connection the server dropped is retried once, a
// fresh one is not; an abort ends the request at once; what the SDK's own
// client does (a proxy's agent) still goes through the SDK's client.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, Agent, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from "node:tls";
import { gzipSync } from "node:zlib";
import { createHttpHeaders, createPipelineRequest, type PipelineRequest } from "@azure/core-rest-pipeline";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MAX_IDLE_SOCKETS, MAX_SOCKETS_PER_HOST } from "../../../src/provider/keyvault/connection-bounds.ts";
import { VaultHttpClient } from "../../../src/provider/keyvault/vault-http-client.ts";

let key = "";
let cert = "";
const clients: VaultHttpClient[] = [];
const servers: Array<Server | TlsServer> = [];

function client(): VaultHttpClient {
  const c = new VaultHttpClient({ tls: { ca: cert } });
  clients.push(c);
  return c;
}

async function listen<T extends Server | TlsServer>(server: T): Promise<{ server: T; port: number }> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** `count` TLS hosts, each answering 204 to every request; `open` holds the connections each has open. */
async function hostsAnswering204(count: number): Promise<{ open: Set<TLSSocket>; ports: number[] }> {
  const open = new Set<TLSSocket>();
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const { port } = await listen(
      createTlsServer({ key, cert }, (socket: TLSSocket) => {
        open.add(socket);
        socket.on("close", () => open.delete(socket));
        socket.on("data", () => socket.write("HTTP/1.1 204 No Content\r\n\r\n"));
      }),
    );
    ports.push(port);
  }
  return { open, ports };
}

function get(port: number, path: string, extra: Partial<Parameters<typeof createPipelineRequest>[0]> = {}): PipelineRequest {
  return createPipelineRequest({ url: `https://127.0.0.1:${port}${path}`, method: "GET", ...extra });
}

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), "vault-http-"));
  try {
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
      { stdio: "ignore" },
    );
    key = readFileSync(join(dir, "key.pem"), "utf8");
    cert = readFileSync(join(dir, "cert.pem"), "utf8");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

afterAll(async () => {
  for (const server of servers) {
    if ("closeAllConnections" in server) server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe("the provider's HTTP client", () => {
  it(`sends 200 requests at once to one host over at most ${MAX_SOCKETS_PER_HOST} connections, and every one is answered`, async () => {
    let connections = 0;
    let inFlight = 0;
    let mostInFlight = 0;
    const { port, server } = await listen(
      createServer({ key, cert }, (req, res) => {
        inFlight++;
        mostInFlight = Math.max(mostInFlight, inFlight);
        // Answered on the next turn of the loop, so that requests overlap.
        setImmediate(() => {
          inFlight--;
          res.end(req.url);
        });
      }),
    );
    server.on("secureConnection", () => connections++);
    const http = client();
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => http.sendRequest(get(port, `/secrets/s-${i}`))));
    expect(answers.map((a) => a.bodyAsText)).toEqual(Array.from({ length: 200 }, (_, i) => `/secrets/s-${i}`));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(connections).toBeGreaterThan(1);
    expect(connections).toBeLessThanOrEqual(MAX_SOCKETS_PER_HOST);
    expect(mostInFlight).toBeLessThanOrEqual(MAX_SOCKETS_PER_HOST);
    // one after the other, they reuse a kept-alive connection
    for (let i = 0; i < 5; i++) await http.sendRequest(get(port, "/again"));
    expect(connections).toBeLessThanOrEqual(MAX_SOCKETS_PER_HOST);
  });

  it("sends the request's fields, body and length, and gives the SDK the status, fields and body", async () => {
    let seen: { method?: string; url?: string; headers?: Record<string, unknown>; body?: string } = {};
    const { port } = await listen(
      createServer({ key, cert }, (req, res) => {
        let body = "";
        req.setEncoding("utf8");
        req.on("data", (c: string) => (body += c));
        req.on("end", () => {
          seen = { method: req.method, url: req.url, headers: req.headers, body };
          res.writeHead(401, { "WWW-Authenticate": 'Bearer resource="https://vault.azure.net"', "Content-Type": "application/json" });
          // no Content-Length: Node sends it chunked
          res.write('{"error":');
          res.end('{"code":"Unauthorized"}}');
        });
      }),
    );
    const form = "grant_type=client_credentials&scope=https%3A%2F%2Fvault.azure.net%2F.default";
    const request = createPipelineRequest({
      url: `https://127.0.0.1:${port}/tenant/oauth2/v2.0/token?x=1`,
      method: "POST",
      headers: createHttpHeaders({ "Content-Type": "application/x-www-form-urlencoded", "x-ms-client-request-id": "r-1" }),
      body: form,
    });
    const answer = await client().sendRequest(request);
    expect(seen).toMatchObject({ method: "POST", url: "/tenant/oauth2/v2.0/token?x=1", body: form });
    expect(seen.headers).toMatchObject({ host: `127.0.0.1:${port}`, "content-type": "application/x-www-form-urlencoded", "x-ms-client-request-id": "r-1", "content-length": String(form.length) });
    expect(answer.status).toBe(401);
    expect(answer.headers.get("www-authenticate")).toBe('Bearer resource="https://vault.azure.net"');
    expect(answer.bodyAsText).toBe('{"error":{"code":"Unauthorized"}}');
  });

  it("reads bodies longer than one read on several connections at once, each intact (the read buffer is shared)", async () => {
    // Each body its own pattern of printable bytes, 300 KiB: many reads per response, interleaved between connections.
    const bodyOf = (i: number): Buffer => Buffer.from(Array.from({ length: 300 * 1024 }, (_, j) => 33 + ((i * 31 + j * 7) % 94)));
    const { port } = await listen(
      createServer({ key, cert }, (req, res) => {
        const i = Number(req.url!.split("-")[1]);
        const body = bodyOf(i);
        // odd ones chunked, in pieces written on later turns of the loop
        if (i % 2 === 0) return void res.end(body);
        res.write(body.subarray(0, 100_000));
        setImmediate(() => res.end(body.subarray(100_000)));
      }),
    );
    const http = client();
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => http.sendRequest(get(port, `/big-${i}`))));
    expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 12 }, () => 200));
    answers.forEach((answer, i) => expect(answer.bodyAsText === bodyOf(i).toString("latin1")).toBe(true));
  });

  it("decodes a gzip body it asked for", async () => {
    const { port } = await listen(
      createServer({ key, cert }, (req, res) => {
        expect(req.headers["accept-encoding"]).toBe("gzip,deflate");
        res.writeHead(200, { "Content-Encoding": "gzip" });
        res.end(gzipSync('{"value":"zipped"}'));
      }),
    );
    const answer = await client().sendRequest(get(port, "/secrets/z", { headers: createHttpHeaders({ "Accept-Encoding": "gzip,deflate" }) }));
    expect(answer.bodyAsText).toBe('{"value":"zipped"}');
  });

  it("refuses a field that would split the request, naming it, and sends nothing", async () => {
    let requests = 0;
    const { port } = await listen(createServer({ key, cert }, (_req, res) => (requests++, res.end())));
    const request = get(port, "/", { headers: createHttpHeaders({ "x-a\r\nx-injected": "1" }) });
    await expect(client().sendRequest(request)).rejects.toMatchObject({ name: "RestError", code: "ERR_INVALID_CHAR", message: expect.stringContaining('"x-a') });
    expect(requests).toBe(0);
  });

  it("retries once on a new connection when a kept-alive one was dropped before answering; a fresh one that drops is an error", async () => {
    // Answers the first request on each connection, then drops the connection at the next.
    let accepted = 0;
    const requestsSeen: string[] = [];
    const { port } = await listen(
      createTlsServer({ key, cert }, (socket: TLSSocket) => {
        accepted++;
        let served = 0;
        socket.on("data", (data: Buffer) => {
          requestsSeen.push(data.toString("latin1").split(" ")[1]!);
          if (served++ === 0) socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
          else socket.destroy();
        });
      }),
    );
    const http = client();
    expect((await http.sendRequest(get(port, "/one"))).bodyAsText).toBe("ok");
    // the kept-alive connection drops this one: it goes again on a new connection
    expect((await http.sendRequest(get(port, "/two"))).bodyAsText).toBe("ok");
    expect(requestsSeen).toEqual(["/one", "/two", "/two"]);
    expect(accepted).toBe(2);

    // a server that drops every fresh connection: no retry, the SDK's error
    const { port: dropping } = await listen(createTlsServer({ key, cert }, (socket: TLSSocket) => socket.once("data", () => socket.destroy())));
    await expect(http.sendRequest(get(dropping, "/three"))).rejects.toMatchObject({ name: "RestError", code: "ECONNRESET" });
  });

  it("reads a body without a length to the end of the connection, and fails one cut off before its length", async () => {
    const { port } = await listen(
      createTlsServer({ key, cert }, (socket: TLSSocket) => {
        socket.once("data", (data: Buffer) => {
          if (data.toString("latin1").startsWith("GET /to-the-end ")) socket.end("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nread until the server ends");
          else socket.end("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ncut off");
        });
      }),
    );
    const http = client();
    expect((await http.sendRequest(get(port, "/to-the-end"))).bodyAsText).toBe("read until the server ends");
    await expect(http.sendRequest(get(port, "/cut-off"))).rejects.toMatchObject({ name: "RestError", code: "ECONNRESET" });
  });

  it("fails an invalid response as a RestError naming the problem, and does not reuse that connection", async () => {
    let accepted = 0;
    const { port } = await listen(
      createTlsServer({ key, cert }, (socket: TLSSocket) => {
        accepted++;
        socket.on("data", () => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"));
      }),
    );
    const http = client();
    await expect(http.sendRequest(get(port, "/smuggled"))).rejects.toMatchObject({ name: "RestError", code: "HPE_INVALID_RESPONSE", message: "both Content-Length and Transfer-Encoding" });
    await expect(http.sendRequest(get(port, "/again"))).rejects.toMatchObject({ name: "RestError" });
    expect(accepted).toBe(2);
  });

  it("ends a request at once when its signal aborts, and closes its connection", async () => {
    let closed = 0;
    const { port } = await listen(createTlsServer({ key, cert }, (socket: TLSSocket) => socket.on("close", () => closed++).resume()));
    const controller = new AbortController();
    const pending = client().sendRequest(get(port, "/never-answered", { abortSignal: controller.signal }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
    for (let i = 0; i < 100 && closed === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(closed).toBe(1);
    await expect(client().sendRequest(get(port, "/", { abortSignal: AbortSignal.abort() }))).rejects.toMatchObject({ name: "AbortError" });
  });

  it(`keeps at most ${MAX_IDLE_SOCKETS} idle connections over every host, closing the oldest first`, async () => {
    const { open, ports } = await hostsAnswering204(MAX_IDLE_SOCKETS + 4);
    const http = client();
    for (const port of ports) expect((await http.sendRequest(get(port, "/"))).status).toBe(204);
    for (let i = 0; i < 100 && open.size > MAX_IDLE_SOCKETS; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(open.size).toBe(MAX_IDLE_SOCKETS);
    // the newest host's connection is still kept: no new one for it
    const opened = http.connectionsOpened;
    await http.sendRequest(get(ports.at(-1)!, "/"));
    expect(http.connectionsOpened).toBe(opened);
  });

  it(`keeps at most ${MAX_IDLE_SOCKETS} idle connections when many hosts answer at once`, async () => {
    // A tenant naming many vaults: their answers arrive together, and every
    // connection released before the evicted ones have closed must still be
    // counted against the bound (it once held 1,000 of 2,000 made-up vaults).
    const { open, ports } = await hostsAnswering204(MAX_IDLE_SOCKETS + 40);
    const http = client();
    const statuses = await Promise.all(ports.map(async (port) => (await http.sendRequest(get(port, "/"))).status));
    expect(statuses.every((status) => status === 204)).toBe(true);
    for (let i = 0; i < 100 && open.size > MAX_IDLE_SOCKETS; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(open.size).toBe(MAX_IDLE_SOCKETS);
  });

  it("leaves a request with an agent of its own (a proxy's) to the SDK's client", async () => {
    const { port } = await listen(createServer({ key, cert }, (_req, res) => res.end("through the agent")));
    const http = client();
    const agent = new Agent({ ca: cert });
    const request = get(port, "/");
    request.agent = agent;
    const answer = await http.sendRequest(request);
    agent.destroy();
    expect(answer.bodyAsText).toBe("through the agent");
    expect(http.connectionsOpened).toBe(0);
  });
});
