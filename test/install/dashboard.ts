// The Grafana dashboard as the tests read it: every panel, those inside rows
// included, with its queries.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CHART_DIR } from "../../scripts/generate-deploy.ts";

export interface DashboardPanel {
  type: string;
  title: string;
  targets?: { expr: string; refId?: string }[];
  datasource?: { uid: string };
  /** A collapsed row holds its panels here. */
  panels?: DashboardPanel[];
}

export interface Dashboard {
  uid: string;
  panels: DashboardPanel[];
  templating: { list: { name: string; type: string }[] };
}

export const DASHBOARD_PATH = join(CHART_DIR, "dashboards", "secrets-store-csi-driver-azure.json");

export function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD_PATH, "utf8")) as Dashboard;
}

/** Every panel, rows and the panels inside collapsed rows included, in the order Grafana shows them. */
export function allPanels(dashboard: Dashboard): DashboardPanel[] {
  const walk = (panels: DashboardPanel[]): DashboardPanel[] => panels.flatMap((p) => [p, ...walk(p.panels ?? [])]);
  return walk(dashboard.panels);
}
