// The path of a request to a vault host: vault lookup, the 401 challenge for
// requests without a bearer token (always first, before any body is read),
// the api-version check, injected faults, token verification, counting, RBAC,
// then the operation.
import { authenticate, authorize, bearerToken, missingTokenError } from "../auth/vault-access.ts";
import type { TokenIssuer } from "../auth/access-tokens.ts";
import type { CloudEndpoints } from "../cloud.ts";
import {
  injectedServerError,
  MethodNotAllowedError,
  OperationNotFoundError,
  ThrottledError,
  VaultNotFoundError,
} from "../errors/key-vault-errors.ts";
import type { FaultInjector } from "../fault-injector.ts";
import { checkApiVersion, type VaultScope } from "../handlers/wire.ts";
import type { RequestCounters } from "../request-counters.ts";
import type { DirectoryStore } from "../store/directory-store.ts";
import type { KeyVaultStore } from "../store/key-vault-store.ts";
import type { Exchange } from "./exchange.ts";
import { applyFaults } from "./fault-stage.ts";
import type { Router } from "./router.ts";

export interface VaultPipelineDeps {
  store: KeyVaultStore;
  directory: DirectoryStore;
  tokens: TokenIssuer;
  counters: RequestCounters;
  faults: FaultInjector;
  router: Router<VaultScope>;
}

export class VaultPipeline {
  readonly #deps: VaultPipelineDeps;

  constructor(deps: VaultPipelineDeps) {
    this.#deps = deps;
  }

  async handle(exchange: Exchange, vaultName: string, cloud: CloudEndpoints): Promise<void> {
    const { store, directory, tokens, counters, faults, router } = this.#deps;
    const vault = store.getVault(vaultName);
    if (!vault) {
      exchange.operation = "unknownVault";
      counters.increment("unknownVault", vaultName);
      exchange.sendError(new VaultNotFoundError(vaultName, exchange.hostname));
      return;
    }
    exchange.vault = vault.name;
    const match = router.match(exchange.method, exchange.path);
    if (match.kind === "found") exchange.operation = match.route.operation;

    const token = bearerToken(exchange.header("authorization"));
    if (!token) {
      counters.increment("challenge", vault.name);
      exchange.sendError(missingTokenError(cloud, vault));
      return;
    }
    checkApiVersion(exchange);

    const ended = await applyFaults(exchange, faults, counters, (failure) =>
      failure.kind === "throttle" && failure.status === 429
        ? new ThrottledError(failure.retryAfterSeconds ?? 1)
        : withRetryAfter(injectedServerError(failure.status), failure.retryAfterSeconds),
    );
    if (ended) return;

    let caller;
    try {
      caller = authenticate(token, cloud, vault, tokens, directory);
    } catch (err) {
      counters.increment("unauthorized", vault.name);
      throw err;
    }

    if (match.kind === "notFound") throw new OperationNotFoundError(`The operation ${exchange.method} ${exchange.path} is not supported by the Key Vault emulator.`);
    if (match.kind === "methodNotAllowed") {
      throw new MethodNotAllowedError(`The method ${exchange.method} is not allowed on ${exchange.path}; allowed: ${match.allowed.join(", ")}.`);
    }

    counters.increment(match.route.operation, vault.name);
    const resourcePath = exchange.path.replace(/\/+$/, "");
    try {
      authorize(caller, vault, match.route.dataAction, directory, resourcePath);
    } catch (err) {
      counters.increment("forbidden", vault.name);
      throw err;
    }
    const result = await match.route.handle(exchange, match.params, { vault });
    exchange.send(result);
  }
}

function withRetryAfter<E extends { headers: Record<string, string> }>(error: E, seconds: number | undefined): E {
  if (seconds !== undefined) error.headers["retry-after"] = String(seconds);
  return error;
}
