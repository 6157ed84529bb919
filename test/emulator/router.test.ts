// Path routing for Key Vault operations (pure unit test of the router).
import { describe, expect, it } from "vitest";
import { Router, type Route } from "../../src/emulator/server/router.ts";

const route = (method: string, pattern: string, operation: string): Route<unknown> => ({
  method,
  pattern,
  operation,
  dataAction: "x",
  handle: () => ({ status: 200 }),
});

const router = new Router([
  route("GET", "/secrets/{name}/versions", "listSecretVersions"),
  route("GET", "/secrets/{name}", "getSecret"),
  route("GET", "/secrets/{name}/{version}", "getSecret"),
  route("PATCH", "/secrets/{name}/{version}", "updateSecret"),
]);

function operation(method: string, path: string): string {
  const match = router.match(method, path);
  return match.kind === "found" ? `${match.route.operation} ${JSON.stringify(match.params)}` : match.kind;
}

describe("Router", () => {
  it("treats the latest-version path with and without trailing slash alike", () => {
    expect(operation("GET", "/secrets/s1/")).toBe('getSecret {"name":"s1"}');
    expect(operation("GET", "/secrets/s1")).toBe('getSecret {"name":"s1"}');
    expect(operation("GET", "/secrets/s1/0123456789abcdef0123456789abcdef")).toBe('getSecret {"name":"s1","version":"0123456789abcdef0123456789abcdef"}');
  });

  it("prefers literal segments and reports wrong methods and unknown paths", () => {
    expect(operation("GET", "/secrets/s1/versions")).toBe('listSecretVersions {"name":"s1"}');
    expect(operation("DELETE", "/secrets/s1/abc")).toBe("methodNotAllowed");
    expect(operation("GET", "/nothing/here")).toBe("notFound");
    expect(operation("GET", "/secrets/a%2Fb")).toBe('getSecret {"name":"a/b"}');
  });
});
