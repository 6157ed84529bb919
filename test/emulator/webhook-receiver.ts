// A small HTTPS webhook receiver for the event tests: it records every
// request and answers like a well-behaved Event Grid endpoint (echoes the
// validation code, allows the CloudEvents origin, 200 for notifications)
// unless a path is given its own behaviour.
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";

export interface ReceivedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface Answer {
  /** Reset the connection instead of answering. */
  drop?: boolean;
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export type Behaviour = (request: ReceivedRequest, sameKind: number) => Answer | undefined;

export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];
  readonly #server: Server;
  readonly #behaviours = new Map<string, Behaviour>();
  readonly port: number;

  private constructor(server: Server, port: number) {
    this.#server = server;
    this.port = port;
  }

  static async start(tls: { keyPem: string; certificatePem: string }): Promise<WebhookReceiver> {
    const holder: { receiver?: WebhookReceiver } = {};
    const server = createServer({ key: tls.keyPem, cert: tls.certificatePem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const url = new URL(req.url ?? "/", "https://receiver");
        const request: ReceivedRequest = { method: req.method ?? "", path: url.pathname, query: url.searchParams, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
        const answer = holder.receiver!.#answer(request);
        if (answer.drop) {
          req.socket.destroy();
          return;
        }
        res.writeHead(answer.status, answer.headers ?? {});
        res.end(answer.body ?? "");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    holder.receiver = new WebhookReceiver(server, (server.address() as AddressInfo).port);
    return holder.receiver;
  }

  url(path: string, query = ""): string {
    return `https://127.0.0.1:${this.port}${path}${query ? `?${query}` : ""}`;
  }

  /** Overrides the answers on one path; `sameKind` counts earlier requests of the same kind there. */
  on(path: string, behaviour: Behaviour): void {
    this.#behaviours.set(path, behaviour);
  }

  /** Event deliveries (not handshakes) that reached a path. */
  notifications(path: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.path === path && r.method === "POST" && r.headers["aeg-event-type"] === "Notification");
  }

  handshakes(path: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.path === path && (r.method === "OPTIONS" || r.headers["aeg-event-type"] === "SubscriptionValidation"));
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #answer(request: ReceivedRequest): Answer {
    const kind = kindOf(request);
    const sameKind = this.requests.filter((r) => r.path === request.path && kindOf(r) === kind).length;
    this.requests.push(request);
    return this.#behaviours.get(request.path)?.(request, sameKind) ?? wellBehaved(request);
  }
}

function kindOf(request: ReceivedRequest): string {
  return request.method === "OPTIONS" ? "OPTIONS" : String(request.headers["aeg-event-type"] ?? "other");
}

/** What a correct receiver answers. */
export function wellBehaved(request: ReceivedRequest): Answer {
  if (request.method === "OPTIONS") return { status: 200, headers: { "webhook-allowed-origin": String(request.headers["webhook-request-origin"] ?? "") } };
  if (request.headers["aeg-event-type"] === "SubscriptionValidation") {
    const [event] = JSON.parse(request.body) as Array<{ data: { validationCode: string } }>;
    return { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify({ validationResponse: event!.data.validationCode }) };
  }
  return { status: 200 };
}
