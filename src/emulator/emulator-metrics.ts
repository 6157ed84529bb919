// Prometheus metrics of the emulator (GET /_emulator/metrics), in a registry
// of its own so they never mix with a host program's metrics.
import { Counter, Histogram, Registry } from "../shared/http/prometheus.ts";

export class EmulatorMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: "keyvault_emulator_requests_total",
    help: "Requests handled by the Key Vault emulator, by operation, vault and HTTP status.",
    labelNames: ["operation", "vault", "status"] as const,
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: "keyvault_emulator_request_duration_seconds",
    help: "Time to answer a request, by operation.",
    labelNames: ["operation"] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });

  observe(operation: string, vault: string | undefined, status: number, seconds: number): void {
    this.requests.inc({ operation, vault: vault ?? "", status: String(status) });
    this.duration.observe({ operation }, seconds);
  }
}
