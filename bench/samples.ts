// What the benchmark measures with: latency samples and their percentiles,
// a process's resident memory, and timing of one async step.
import { readFileSync } from "node:fs";

/** The q-quantile (0..1) of the samples, nearest rank. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) throw new Error("no samples");
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export const median = (samples: readonly number[]): number => quantile(samples, 0.5);

/** Resident set size of one process (VmRSS), in MiB. */
export function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith("VmRSS:"));
  if (!line) throw new Error(`process ${pid} has no VmRSS (exited?)`);
  return Number(line.split(/\s+/)[1]) / 1024;
}

/** Milliseconds `step` took. */
export async function timed(step: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await step();
  return performance.now() - start;
}

/** Runs `count` tasks with at most `concurrency` in flight; returns each task's duration in ms. */
export async function runConcurrently(count: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<number[]> {
  const durations: number[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) durations.push(await timed(() => task(i)));
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return durations;
}

/** Runs tasks in waves of `size` that start together (kubelet starting a batch of pods); returns each call's duration. */
export async function runInWaves(indexes: readonly number[], size: number, task: (i: number) => Promise<unknown>): Promise<number[]> {
  const durations: number[] = [];
  for (let at = 0; at < indexes.length; at += size) {
    durations.push(...(await Promise.all(indexes.slice(at, at + size).map((i) => timed(() => task(i))))));
  }
  return durations;
}
