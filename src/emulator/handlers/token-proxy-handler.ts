// What the cluster front answers over HTTP. The identity-binding token proxy
// forwards the Entra ID endpoints (token, OpenID configuration, discovery) to
// the emulated Entra ID as identity-binding requests: the client assertion
// must be a service-account token for api://AKSIdentityBinding that an
// identity binding of the client id accepts (see auth/client-assertion.ts).
// The API server itself is not emulated: it answers every request 404 with a
// Kubernetes Status, so a client that reaches it instead of the proxy learns
// that much.
import type { RequestCounters } from "../request-counters.ts";
import type { Exchange } from "../server/exchange.ts";
import type { EntraIdHandler } from "./entra-id-handler.ts";

export interface TokenProxyDeps {
  entraId: EntraIdHandler;
  counters: RequestCounters;
}

export class TokenProxyHandler {
  readonly #deps: TokenProxyDeps;

  constructor(deps: TokenProxyDeps) {
    this.#deps = deps;
  }

  /** A request that came in under the proxy's server name. */
  async handle(exchange: Exchange): Promise<void> {
    this.#deps.counters.increment("tokenProxyRequest");
    if (await this.#deps.entraId.handle(exchange, "identityBinding")) return;
    exchange.operation = "tokenProxy";
    exchange.send({
      status: 404,
      body: { error: "not_found", error_description: `The identity-binding token proxy serves only Entra ID token requests, not ${exchange.method} ${exchange.path}.` },
    });
  }

  /** A request that reached the API server's names (no token service there). */
  answerAsApiServer(exchange: Exchange): void {
    exchange.operation = "apiServer";
    this.#deps.counters.increment("apiServerRequest");
    exchange.send({
      status: 404,
      body: {
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        message: `the server could not find the requested resource (${exchange.method} ${exchange.path}); the identity-binding token proxy answers only for its own TLS server name`,
        reason: "NotFound",
        code: 404,
      },
    });
  }
}
