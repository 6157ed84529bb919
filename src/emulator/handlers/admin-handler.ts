// The emulator's own control endpoints under /_emulator/ (on the HTTPS port
// for every host name, and on the plain-HTTP IMDS port): counters, fault
// rules, seeding, the CA certificate, metrics, health, minting test
// service-account tokens, Entra ID app tokens and CA-issued server
// certificates (for a test's webhook receiver), and the events endpoints
// (events-admin.ts). Not part of any Azure API.
import YAML from "yaml";
import type { Registry } from "prom-client";
import { validateFaultRule, type FaultInjector, type FaultRule } from "../fault-injector.ts";
import type { EventBroker } from "../events/event-broker.ts";
import type { RequestCounters } from "../request-counters.ts";
import { SeedError, validateSeedDocument, type SeedDocument } from "../seed-document.ts";
import type { Exchange, HttpResult } from "../server/exchange.ts";
import { handleEventsAdmin } from "./events-admin.ts";

export const ADMIN_PREFIX = "/_emulator/";

export interface AdminDeps {
  counters: RequestCounters;
  faults: FaultInjector;
  registry: Registry;
  caCertificatePem(): string;
  seed(doc: SeedDocument): Promise<void>;
  vaults(): Array<{ name: string; tenantId: string; url: string }>;
  issueServiceAccountToken(options: { namespace: string; serviceAccount: string; audience?: string; expiresInSeconds?: number }): string;
  issueAccessToken(options: AccessTokenRequest): string;
  issueServerCertificate(names: string[]): Promise<{ keyPem: string; certificatePem: string; caCertificatePem: string }>;
  events: EventBroker;
}

/** An app-only Entra ID access token (see Emulator.issueAccessToken). */
export interface AccessTokenRequest {
  audience: string;
  tenantId?: string;
  roles?: string[];
  appId?: string;
  expiresInSeconds?: number;
}

export class AdminHandler {
  readonly #deps: AdminDeps;

  constructor(deps: AdminDeps) {
    this.#deps = deps;
  }

  async handle(exchange: Exchange): Promise<void> {
    exchange.operation = "admin";
    try {
      exchange.send(await this.#route(exchange));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      exchange.send({ status: 400, body: { error: { code: "BadRequest", message } } });
    }
  }

  async #route(exchange: Exchange): Promise<HttpResult> {
    const { counters, faults } = this.#deps;
    const path = exchange.path.slice(ADMIN_PREFIX.length).replace(/\/+$/, "");
    const method = exchange.method;
    const events = await handleEventsAdmin(this.#deps.events, method, path, async () => parseBody(await exchange.body()));
    if (events) return events;
    switch (`${method} ${path}`) {
      case "GET counters":
        return { status: 200, body: counters.snapshot() };
      case "POST counters":
      case "POST counters/reset":
      case "DELETE counters":
        counters.reset();
        return { status: 200, body: counters.snapshot() };
      case "GET faults":
        return { status: 200, body: faults.list() };
      case "POST faults": {
        const body = parseBody(await exchange.body());
        const rules = (Array.isArray(body) ? body : [body]).map((r) => validateFaultRule(r));
        for (const rule of rules) faults.add(rule as FaultRule);
        return { status: 200, body: faults.list() };
      }
      case "DELETE faults":
        faults.clear();
        return { status: 200, body: [] };
      case "POST seed": {
        const doc = validateSeedDocument(parseBody(await exchange.body()));
        await this.#deps.seed(doc);
        return { status: 200, body: { vaults: this.#deps.vaults() } };
      }
      case "GET vaults":
        return { status: 200, body: this.#deps.vaults() };
      case "GET ca.pem":
        return { status: 200, text: this.#deps.caCertificatePem(), headers: { "content-type": "application/x-pem-file" } };
      case "GET healthz":
        return { status: 200, text: "ok" };
      case "GET metrics":
        return { status: 200, text: await this.#deps.registry.metrics(), headers: { "content-type": this.#deps.registry.contentType } };
      case "POST service-account-token": {
        const body = parseBody(await exchange.body()) as Record<string, unknown>;
        if (typeof body.namespace !== "string" || typeof body.serviceAccount !== "string") {
          throw new SeedError("namespace and serviceAccount are required strings");
        }
        const token = this.#deps.issueServiceAccountToken({
          namespace: body.namespace,
          serviceAccount: body.serviceAccount,
          audience: typeof body.audience === "string" ? body.audience : undefined,
          expiresInSeconds: typeof body.expiresInSeconds === "number" ? body.expiresInSeconds : undefined,
        });
        return { status: 200, body: { token } };
      }
      case "POST access-token": {
        const body = parseBody(await exchange.body()) as Record<string, unknown>;
        if (typeof body.audience !== "string") throw new SeedError("audience is a required string");
        const roles = body.roles;
        if (roles !== undefined && (!Array.isArray(roles) || roles.some((r) => typeof r !== "string"))) throw new SeedError("roles must be a list of strings");
        const token = this.#deps.issueAccessToken({
          audience: body.audience,
          tenantId: typeof body.tenantId === "string" ? body.tenantId : undefined,
          roles: roles as string[] | undefined,
          appId: typeof body.appId === "string" ? body.appId : undefined,
          expiresInSeconds: typeof body.expiresInSeconds === "number" ? body.expiresInSeconds : undefined,
        });
        return { status: 200, body: { token } };
      }
      case "POST server-certificate": {
        const body = parseBody(await exchange.body()) as Record<string, unknown>;
        const names = body.names;
        if (!Array.isArray(names) || names.length === 0 || names.length > 20 || names.some((n) => typeof n !== "string")) {
          throw new SeedError("names must be a list of 1 to 20 DNS names or IP addresses");
        }
        return { status: 200, body: await this.#deps.issueServerCertificate(names as string[]) };
      }
      default:
        return { status: 404, body: { error: { code: "NotFound", message: `no emulator endpoint ${method} ${exchange.path}` } } };
    }
  }
}

function parseBody(raw: Buffer): unknown {
  const text = raw.toString("utf8");
  if (text.trim() === "") return {};
  return YAML.parse(text) as unknown;
}
