// Push delivery: the HTTPS endpoint an Event Grid subscription of the vaults'
// system topic calls (through a Service and the user's ingress). It speaks
// both delivery schemas:
//
//   Event Grid schema   POST, a JSON array; the handshake is a POST with
//                       `aeg-event-type: SubscriptionValidation`, answered
//                       200 {"validationResponse": "<code>"};
//   CloudEvents 1.0     POST `application/cloudevents+json` (one event) or
//                       `application/cloudevents-batch+json` (an array); the
//                       handshake is an OPTIONS with `WebHook-Request-Origin`,
//                       answered with `WebHook-Allowed-Origin`.
//
// Every request, handshakes included, is authenticated before its body is
// read: by an Entra ID bearer token (entra-token.ts) or by a secret query
// parameter (query-secrets.ts), whichever are configured; anything else gets
// 401 and nothing is done. An accepted delivery is answered once its events
// are handled: 200 when all were, 500 when a refresh failed and 503 when the
// controller is busy (Event Grid retries both; a retry finds the handled
// events remembered). Bodies above Event Grid's batch limit get 413. The
// certificate and key are read again when their files change (a rotated
// Secret), without a restart.
import { readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../../shared/logger.ts";
import { parseListenAddress } from "../../shared/grpc/endpoint.ts";
import type { ControllerMetrics, DeliveryResult } from "../metrics.ts";
import { TokenRefused, type EntraTokenValidator } from "./entra-token.ts";
import { EventsBusy, type EventProcessor } from "./event-processor.ts";
import { parseEnvelope, validationCodeOf, type KeyVaultEvent } from "./key-vault-event.ts";
import type { QuerySecrets } from "./query-secrets.ts";

/** Event Grid batches at most 1,024 KB; a little room for the envelope. */
export const MAX_BODY_BYTES = 1_100_000;
/** Event Grid batches at most 5,000 events. */
export const MAX_EVENTS_PER_REQUEST = 5000;
/** Event Grid waits 30 s for an answer; answer before it gives up. */
const HANDLING_TIMEOUT_MS = 25_000;
const CERT_RECHECK_MS = 30_000;

export interface WebhookOptions {
  /** "[host]:port" */
  listen: string;
  certFile: string;
  keyFile: string;
  querySecrets?: QuerySecrets;
  /** The query parameter that carries the secret. */
  queryParameter: string;
  entra?: EntraTokenValidator;
}

export interface RunningWebhook {
  port: number;
  close(): Promise<void>;
}

class HttpProblem extends Error {
  readonly status: number;
  readonly result: DeliveryResult;
  constructor(status: number, result: DeliveryResult, message: string) {
    super(message);
    this.status = status;
    this.result = result;
  }
}

function readTls(options: WebhookOptions): { key: Buffer; cert: Buffer; version: string } {
  const version = [options.certFile, options.keyFile].map((f) => {
    const st = statSync(f);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  });
  return { key: readFileSync(options.keyFile), cert: readFileSync(options.certFile), version: version.join("|") };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > MAX_BODY_BYTES) throw new HttpProblem(413, "too_large", `the request body is larger than ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpProblem(413, "too_large", `the request body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export async function startWebhookServer(options: WebhookOptions, processor: EventProcessor, metrics: ControllerMetrics, logger: Logger): Promise<RunningWebhook> {
  if (!options.querySecrets && !options.entra) throw new Error("the event webhook needs an authentication: a query secrets file, an Entra ID tenant and audience, or both");
  const { host, port } = parseListenAddress(options.listen);
  let tls = readTls(options);
  let refusals = 0;

  const authenticate = async (req: IncomingMessage, url: URL): Promise<void> => {
    if (options.querySecrets?.matches(url.searchParams.get(options.queryParameter))) return;
    if (options.entra) {
      try {
        await options.entra.validate(req.headers.authorization);
        return;
      } catch (err) {
        if (!(err instanceof TokenRefused)) throw err;
        throw new HttpProblem(401, "unauthorized", err.message);
      }
    }
    throw new HttpProblem(401, "unauthorized", url.searchParams.has(options.queryParameter) ? "the query secret does not match" : "no credentials");
  };

  const handleEvents = async (body: unknown): Promise<number> => {
    const envelopes = Array.isArray(body) ? body : [body];
    if (envelopes.length > MAX_EVENTS_PER_REQUEST) throw new HttpProblem(413, "too_large", `more than ${MAX_EVENTS_PER_REQUEST} events in one request`);
    const events: KeyVaultEvent[] = [];
    for (const envelope of envelopes) {
      const parsed = parseEnvelope(envelope);
      if ("event" in parsed) events.push(parsed.event);
      else {
        processor.countIgnored("webhook", "other", parsed.ignored === "other" ? "ignored" : "malformed");
        if (parsed.problem) logger.debug({ problem: parsed.problem }, "event ignored");
      }
    }
    try {
      processor.admit(events.length);
    } catch (err) {
      if (err instanceof EventsBusy) throw new HttpProblem(503, "busy", err.message);
      throw err;
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), HANDLING_TIMEOUT_MS)));
    const handled = Promise.allSettled(events.map((e) => processor.handle(e, "webhook")));
    const results = await Promise.race([handled, timeout]);
    clearTimeout(timer);
    if (results === "timeout") throw new HttpProblem(503, "busy", "the events are still being handled; deliver them again later");
    const failed = results.filter((r) => r.status === "rejected");
    if (failed.length > 0) throw new HttpProblem(500, "failed", `${failed.length} of ${events.length} events could not be handled: ${(failed[0] as PromiseRejectedResult).reason}`);
    return events.length;
  };

  const respond = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "https://webhook");
    if (req.method !== "POST" && req.method !== "OPTIONS") throw new HttpProblem(405, "bad_request", "only POST and OPTIONS are served");
    await authenticate(req, url);

    if (req.method === "OPTIONS") {
      // CloudEvents' abuse protection handshake.
      const origin = String(req.headers["webhook-request-origin"] ?? "").slice(0, 253);
      if (!origin) throw new HttpProblem(400, "bad_request", "an OPTIONS request without WebHook-Request-Origin");
      metrics.deliveries.inc({ result: "handshake" });
      logger.info({ origin }, "event webhook validated (CloudEvents handshake)");
      res.writeHead(200, { "webhook-allowed-origin": origin, "webhook-allowed-rate": "*", allow: "POST, OPTIONS" });
      res.end();
      return;
    }

    const text = await readBody(req);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new HttpProblem(400, "bad_request", "the body is not JSON");
    }
    if (String(req.headers["aeg-event-type"] ?? "").toLowerCase() === "subscriptionvalidation") {
      const code = Array.isArray(body) ? body.map(validationCodeOf).find((c) => c !== undefined) : undefined;
      if (!code) throw new HttpProblem(400, "bad_request", "a SubscriptionValidation request without a validation code");
      metrics.deliveries.inc({ result: "handshake" });
      logger.info("event webhook validated (Event Grid handshake)");
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ validationResponse: code }));
      return;
    }
    const count = await handleEvents(body);
    metrics.deliveries.inc({ result: "accepted" });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ accepted: count }));
  };

  const server: Server = createServer({ key: tls.key, cert: tls.cert, requestTimeout: 60_000, headersTimeout: 20_000 }, (req, res) => {
    respond(req, res).catch((err: unknown) => {
      const problem = err instanceof HttpProblem ? err : new HttpProblem(500, "failed", (err as Error).message);
      metrics.deliveries.inc({ result: problem.result });
      if (problem.status === 401) {
        // Logged at debug only after the first few: anyone may knock.
        if (refusals++ < 10) logger.warn({ reason: problem.message, remote: req.socket.remoteAddress }, "event delivery refused");
        else logger.debug({ reason: problem.message, remote: req.socket.remoteAddress }, "event delivery refused");
      } else if (problem.status >= 500) logger.warn({ status: problem.status, error: problem.message }, "event delivery not handled");
      if (res.headersSent) return;
      // An unread body is not read: the connection closes after the answer.
      res.writeHead(problem.status, { "content-type": "application/json", ...(problem.status === 401 || problem.status === 413 ? { connection: "close" } : {}) });
      res.end(JSON.stringify({ error: problem.message }));
    });
  });
  server.on("tlsClientError", () => undefined);

  const recheck = setInterval(() => {
    try {
      const next = readTls(options);
      if (next.version === tls.version) return;
      server.setSecureContext({ key: next.key, cert: next.cert });
      tls = next;
      logger.info({ certFile: options.certFile }, "event webhook certificate reloaded");
    } catch (err) {
      logger.warn({ certFile: options.certFile, error: (err as Error).message }, "event webhook certificate not reloaded; the current one stays");
    }
  }, CERT_RECHECK_MS);
  recheck.unref();

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  logger.info({ listen: options.listen, port: bound, querySecret: options.querySecrets !== undefined, entraId: options.entra !== undefined }, "event webhook listening");
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(recheck);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
