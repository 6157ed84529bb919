// A small REST client for the few Kubernetes API calls the driver makes: JSON
// in and out, a deadline on every call, errors that carry the HTTP status and
// the API server's own message (never a request or response body otherwise),
// and a watch that streams events. See kube-connection.ts for why the driver
// does not use @kubernetes/client-node's generated clients at run time.
import { request as httpRequest, type ClientRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import type { KubeConnection } from "./kube-connection.ts";

export const API_TIMEOUT_MS = 15_000;

/** An answer other than 2xx. `code` is the HTTP status; `body` the API server's Status object. */
export class KubeApiError extends Error {
  readonly code: number;
  readonly body: { message?: string; reason?: string } | undefined;
  constructor(code: number, body: { message?: string; reason?: string } | undefined) {
    super(body?.message ?? `HTTP ${code}${body?.reason ? ` ${body.reason}` : ""}`);
    this.code = code;
    this.body = body;
  }
}

export interface RequestSpec {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
  contentType?: string;
  /** For the timeout message: "get secret ns/name". */
  what: string;
  timeoutMs?: number;
}

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

function pathWithQuery(path: string, query: Record<string, string | undefined> = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, v);
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

async function readBody(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export class KubeRest {
  private readonly connection: KubeConnection;
  constructor(connection: KubeConnection) {
    this.connection = connection;
  }

  private async options(spec: { method: string; path: string; query?: Record<string, string | undefined>; contentType?: string }): Promise<RequestOptions> {
    const url = new URL(pathWithQuery(spec.path, spec.query), this.connection.server);
    const options: RequestOptions & { protocol: string } = {
      protocol: url.protocol,
      method: spec.method,
      hostname: url.hostname.replace(/^\[|\]$/g, ""),
      port: url.port || (url.protocol === "http:" ? 80 : 443),
      path: `${url.pathname}${url.search}`,
      headers: { accept: "application/json", ...(spec.contentType ? { "content-type": spec.contentType } : {}) },
    };
    await this.connection.apply(options);
    // A plain-http server (a local proxy such as `kubectl proxy`) takes no TLS agent.
    if (url.protocol === "http:") delete options.agent;
    return options;
  }

  private send(options: RequestOptions, onResponse: (res: IncomingMessage) => void): ClientRequest {
    return options.protocol === "http:" ? httpRequest(options, onResponse) : httpsRequest(options, onResponse);
  }

  async request<T>(spec: RequestSpec): Promise<T> {
    const options = await this.options(spec);
    const payload = spec.body === undefined ? undefined : JSON.stringify(spec.body);
    const ms = spec.timeoutMs ?? API_TIMEOUT_MS;
    return new Promise<T>((resolve, reject) => {
      const req = this.send(options, (res) => {
        readBody(res).then((text) => {
          clearTimeout(timer);
          const status = res.statusCode ?? 0;
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          if (status >= 200 && status < 300) resolve(parsed as T);
          else reject(new KubeApiError(status, parsed as KubeApiError["body"]));
        }, reject);
      });
      const timer = setTimeout(() => {
        req.destroy();
        reject(new Error(`${spec.what}: no answer from the Kubernetes API server within ${ms / 1000}s`));
      }, ms);
      req.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.end(payload);
    });
  }

  /**
   * Streams a watch until it ends (server timeout, error, abort). onEvent gets
   * each event; the returned promise settles when the stream is over.
   */
  watch<T>(path: string, query: Record<string, string | undefined>, onEvent: (event: WatchEvent<T>) => void, signal: AbortSignal): Promise<void> {
    return this.options({ method: "GET", path, query: { ...query, watch: "true" } }).then(
      (options) =>
        new Promise<void>((resolve, reject) => {
          const req = this.send({ ...options, signal }, (res) => {
            if (res.statusCode !== 200) {
              readBody(res).then((text) => reject(new KubeApiError(res.statusCode ?? 0, safeJson(text))), reject);
              return;
            }
            let buffered = "";
            res.setEncoding("utf8");
            res.on("data", (chunk: string) => {
              buffered += chunk;
              for (let newline = buffered.indexOf("\n"); newline >= 0; newline = buffered.indexOf("\n")) {
                const line = buffered.slice(0, newline);
                buffered = buffered.slice(newline + 1);
                const event = safeJson(line) as WatchEvent<T> | undefined;
                if (event?.type) onEvent(event);
              }
            });
            res.once("end", () => resolve());
            res.once("error", () => resolve());
          });
          req.once("error", (err) => (signal.aborted ? resolve() : reject(err)));
          req.end();
        }),
    );
  }
}

function safeJson(text: string): { message?: string; reason?: string } | undefined {
  try {
    return JSON.parse(text) as { message?: string; reason?: string };
  } catch {
    return undefined;
  }
}
