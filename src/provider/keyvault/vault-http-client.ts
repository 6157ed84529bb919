// The HTTP client of every Key Vault and Entra ID request, in place of the
// SDK's default one (Node's https module through an Agent): HTTP/1.1 over TLS
// connections pooled here within connection-bounds.ts, each request written
// at once and its response read by http-response.ts. The Azure SDK takes an
// HttpClient as a client option for this; its pipeline (authentication,
// challenges, tracing, deserialization) is unchanged.
//
// Why: under V8's interpreter (--lite-mode), Node's HTTP client (ClientRequest,
// the agent, IncomingMessage and its stream) and the SDK's wrapper around it
// were about half of the instructions of a Key Vault read: the SDK reading ten
// secrets through it took 17.6 M instructions, through this client 9.1 M
// (docs/performance.md).
//
// What it does not do goes to the SDK's own client: a proxy (HTTPS_PROXY sets
// request.agent), plain http, client certificates, streamed or multipart
// bodies, progress callbacks.
import { isIP, type OnReadOpts } from "node:net";
import { Readable } from "node:stream";
import { connect, type ConnectionOptions, type TLSSocket } from "node:tls";
import { gunzipSync, inflateSync } from "node:zlib";
import { createDefaultHttpClient, RestError, type HttpClient, type PipelineRequest, type PipelineResponse } from "@azure/core-rest-pipeline";
import { traceStep } from "../../shared/trace.ts";
import { IDLE_SOCKET_MS, MAX_IDLE_SOCKETS, MAX_SOCKETS_PER_HOST } from "./connection-bounds.ts";
import { HttpResponseReader, MAX_BODY_BYTES } from "./http-response.ts";
import { ResponseHeaders } from "./response-headers.ts";
import { sending } from "./sent-with-token.ts";

/** Named as the SDK's own, which is what callers tell an abort by. */
class AbortError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AbortError";
  }
}

/** One request on a connection: gets the connection's bytes until its response is read. */
interface Exchange {
  reader: HttpResponseReader;
  onDone(): void;
  onFail(err: Error): void;
}

class Connection {
  readonly socket: TLSSocket;
  readonly origin: string;
  exchange: Exchange | undefined;
  /** Has carried a response before (a stale idle connection may fail at once). */
  reused = false;
  idleTimer: NodeJS.Timeout | undefined;
  closed = false;

