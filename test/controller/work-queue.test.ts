// The work queue: a key once in the queue, never run twice at the same time,
// run again when added during its run, retried after a delay; freshness
// requests merge to the most demanding one.
import { describe, expect, it } from "vitest";
import { WorkQueue } from "../../src/controller/reconcile/work-queue.ts";

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("WorkQueue", () => {
  it("merges repeated adds of a queued key, keeping the latest freshness asked for", async () => {
    const runs: [string, number][] = [];
    const queue = new WorkQueue({ concurrency: 1, process: async (key, fresh) => (runs.push([key, fresh]), {}) });
    queue.add("a", 5);
    queue.add("b");
    queue.add("a", 9);
    queue.add("a", 1);
    queue.start();
    await queue.idle();
    expect(runs).toEqual([
      ["a", 9],
      ["b", 0],
    ]);
  });

  it("never runs a key twice at once; an add during its run makes one more run afterwards", async () => {
    const gate = deferred();
    let running = 0;
    let maxRunning = 0;
    const runs: number[] = [];
    const queue = new WorkQueue({
      concurrency: 4,
      process: async (_key, fresh) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        runs.push(fresh);
        if (runs.length === 1) await gate.promise;
        running--;
        return {};
      },
    });
    queue.start();
    queue.add("a", 1);
    await new Promise((r) => setImmediate(r));
    queue.add("a", 2);
    queue.add("a", 3);
    expect(queue.depth).toBe(0);
    gate.resolve();
    await queue.idle();
    await queue.idle();
    expect(runs).toEqual([1, 3]);
    expect(maxRunning).toBe(1);
  });

  it("runs distinct keys side by side up to the concurrency", async () => {
    const gate = deferred();
    let running = 0;
    let maxRunning = 0;
    const queue = new WorkQueue({
      concurrency: 3,
      process: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await gate.promise;
        running--;
        return {};
      },
    });
    for (const k of ["a", "b", "c", "d", "e"]) queue.add(k);
    queue.start();
    await new Promise((r) => setImmediate(r));
    expect(queue.runningCount).toBe(3);
    expect(queue.depth).toBe(2);
    gate.resolve();
    await queue.idle();
    expect(maxRunning).toBe(3);
  });

  it("retries a key after the delay its run asks for, and forgets a removed key", async () => {
    const runs: string[] = [];
    const queue = new WorkQueue({
      concurrency: 1,
      process: async (key) => {
        runs.push(key);
        return runs.filter((k) => k === key).length < 3 ? { retryAfterMs: 5 } : {};
      },
    });
    queue.start();
    queue.add("a");
    queue.add("gone");
    await queue.idle();
    queue.remove("gone");
    while (runs.filter((k) => k === "a").length < 3) await new Promise((r) => setTimeout(r, 5));
    expect(runs.filter((k) => k === "gone")).toEqual(["gone"]);
    expect(queue.delayedCount).toBe(0);
  });

  it("takes no work after stop and waits for the runs in progress", async () => {
    const gate = deferred();
    let finished = false;
    const queue = new WorkQueue({
      concurrency: 1,
      process: async () => {
        await gate.promise;
        finished = true;
        return {};
      },
    });
    queue.start();
    queue.add("a");
    await new Promise((r) => setImmediate(r));
    const stopped = queue.stop();
    queue.add("b");
    gate.resolve();
    await stopped;
    expect(finished).toBe(true);
    expect(queue.depth).toBe(0);
  });

  it("tells a waiting caller the outcome of the run that served its request, not of one already under way", async () => {
    const gate = deferred();
    const outcomes = [{ retryAfterMs: 60_000 }, {}];
    const runs: number[] = [];
    const queue = new WorkQueue({
      concurrency: 1,
      process: async (_key, fresh) => {
        runs.push(fresh);
        if (runs.length === 1) await gate.promise;
        return outcomes.shift()!;
      },
    });
    queue.start();
    const first = queue.addAndWait("a", 1);
    await new Promise((r) => setImmediate(r));
    // Asked while the first run is under way: served by the next one.
    const second = queue.addAndWait("a", 2);
    gate.resolve();
    expect(await first).toBe(false);
    expect(await second).toBe(true);
    expect(runs).toEqual([1, 2]);
    await queue.stop();
    expect(await queue.addAndWait("c")).toBe(false);
    // A key that goes away before its run answers its waiters.
    const idle = new WorkQueue({ concurrency: 1, process: () => Promise.resolve({}) });
    const gone = idle.addAndWait("b");
    idle.remove("b");
    expect(await gone).toBe(true);
  });
});
