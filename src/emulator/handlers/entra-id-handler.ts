// The Entra ID (Azure AD) endpoints MSAL uses for confidential clients:
// the v2.0 token endpoint (client_credentials with client_secret or a
// jwt-bearer client assertion), OpenID configuration, instance discovery and
// the signing keys. Tokens are issued for registered app registrations only.
// The identity-binding token proxy hands its requests here too, marked as
// such: then only a client assertion of an identity binding is accepted.
import type { TokenIssuer } from "../auth/access-tokens.ts";
import { validateClientAssertion, type AssertionPath } from "../auth/client-assertion.ts";
import {
  InvalidClientError,
  InvalidRequestError,
  InvalidScopeError,
  TemporarilyUnavailableError,
  UnauthorizedClientError,
  UnsupportedGrantTypeError,
  EntraIdError,
} from "../errors/entra-id-errors.ts";
import type { FaultInjector } from "../fault-injector.ts";
import type { RequestCounters } from "../request-counters.ts";
import type { Exchange } from "../server/exchange.ts";
import { applyFaults } from "../server/fault-stage.ts";
import type { ApplicationRecord, DirectoryStore } from "../store/directory-store.ts";

export const JWT_BEARER_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const TENANT = "([0-9A-Za-z.-]+)";

export interface EntraIdDeps {
  directory: DirectoryStore;
  tokens: TokenIssuer;
  counters: RequestCounters;
  faults: FaultInjector;
  /** Tenants that exist: those of vaults, apps and identities. */
  tenants(): Set<string>;
}

export class EntraIdHandler {
  readonly #deps: EntraIdDeps;

  constructor(deps: EntraIdDeps) {
    this.#deps = deps;
  }

