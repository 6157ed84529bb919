// The Azure Instance Metadata Service token endpoint (plain HTTP, like the
// real 169.254.169.254): GET /metadata/identity/oauth2/token[/] with the
// "Metadata: true" header; the VM's system-assigned identity by default, a
// user-assigned one by client_id, object_id or msi_res_id.
import type { TokenIssuer } from "../auth/access-tokens.ts";
import { ImdsInvalidRequestError, ImdsNotFoundError, ImdsUnavailableError } from "../errors/imds-errors.ts";
import type { FaultInjector } from "../fault-injector.ts";
import type { RequestCounters } from "../request-counters.ts";
import type { Exchange } from "../server/exchange.ts";
import { applyFaults } from "../server/fault-stage.ts";
import type { DirectoryStore, ManagedIdentityRecord } from "../store/directory-store.ts";

export const IMDS_TOKEN_LIFETIME_SECONDS = 86_399;

export interface ImdsDeps {
  directory: DirectoryStore;
  tokens: TokenIssuer;
  counters: RequestCounters;
  faults: FaultInjector;
}

export class ImdsHandler {
  readonly #deps: ImdsDeps;

  constructor(deps: ImdsDeps) {
    this.#deps = deps;
  }

  async handle(exchange: Exchange): Promise<void> {
    const { counters, faults, tokens } = this.#deps;
    if (!/^\/metadata\/identity\/oauth2\/token\/?$/.test(exchange.path)) throw new ImdsNotFoundError(exchange.path);
    exchange.operation = "imdsToken";
    if (exchange.method !== "GET" && exchange.method !== "POST") throw new ImdsNotFoundError(exchange.path);
    if ((exchange.header("metadata") ?? "").toLowerCase() !== "true") {
      throw new ImdsInvalidRequestError("Required metadata header not specified");
    }
    const ended = await applyFaults(exchange, faults, counters, (failure) => new ImdsUnavailableError(failure.status, failure.retryAfterSeconds));
    if (ended) return;
    const query = exchange.query;
    if (!query.get("api-version")) throw new ImdsInvalidRequestError("Required query variable 'api-version' is missing");
    const resource = query.get("resource");
    if (!resource) throw new ImdsInvalidRequestError("Required query variable 'resource' is missing");
    const identity = this.#identity(query);
    counters.increment("imdsToken", identity.clientId);
    const issued = tokens.issue(identity, resource.replace(/\/\.default$/, ""), IMDS_TOKEN_LIFETIME_SECONDS);
    exchange.send({
      status: 200,
      body: {
        access_token: issued.accessToken,
        client_id: identity.clientId,
        expires_in: String(issued.expiresIn),
        expires_on: String(issued.expiresOn),
        ext_expires_in: String(issued.expiresIn),
        not_before: String(issued.notBefore),
        resource,
        token_type: "Bearer",
      },
    });
  }

  #identity(query: URLSearchParams): ManagedIdentityRecord {
    const { directory } = this.#deps;
    const clientId = query.get("client_id");
    const objectId = query.get("object_id") ?? query.get("principal_id");
    const resourceId = query.get("msi_res_id") ?? query.get("mi_res_id");
    let identity: ManagedIdentityRecord | undefined;
    if (clientId || objectId || resourceId) {
      identity = directory.findManagedIdentity({ clientId: clientId ?? undefined, objectId: objectId ?? undefined, resourceId: resourceId ?? undefined });
    } else {
      identity = directory.systemAssignedIdentity();
    }
    if (!identity) throw new ImdsInvalidRequestError("Identity not found");
    return identity;
  }
}