  constructor(socket: TLSSocket, origin: string, onClose: (c: Connection) => void) {
    this.socket = socket;
    this.origin = origin;
    socket.on("end", () => {
      const exchange = this.exchange;
      if (!exchange) return;
      try {
        exchange.reader.end();
        exchange.onDone();
      } catch (err) {
        exchange.onFail(err as Error);
      }
    });
    socket.on("error", (err) => this.exchange?.onFail(err));
    socket.on("close", () => {
      this.closed = true;
      this.exchange?.onFail(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
      onClose(this);
    });
  }

  /** Bytes read off the socket (a copy: the read buffer is shared, see READ_BUFFER). */
  received(chunk: Buffer): void {
    const exchange = this.exchange;
    // bytes nobody asked for: the connection is out of step
    if (!exchange) return void this.destroy();
    try {
      if (exchange.reader.push(chunk)) exchange.onDone();
    } catch (err) {
      exchange.onFail(err as Error);
    }
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

/**
 * Every connection's reads land here, and what is kept is copied out at once
 * (one thread: a read is handed over before the next one starts). Reading
 * into a buffer of our own (the `onread` option) skips the socket's readable
 * stream, its data event and a new buffer per read: a quarter of the client's
 * CPU per 1 KB response in a loopback micro-benchmark (docs/performance.md).
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

interface Waiter {
  resolve(connection: Connection | undefined): void;
}

/** The connections to one origin (host:port). */
interface OriginPool {
  idle: Connection[];
  /** Connections open or opening. */
  open: number;
  waiting: Waiter[];
}

export interface VaultHttpClientOptions {
  /** TLS options of every connection, e.g. a test's own CA. */
  tls?: Pick<ConnectionOptions, "ca">;
}

export class VaultHttpClient implements HttpClient {
  private readonly pools = new Map<string, OriginPool>();
  /** Idle connections of every origin, oldest first. */
  private readonly idle = new Set<Connection>();
  /** The last TLS session of each origin, to resume rather than repeat a full handshake. */
  private readonly sessions = new Map<string, Buffer>();
  private readonly tls: Pick<ConnectionOptions, "ca">;
  private fallback: HttpClient | undefined;
  /** Connections opened so far (tests). */
  connectionsOpened = 0;

  constructor(options: VaultHttpClientOptions = {}) {
    this.tls = options.tls ?? {};
  }

  sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
    const url = new URL(request.url);
    if (!this.handles(request, url)) return (this.fallback ??= createDefaultHttpClient()).sendRequest(request);
    if (request.abortSignal?.aborted) return Promise.reject(new AbortError("The operation was aborted. Request has already been canceled."));
    const path = `${url.pathname}${url.search}`;
    return traceStep(`http ${request.method} ${url.host}${url.pathname}`, () => this.exchange(request, url, path));
  }

  /** Closes every idle connection (tests, shutdown). */
  close(): void {
    for (const connection of [...this.idle]) connection.destroy();
  }

  private handles(request: PipelineRequest, url: URL): boolean {
    if (url.protocol !== "https:" || request.agent || request.tlsSettings || request.requestOverrides) return false;
    if (request.onUploadProgress || request.onDownloadProgress || request.multipartBody || request.formData) return false;
    const body = request.body;
    return body === undefined || body === null || typeof body === "string" || body instanceof Uint8Array;
  }

  private async exchange(request: PipelineRequest, url: URL, path: string): Promise<PipelineResponse> {
    const head = requestHead(request, url, path);
    const body = request.body === undefined || request.body === null ? undefined : (request.body as string | Uint8Array);
    for (let attempt = 0; ; attempt++) {
      let connection: Connection | undefined;
      try {
        connection = await this.acquire(url, request);
        const reader = await this.send(connection, request, head, body);
        return response(request, reader);
      } catch (err) {
        // A kept-alive connection the server had closed fails before any byte
        // of a response: the request never reached it, so it goes once more.
        if (attempt === 0 && connection?.reused === true && (err as { retryable?: boolean }).retryable === true) continue;
        throw toRestError(err, request);
      }
    }
  }

  /** Writes the request and reads its response; releases the connection when done. */
  private send(connection: Connection, request: PipelineRequest, head: string, body: string | Uint8Array | undefined): Promise<HttpResponseReader> {
    return new Promise<HttpResponseReader>((resolve, reject) => {
      const reader = new HttpResponseReader(request.method);
      const signal = request.abortSignal;
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const finish = (err: Error | undefined): void => {
        if (settled) return;
        settled = true;
        connection.exchange = undefined;
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (err) {
          connection.destroy();
          this.release(connection, false);
          if (!reader.started && !(err instanceof AbortError)) (err as { retryable?: boolean }).retryable = true;
          reject(err);
        } else {
          this.release(connection, reader.keepAlive && !reader.trailing && !connection.closed);
          resolve(reader);
        }
      };
      const onAbort = (): void => finish(new AbortError("The operation was aborted. Rejecting from abort signal callback while making request."));
      connection.exchange = { reader, onDone: () => finish(undefined), onFail: (err) => finish(err) };
      signal?.addEventListener("abort", onAbort);
      if (request.timeout > 0) timer = setTimeout(onAbort, request.timeout);
      const socket = connection.socket;
      // closed while it was handed over: nothing was sent
      if (connection.closed || socket.destroyed) return finish(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
      sending(request);
      // One write, no cork: corking queued every request in the stream and
      // replayed it on uncork (a body through the writev path): 5% of a warm
      // Mount's instructions.
      if (body === undefined) socket.write(head, "latin1");
      else socket.write(Buffer.concat([Buffer.from(head, "latin1"), typeof body === "string" ? Buffer.from(body, "utf8") : body]));
    });
  }

  /** A connection to the request's origin: an idle one, a new one within the bound, or the next one released. */
  private acquire(url: URL, request: PipelineRequest): Promise<Connection> {
    const origin = url.host;
    let pool = this.pools.get(origin);
    if (!pool) this.pools.set(origin, (pool = { idle: [], open: 0, waiting: [] }));
    const idle = pool.idle.pop();
    if (idle) {
      this.idle.delete(idle);
      clearTimeout(idle.idleTimer);
      return Promise.resolve(idle);
    }
    if (pool.open < MAX_SOCKETS_PER_HOST) return this.open(url, pool);
    const signal = request.abortSignal;
    return new Promise<Connection>((resolve, reject) => {
      const onAbort = (): void => {
        const at = pool.waiting.indexOf(waiter);
        if (at >= 0) pool.waiting.splice(at, 1);
        reject(new AbortError("The operation was aborted. Rejecting from abort signal callback while making request."));
      };
      const waiter: Waiter = {
        resolve: (connection) => {
          signal?.removeEventListener("abort", onAbort);
          if (connection) resolve(connection);
          else this.open(url, pool).then(resolve, reject);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      pool.waiting.push(waiter);
    });
  }

  private open(url: URL, pool: OriginPool): Promise<Connection> {
    pool.open++;
    this.connectionsOpened++;
    const origin = url.host;
    const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    return new Promise<Connection>((resolve, reject) => {
      // tls.connect takes net's onread (Node's documentation); @types/node does not list it.
      const options: ConnectionOptions & { onread: OnReadOpts } = {
        host,
        port: url.port === "" ? 443 : Number(url.port),
        servername: isIP(host) === 0 ? host : undefined,
        ALPNProtocols: ["http/1.1"],
        session: this.sessions.get(origin),
        ...this.tls,
        onread: {
          buffer: READ_BUFFER,
          callback: (bytes: number, buffer: Uint8Array) => {
            // (bytes come only after the handshake, when the connection below exists)
            connection.received(Buffer.from(buffer.subarray(0, bytes)));
            return true;
          },
        },
      };
      const socket = connect(options);
      socket.setNoDelay(true);
      socket.on("session", (session: Buffer) => {
        this.sessions.delete(origin);
        this.sessions.set(origin, session);
        if (this.sessions.size > MAX_IDLE_SOCKETS) this.sessions.delete(this.sessions.keys().next().value!);
      });
      const connection = new Connection(socket, origin, (c) => this.forget(c, pool));
      const onError = (err: Error): void => reject(err);
      socket.once("error", onError);
      socket.once("secureConnect", () => {
        socket.off("error", onError);
        resolve(connection);
      });
    });
  }

  /** A connection is done with its request: to the next waiter, to the idle pool, or closed. */
  private release(connection: Connection, reusable: boolean): void {
    const pool = this.pools.get(connection.origin)!;
    if (!reusable) {
      connection.destroy();
      return;
    }
    connection.reused = true;
    const waiter = pool.waiting.shift();
    if (waiter) return waiter.resolve(connection);
    pool.idle.push(connection);
    this.idle.add(connection);
    connection.idleTimer = setTimeout(() => this.evict(connection), IDLE_SOCKET_MS).unref();
    if (this.idle.size > MAX_IDLE_SOCKETS) this.evict(this.idle.values().next().value!);
  }

  /**
   * Closes an idle connection and takes it out of the idle pools at once. Its
   * socket's "close" comes only in a later turn of the event loop, and every
   * response read before then (a burst of them arrive in one turn) would have
   * found the same oldest connection still counted and evicted nothing: the
   * bound let a tenant naming 2,000 vaults keep a thousand connections open.
   */
  private evict(connection: Connection): void {
    clearTimeout(connection.idleTimer);
    if (this.idle.delete(connection)) {
      const pool = this.pools.get(connection.origin)!;
      pool.idle.splice(pool.idle.indexOf(connection), 1);
    }
    connection.destroy();
  }

  /** A connection closed: its slot goes to the next waiter. */
  private forget(connection: Connection, pool: OriginPool): void {
    clearTimeout(connection.idleTimer);
    if (this.idle.delete(connection)) pool.idle.splice(pool.idle.indexOf(connection), 1);
    pool.open--;
    const waiter = pool.waiting.shift();
    if (waiter) waiter.resolve(undefined);
    else if (pool.open === 0 && pool.idle.length === 0) this.pools.delete(connection.origin);
  }
}

/** The request line and fields; CR and LF in a field end the request here (they would split it on the wire). */
function requestHead(request: PipelineRequest, url: URL, path: string): string {
  let head = `${request.method} ${path} HTTP/1.1\r\nhost: ${url.host}\r\n`;
  for (const [name, value] of request.headers) {
    const lower = name.toLowerCase();
    if (lower === "host" || lower === "content-length" || lower === "connection" || lower === "transfer-encoding") continue;
    if (hasLineBreak(name) || hasLineBreak(value)) throw new RestError(`invalid character in the HTTP header "${name}"`, { code: "ERR_INVALID_CHAR", request });
    head += `${name}: ${value}\r\n`;
  }
  const body = request.body as string | Uint8Array | undefined | null;
  const length = body === undefined || body === null ? 0 : typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
  if (length > 0 || request.method === "POST" || request.method === "PUT" || request.method === "PATCH") head += `content-length: ${length}\r\n`;
  return `${head}\r\n`;
}

function hasLineBreak(text: string): boolean {
  return text.includes("\r") || text.includes("\n") || text.includes("\0");
}

/** The response as the SDK's pipeline takes it; the body decoded as the SDK's own client decodes it. */
function response(request: PipelineRequest, reader: HttpResponseReader): PipelineResponse {
  const result: PipelineResponse = { request, status: reader.status, headers: new ResponseHeaders(reader.headers) };
  if (request.method === "HEAD") return result;
  let body = reader.bodyBuffer();
  const encoding = reader.headers["content-encoding"]?.toLowerCase();
  const accepted = request.headers.get("accept-encoding") ?? "";
  if (encoding === "gzip" && accepted.includes("gzip")) body = gunzipSync(body, { maxOutputLength: MAX_BODY_BYTES });
  else if (encoding === "deflate" && accepted.includes("deflate")) body = inflateSync(body, { maxOutputLength: MAX_BODY_BYTES });
  if (request.streamResponseStatusCodes?.has(Number.POSITIVE_INFINITY) || request.streamResponseStatusCodes?.has(reader.status)) {
    result.readableStreamBody = Readable.from([body]);
  } else {
    result.bodyAsText = body.toString("utf8");
  }
  return result;
}

/** Failures as the SDK's own client reports them: a RestError with the system's code, an AbortError as it is. */
function toRestError(err: unknown, request: PipelineRequest): Error {
  if (err instanceof AbortError || err instanceof RestError) return err;
  const e = err as Error & { code?: string };
  return new RestError(e.message, { code: e.code ?? RestError.REQUEST_SEND_ERROR, request });
}