  /** Handles the request if it is an Entra ID endpoint; returns false otherwise. */
  async handle(exchange: Exchange, via: AssertionPath = "entraId"): Promise<boolean> {
    const path = exchange.path;
    let m: RegExpExecArray | null;
    if (exchange.method === "POST" && (m = new RegExp(`^/${TENANT}/oauth2/(v2\\.0/)?token/?$`).exec(path))) {
      exchange.operation = "token";
      await this.#token(exchange, m[1]!, m[2] !== undefined, via);
      return true;
    }
    if (exchange.method !== "GET") return false;
    if ((m = new RegExp(`^/${TENANT}/(v2\\.0/)?\\.well-known/openid-configuration/?$`).exec(path))) {
      exchange.operation = "openidConfiguration";
      this.#deps.counters.increment("openidConfiguration");
      exchange.send({ status: 200, body: this.#openidConfiguration(exchange, m[1]!, m[2] !== undefined) });
      return true;
    }
    if ((m = new RegExp(`^/${TENANT}/discovery/instance/?$`).exec(path))) {
      exchange.operation = "instanceDiscovery";
      this.#deps.counters.increment("instanceDiscovery");
      exchange.send({ status: 200, body: this.#instanceDiscovery(exchange) });
      return true;
    }
    if (new RegExp(`^/${TENANT}/discovery/(v2\\.0/)?keys/?$`).test(path)) {
      exchange.operation = "jwks";
      exchange.send({ status: 200, body: this.#deps.tokens.jwks() });
      return true;
    }
    return false;
  }

  async #token(exchange: Exchange, tenant: string, v2: boolean, via: AssertionPath): Promise<void> {
    const { counters, faults, tokens } = this.#deps;
    const form = new URLSearchParams((await exchange.body()).toString("utf8"));
    const correlationId = form.get("client-request-id") ?? exchange.query.get("client-request-id") ?? exchange.header("client-request-id");
    try {
      const ended = await applyFaults(exchange, faults, counters, (failure) => new TemporarilyUnavailableError(failure.status, failure.retryAfterSeconds));
      if (ended) return;
      const { app, resource } = this.#authenticateClient(exchange, form, tenant, v2, via);
      counters.increment("token", app.clientId);
      if (via === "identityBinding") counters.increment("identityBindingToken", app.clientId);
      const issued = tokens.issue(app, resource);
      const body: Record<string, unknown> = {
        token_type: "Bearer",
        expires_in: issued.expiresIn,
        ext_expires_in: issued.expiresIn,
        access_token: issued.accessToken,
      };
      if (!v2) Object.assign(body, { expires_on: String(issued.expiresOn), not_before: String(issued.notBefore), resource });
      exchange.send({ status: 200, body });
    } catch (err) {
      if (err instanceof EntraIdError) {
        counters.increment("tokenRejected", form.get("client_id") ?? undefined);
        if (correlationId) err.correlationId = correlationId;
      }
      throw err;
    }
  }

  #authenticateClient(exchange: Exchange, form: URLSearchParams, tenant: string, v2: boolean, via: AssertionPath): { app: ApplicationRecord; resource: string } {
    const { directory } = this.#deps;
    if (!this.#deps.tenants().has(tenant.toLowerCase())) {
      throw new InvalidRequestError(
        90002,
        `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
      );
    }
    const grantType = form.get("grant_type");
    if (!grantType) throw new InvalidRequestError(900144, "The request body must contain the following parameter: 'grant_type'.");
    if (grantType !== "client_credentials") throw new UnsupportedGrantTypeError(70003, `The app requested an unsupported grant type '${grantType}'.`);

    let clientId = form.get("client_id");
    let clientSecret = form.get("client_secret");
    const basic = /^Basic\s+(\S+)$/i.exec(exchange.header("authorization") ?? "");
    if (basic) {
      const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      clientId ??= decodeURIComponent(decoded.slice(0, colon));
      clientSecret ??= decodeURIComponent(decoded.slice(colon + 1));
    }
    if (!clientId) throw new InvalidRequestError(900144, "The request body must contain the following parameter: 'client_id'.");

    let resource: string;
    if (v2) {
      const scope = form.get("scope");
      if (!scope) throw new InvalidRequestError(900144, "The request body must contain the following parameter: 'scope'.");
      const defaultScope = scope.split(/\s+/).find((s) => s.endsWith("/.default"));
      if (!defaultScope) {
        throw new InvalidScopeError(
          1002012,
          `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
        );
      }
      resource = defaultScope.slice(0, -"/.default".length);
    } else {
      const v1Resource = form.get("resource");
      if (!v1Resource) throw new InvalidRequestError(900144, "The request body must contain the following parameter: 'resource'.");
      resource = v1Resource;
    }

    const app = directory.getApplication(tenant, clientId);
    if (!app) {
      throw new UnauthorizedClientError(
        700016,
        `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
      );
    }

    const assertion = form.get("client_assertion");
    if (via === "identityBinding" && !assertion) {
      throw new InvalidRequestError(900144, "The identity-binding token proxy needs a 'client_assertion': the pod's service-account token for api://AKSIdentityBinding.");
    }
    if (clientSecret !== null && clientSecret !== undefined) {
      if (!app.clientSecrets.includes(clientSecret)) {
        throw new InvalidClientError(
          7000215,
          `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app.clientId}'.`,
        );
      }
    } else if (assertion) {
      const assertionType = form.get("client_assertion_type");
      if (assertionType !== JWT_BEARER_ASSERTION_TYPE) {
        throw new InvalidRequestError(
          50027,
          `Invalid client_assertion_type '${assertionType ?? ""}': only ${JWT_BEARER_ASSERTION_TYPE} is supported.`,
        );
      }
      validateClientAssertion(assertion, app, directory, via);
    } else {
      throw new InvalidClientError(7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }
    return { app, resource };
  }

  #openidConfiguration(exchange: Exchange, tenant: string, v2: boolean): Record<string, unknown> {
    const base = `${exchange.baseUrl}/${tenant}`;
    const suffix = v2 ? "/v2.0" : "";
    return {
      token_endpoint: `${base}/oauth2${suffix}/token`,
      token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt", "client_secret_basic"],
      jwks_uri: `${base}/discovery${suffix}/keys`,
      response_modes_supported: ["query", "fragment", "form_post"],
      subject_types_supported: ["pairwise"],
      id_token_signing_alg_values_supported: ["RS256"],
      response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
      scopes_supported: ["openid", "profile", "email", "offline_access"],
      issuer: v2 ? `${base}/v2.0` : `https://sts.windows.net/${tenant}/`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${exchange.baseUrl}/oidc/userinfo`,
      authorization_endpoint: `${base}/oauth2${suffix}/authorize`,
      device_authorization_endpoint: `${base}/oauth2${suffix}/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2${suffix}/logout`,
      claims_supported: ["sub", "iss", "aud", "exp", "iat", "tid", "oid"],
      kerberos_endpoint: `${base}/kerberos`,
      tenant_region_scope: null,
      cloud_instance_name: "microsoftonline.com",
      cloud_graph_host_name: "graph.windows.net",
      msgraph_host: "graph.microsoft.com",
      rbac_url: "https://pas.windows.net",
    };
  }

  #instanceDiscovery(exchange: Exchange): Record<string, unknown> {
    // The authority asking may be on another host:port than this request
    // (MSAL always asks the public-cloud host); point it back to itself.
    let origin = exchange.baseUrl;
    let host = exchange.host;
    let tenant = "common";
    const authorizationEndpoint = exchange.query.get("authorization_endpoint");
    if (authorizationEndpoint) {
      try {
        const url = new URL(authorizationEndpoint);
        origin = url.origin;
        host = url.host;
        tenant = url.pathname.split("/").filter(Boolean)[0] ?? "common";
      } catch {
        // keep this host
      }
    }
    return {
      tenant_discovery_endpoint: `${origin}/${tenant}/v2.0/.well-known/openid-configuration`,
      "api-version": "1.1",
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    };
  }
}
