// One HTTPS request from Event Grid to a webhook: the endpoint's certificate
// must chain to the trusted CAs and must not be self-signed (Event Grid
// refuses those even when trusted), the answer must come within the timeout,
// and at most 64 KiB of the answer is read.
import { request } from "node:https";
import { checkServerIdentity, type PeerCertificate } from "node:tls";

const MAX_ANSWER_BYTES = 64 * 1024;

export interface WebhookRequest {
  method: "POST" | "OPTIONS";
  url: URL;
  headers: Record<string, string>;
  body?: string;
  /** PEM bundle of the CAs the endpoint's certificate must chain to. */
  ca: string;
  timeoutMs: number;
  /** Aborts the request (the emulator is closing). */
  signal: AbortSignal;
}

export interface WebhookAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Network failures, TLS refusals and timeouts (retried like a 5xx). */
export class WebhookUnreachableError extends Error {}

export function sendToWebhook(req: WebhookRequest): Promise<WebhookAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...req.headers };
    if (req.body !== undefined) headers["content-length"] = String(Buffer.byteLength(req.body));
    const outgoing = request(
      req.url,
      {
        method: req.method,
        headers,
        ca: req.ca,
        agent: false,
        timeout: req.timeoutMs,
        signal: req.signal,
        checkServerIdentity: (host: string, cert: PeerCertificate) => {
          if (isSelfSigned(cert)) return new Error(`the endpoint's certificate (${cert.subject?.CN ?? "no CN"}) is self-signed; Event Grid accepts only CA-issued certificates`);
          return checkServerIdentity(host, cert);
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          if (size >= MAX_ANSWER_BYTES) return;
          chunks.push(chunk);
          size += chunk.length;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString("utf8") }));
        res.on("error", (err) => reject(new WebhookUnreachableError(err.message)));
      },
    );
    outgoing.on("timeout", () => outgoing.destroy(new WebhookUnreachableError(`no answer within ${req.timeoutMs} ms`)));
    outgoing.on("error", (err) => reject(err instanceof WebhookUnreachableError ? err : new WebhookUnreachableError(err.message)));
    outgoing.end(req.body);
  });
}

function isSelfSigned(cert: PeerCertificate): boolean {
  if (!cert.subject || !cert.issuer) return false;
  return JSON.stringify(cert.subject) === JSON.stringify(cert.issuer);
}
