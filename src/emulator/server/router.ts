// Path routing for Key Vault operations: patterns like
// "/secrets/{name}/versions" with literal segments and {params}. A trailing
// slash on the request path is ignored ("/secrets/s1/" = latest version).
import type { Exchange, HttpResult } from "./exchange.ts";

export interface Route<S> {
  method: string;
  pattern: string;
  /** Operation name, used for counters, faults and metrics (e.g. "getSecret"). */
  operation: string;
  /** RBAC data action the caller needs, e.g. Microsoft.KeyVault/vaults/secrets/getSecret/action. */
  dataAction: string;
  handle(exchange: Exchange, params: Record<string, string>, scope: S): Promise<HttpResult> | HttpResult;
}

export type RouteMatch<S> =
  | { kind: "found"; route: Route<S>; params: Record<string, string> }
  | { kind: "methodNotAllowed"; allowed: string[] }
  | { kind: "notFound" };

interface CompiledRoute<S> {
  route: Route<S>;
  segments: string[];
}

export class Router<S> {
  readonly #routes: CompiledRoute<S>[];

  constructor(routes: readonly Route<S>[]) {
    this.#routes = routes.map((route) => ({ route, segments: split(route.pattern) }));
  }

  match(method: string, path: string): RouteMatch<S> {
    const segments = split(path);
    const allowed: string[] = [];
    for (const { route, segments: pattern } of this.#routes) {
      const params = matchSegments(pattern, segments);
      if (!params) continue;
      if (route.method === method) return { kind: "found", route, params };
      allowed.push(route.method);
    }
    return allowed.length > 0 ? { kind: "methodNotAllowed", allowed } : { kind: "notFound" };
  }
}

function split(path: string): string[] {
  const trimmed = path.replace(/^\/+/, "").replace(/\/+$/, "");
  return trimmed === "" ? [] : trimmed.split("/");
}

function matchSegments(pattern: readonly string[], segments: readonly string[]): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    let s: string;
    try {
      s = decodeURIComponent(segments[i]!);
    } catch {
      return undefined;
    }
    if (p.startsWith("{") && p.endsWith("}")) params[p.slice(1, -1)] = s;
    else if (p.toLowerCase() !== s.toLowerCase()) return undefined;
  }
  return params;
}
