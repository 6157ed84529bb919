// The Grafana dashboard queries only metrics the programs really export, and
// covers the driver's and the provider's main series.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DriverMetrics } from "../../src/driver/metrics.ts";
import { ProviderMetrics } from "../../src/provider/metrics.ts";
import { CHART_DIR, REPO_ROOT } from "../../scripts/generate-deploy.ts";
import { allPanels, loadDashboard } from "./dashboard.ts";

const dashboard = loadDashboard();

/** Metric names in the Prometheus exposition: counters as named, histograms with their three series. */
async function exported(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const registry of [new DriverMetrics({ defaultMetrics: false }).registry, new ProviderMetrics().registry]) {
    for (const m of await registry.getMetricsAsJSON()) {
      // prom-client types say enum, but the JSON carries "histogram" etc.
      if (String(m.type) === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(m.name + s);
      else names.add(m.name);
    }
  }
  return names;
}

const PROMQL_WORDS = new Set(["sum", "by", "rate", "increase", "histogram_quantile", "or", "vector", "le", "clamp_min", "error", "operation"]);

function metricNames(expr: string): string[] {
  const withoutLabels = expr.replace(/\{[^}]*\}/g, "").replace(/\[[^\]]*\]/g, "").replace(/by \([^)]*\)/g, "");
  return [...withoutLabels.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]).filter((w) => !PROMQL_WORDS.has(w) && !/^\d/.test(w) && w !== "e");
}

describe("Grafana dashboard", () => {
  const exprs = allPanels(dashboard).flatMap((p) => (p.targets ?? []).map((t) => t.expr));

  it("queries only metrics the driver and the provider export", async () => {
    const names = await exported();
    const used = new Set(exprs.flatMap(metricNames));
    expect(used.size).toBeGreaterThan(10);
    for (const name of used) expect(names, `dashboard queries ${name}, which nothing exports`).toContain(name);
  });

  it("covers every driver and provider metric named in the chart's documentation", () => {
    const joined = exprs.join("\n");
    for (const m of [
      "node_publish_total",
      "node_publish_error_total",
      "node_unpublish_total",
      "node_unpublish_error_total",
      "rotation_reconcile_total",
      "rotation_reconcile_error_total",
      "rotation_reconcile_duration_sec_bucket",
      "sync_k8s_secret_total",
      "k8s_secret_duration_sec_bucket",
      "keyvault_request_bucket",
      "keyvault_request_count",
      "grpc_request_count",
      "keyvault_request_duration_seconds_bucket",
      "grpc_request_duration_seconds_bucket",
    ]) {
      expect(joined).toContain(m);
    }
  });

  it("uses a data source variable in every panel and a stable uid", () => {
    expect(dashboard.uid).toBe("secrets-store-csi-azure");
    expect(dashboard.templating.list).toContainEqual(expect.objectContaining({ name: "datasource", type: "datasource" }));
    for (const p of allPanels(dashboard).filter((x) => x.type !== "row")) expect(p.datasource?.uid, p.title).toBe("${datasource}");
  });

  it("is the same file in deploy/ and in the chart", () => {
    expect(readFileSync(join(REPO_ROOT, "deploy", "grafana-dashboard.json"), "utf8")).toBe(
      readFileSync(join(CHART_DIR, "dashboards", "secrets-store-csi-driver-azure.json"), "utf8"),
    );
  });
});
