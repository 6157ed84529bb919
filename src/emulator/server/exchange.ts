// One HTTP request and its answer: parsed URL (query keys decoded, so
// "api%2Dversion" reads as "api-version"), the Host header the client used
// (absolute ids and nextLinks are built from it), body reading with a size
// limit, and JSON responses with Key Vault's headers.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { BadParameterError } from "../errors/key-vault-errors.ts";
import type { ServiceError } from "../errors/service-error.ts";

const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface HttpResult {
  status: number;
  body?: unknown;
  /** Raw text body (instead of JSON). */
  text?: string;
  headers?: Record<string, string>;
}

export class Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId = randomUUID();
  readonly method: string;
  /** Host header as sent (may include the port). */
  readonly host: string;
  /** Host name without port, lower case. */
  readonly hostname: string;
  /** Path without query; a trailing slash is kept. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly startedAt = process.hrtime.bigint();
  readonly scheme: "https" | "http";
  /** Operation name once routed (for counters, faults, metrics, logs). */
  operation = "unknown";
  vault: string | undefined;
  #body: Promise<Buffer> | undefined;

  /** `host`: the host the request is answered as, when not its Host header (a proxy forwarding it). */
  constructor(req: IncomingMessage, res: ServerResponse, scheme: "https" | "http", host?: string) {
    this.req = req;
    this.res = res;
    this.scheme = scheme;
    this.method = (req.method ?? "GET").toUpperCase();
    this.host = host ?? req.headers.host ?? "localhost";
    this.hostname = hostnameOf(this.host);
    const url = new URL(req.url ?? "/", "http://placeholder");
    this.path = url.pathname;
    this.query = url.searchParams;
  }

  /** https://<host as the client sent it> */
  get baseUrl(): string {
    return `${this.scheme}://${this.host}`;
  }

  header(name: string): string | undefined {
    const value = this.req.headers[name.toLowerCase()];
    return Array.isArray(value) ? value[0] : value;
  }

  body(): Promise<Buffer> {
    this.#body ??= new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      this.req.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          reject(new BadParameterError(`The request body exceeds ${MAX_BODY_BYTES} bytes.`));
          this.req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      this.req.on("end", () => resolve(Buffer.concat(chunks)));
      this.req.on("error", reject);
    });
    return this.#body;
  }

  /** The body as a JSON object (empty body = {}); malformed JSON is a BadParameter. */
  async json(): Promise<Record<string, unknown>> {
    const raw = (await this.body()).toString("utf8");
    if (raw.trim() === "") return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new BadParameterError("The request body is not valid JSON.");
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new BadParameterError("The request body must be a JSON object.");
    return parsed as Record<string, unknown>;
  }

  /** Drains the body unread so keep-alive connections stay usable. */
  discardBody(): void {
    if (!this.#body) this.req.resume();
  }

  send(result: HttpResult): void {
    if (this.res.headersSent || this.res.destroyed) return;
    const headers: Record<string, string> = {
      "cache-control": "no-cache",
      "x-ms-request-id": this.requestId,
      "x-ms-keyvault-service-version": "1.9.0.0-emulator",
      "x-ms-keyvault-region": "emulator",
      ...result.headers,
    };
    let payload = "";
    if (result.text !== undefined) {
      payload = result.text;
      headers["content-type"] ??= "text/plain; charset=utf-8";
    } else if (result.body !== undefined) {
      payload = JSON.stringify(result.body);
      headers["content-type"] ??= "application/json; charset=utf-8";
    }
    headers["content-length"] = String(Buffer.byteLength(payload));
    this.discardBody();
    this.res.writeHead(result.status, headers);
    this.res.end(payload);
  }

  sendError(error: ServiceError): void {
    this.send({ status: error.statusCode, body: error.body(), headers: error.headers });
  }

  /** Closes the connection without an answer (a dropped-connection fault). */
  drop(): void {
    this.req.socket.destroy();
  }
}

export function hostnameOf(host: string): string {
  if (host.startsWith("[")) return host.slice(1, host.indexOf("]")).toLowerCase();
  const colon = host.lastIndexOf(":");
  return (colon >= 0 && host.indexOf(":") === colon ? host.slice(0, colon) : host).toLowerCase();
}
