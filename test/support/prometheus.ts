// A real Prometheus server for tests: Debian's prometheus package, on a port of
// a loopback address of its own, with its own configuration and data directory,
// scraping the targets a test names. Queried over its HTTP API.
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { privateLoopback } from "./ports.ts";

export const PROMETHEUS_BINARY = "/usr/bin/prometheus";

/** Fails loudly, naming the package, when Prometheus is not installed. */
export function requirePrometheus(): void {
  try {
    accessSync(PROMETHEUS_BINARY, constants.X_OK);
  } catch {
    throw new Error(
      `this test runs a real Prometheus and needs ${PROMETHEUS_BINARY} from Debian's prometheus package: ` +
        `apt-get install -y --no-install-recommends prometheus (scripts/setup-test-machine.sh, which npm test runs first, does this)`,
    );
  }
}

export interface ScrapeTarget {
  job: string;
  /** host:port */
  target: string;
  metricsPath: string;
}

/** One series of an instant vector. */
export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export type QueryAnswer = { ok: true; series: Sample[] } | { ok: false; error: string };

export interface Prometheus {
  url: string;
  /** Evaluates a PromQL expression at the current time (GET /api/v1/query). */
  query(expr: string): Promise<QueryAnswer>;
  /** Waits until every job has a scrape that started at or after `sinceMs` and succeeded (up == 1). */
  waitForScrapesAfter(sinceMs: number, timeoutMs?: number): Promise<void>;
  output(): string;
  stop(): Promise<void>;
}

/** A port nobody listens on, on an address of our own (so it stays free until Prometheus takes it). */
async function freePortOn(address: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, address, resolve);
  });
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function startPrometheus(dir: string, targets: ScrapeTarget[], scrapeIntervalSeconds: number): Promise<Prometheus> {
  requirePrometheus();
  await mkdir(join(dir, "data"), { recursive: true });
  const interval = `${scrapeIntervalSeconds}s`;
  // JSON is YAML, which Prometheus reads.
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    scrape_configs: targets.map((t) => ({ job_name: t.job, metrics_path: t.metricsPath, static_configs: [{ targets: [t.target] }] })),
  };
  await writeFile(join(dir, "prometheus.yml"), JSON.stringify(config, null, 2));
  const address = privateLoopback();
  const listen = `${address}:${await freePortOn(address)}`;
  const child = spawn(
    PROMETHEUS_BINARY,
    [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=${listen}`, "--log.level=warn"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://${listen}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(kill);
    }
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode} before it was ready:\n${out}`);
    const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus was not ready on ${url} within 60 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const query = async (expr: string): Promise<QueryAnswer> => {
    const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: expr })}`);
    const body = (await res.json()) as { status: string; error?: string; errorType?: string; data?: { resultType: string; result: unknown } };
    if (body.status !== "success") return { ok: false, error: `${body.errorType ?? `HTTP ${res.status}`}: ${body.error ?? ""}` };
    if (body.data?.resultType !== "vector") return { ok: false, error: `a ${body.data?.resultType} instead of an instant vector` };
    return { ok: true, series: body.data.result as Sample[] };
  };

  return {
    url,
    query,
    output: () => out,
    stop,
    async waitForScrapesAfter(sinceMs, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      const jobs = targets.map((t) => t.job);
      for (;;) {
        // Every sample of a scrape carries the time the scrape started; up is 1 when it succeeded.
        const answer = await query(`timestamp(up) >= ${sinceMs / 1000} and on (job, instance) up == 1`);
        const scraped = new Set(answer.ok ? answer.series.map((s) => s.metric.job) : []);
        if (jobs.every((j) => scraped.has(j))) return;
        if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${out}`);
        if (Date.now() > until) {
          const up = await query("up");
          throw new Error(`prometheus did not scrape ${jobs.filter((j) => !scraped.has(j)).join(", ")} successfully within ${timeoutMs} ms; up: ${JSON.stringify(up)}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    },
  };
}
