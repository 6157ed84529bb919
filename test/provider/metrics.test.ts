// Unit test of the provider's metric labels that carry names a
// SecretProviderClass chooses: each such metric keeps at most
// --max-metric-series series with real names, later ones count as _other.
import { describe, expect, it } from "vitest";
import { OTHER_NAME, ProviderMetrics } from "../../src/provider/metrics.ts";

const seriesOf = (text: string, name: string) => text.split("\n").filter((l) => l.startsWith(`${name}{`));

describe("provider metrics with tenant-chosen names", () => {
  it("keep the first series with their names and count the rest as _other", async () => {
    const metrics = new ProviderMetrics({ maxSeries: 5 });
    for (let i = 0; i < 1000; i++) {
      metrics.observeKeyVault("secret", `object-${i}`, "get", 0.01, "SecretNotFound");
      metrics.countHttp(`vault-${i}`, "get_secret", 404);
      metrics.countBudgetWait(`vault-${i}`, 5);
    }
    // a series kept once stays kept
    metrics.observeKeyVault("secret", "object-0", "get", 0.01, "SecretNotFound");
    const text = await metrics.registry.metrics();
    const counts = seriesOf(text, "keyvault_request_count");
    expect(counts).toHaveLength(6);
    expect(counts).toContain(
      'keyvault_request_count{service_name="csi-secrets-store-provider-azure",provider="azure",os_type="linux",object_type="secret",object_name="object-0",error="SecretNotFound"} 2',
    );
    expect(counts).toContain(
      `keyvault_request_count{service_name="csi-secrets-store-provider-azure",provider="azure",os_type="linux",object_type="secret",object_name="${OTHER_NAME}",error="SecretNotFound"} 995`,
    );
    expect(seriesOf(text, "keyvault_http_requests_total")).toEqual([
      ...[0, 1, 2, 3, 4].map((i) => `keyvault_http_requests_total{vault="vault-${i}",operation="get_secret",status_code="404"} 1`),
      `keyvault_http_requests_total{vault="${OTHER_NAME}",operation="get_secret",status_code="404"} 995`,
    ]);
    expect(seriesOf(text, "keyvault_budget_waits_total")).toHaveLength(6);
    expect(text).toContain(`keyvault_budget_waits_total{vault="${OTHER_NAME}"} 995`);
  });

  it("a known name with a new error or status is a new series, and folds once the budget is spent", async () => {
    const metrics = new ProviderMetrics({ maxSeries: 2 });
    metrics.observeKeyVault("secret", "db", "get", 0.01, "");
    metrics.observeKeyVault("secret", "db", "get", 0.01, "Throttled");
    metrics.observeKeyVault("secret", "db", "get", 0.01, "Forbidden");
    metrics.countHttp("kv", "get_secret", 200);
    metrics.countHttp("kv", "get_secret", 999);
    metrics.countHttp("kv", "get_secret", undefined);
    const text = await metrics.registry.metrics();
    expect(seriesOf(text, "keyvault_request_count").map((l) => /object_name="([^"]*)",error="([^"]*)"/.exec(l)!.slice(1).join(" "))).toEqual([
      "db ",
      "db Throttled",
      `${OTHER_NAME} Forbidden`,
    ]);
    // a status outside HTTP's range is "none", like no answer
    expect(seriesOf(text, "keyvault_http_requests_total")).toEqual([
      'keyvault_http_requests_total{vault="kv",operation="get_secret",status_code="200"} 1',
      'keyvault_http_requests_total{vault="kv",operation="get_secret",status_code="none"} 2',
    ]);
  });
});
