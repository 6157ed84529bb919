// Rotation groups: SecretSyncs of one (namespace, class, service account)
// tick together; the class index finds every SecretSync of a class.
import { afterEach, describe, expect, it, vi } from "vitest";
import { RotationSchedule } from "../../src/controller/reconcile/rotation.ts";

afterEach(() => {
  vi.useRealTimers();
});

describe("RotationSchedule", () => {
  it("ticks each group once per interval plus jitter, with all its members, never earlier", () => {
    vi.useFakeTimers();
    const ticks: string[][] = [];
    const schedule = new RotationSchedule({ intervalMs: 1000, jitter: 0.1, random: () => 1, onTick: (members) => ticks.push([...members].sort()) });
    schedule.track("ns/a", { namespace: "ns", className: "kv", serviceAccount: "app" });
    schedule.track("ns/b", { namespace: "ns", className: "kv", serviceAccount: "app" });
    schedule.track("ns/c", { namespace: "ns", className: "kv", serviceAccount: "other" });
    expect(schedule.groupCount).toBe(2);
    // First tick of a group: between half and 1.1 intervals (random() = 1: 1.1).
    vi.advanceTimersByTime(1099);
    expect(ticks).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ticks).toEqual([["ns/a", "ns/b"], ["ns/c"]]);
    vi.advanceTimersByTime(1100);
    expect(ticks).toHaveLength(4);
    schedule.stop();
  });

  it("moves a SecretSync whose class or service account changed, and drops empty groups", () => {
    const schedule = new RotationSchedule({ intervalMs: 1000, jitter: 0.1, onTick: () => undefined });
    schedule.track("ns/a", { namespace: "ns", className: "kv", serviceAccount: "app" });
    schedule.track("ns/a", { namespace: "ns", className: "kv2", serviceAccount: "app" });
    expect(schedule.groupCount).toBe(1);
    expect(schedule.byClass("ns", "kv")).toEqual([]);
    expect(schedule.byClass("ns", "kv2")).toEqual(["ns/a"]);
    expect(schedule.byClass("other", "kv2")).toEqual([]);
    schedule.untrack("ns/a");
    expect(schedule.groupCount).toBe(0);
    schedule.stop();
  });

  it("keeps no timers with rotation off", () => {
    vi.useFakeTimers();
    let ticks = 0;
    const schedule = new RotationSchedule({ intervalMs: 0, jitter: 0.1, onTick: () => ticks++ });
    schedule.track("ns/a", { namespace: "ns", className: "kv", serviceAccount: "app" });
    expect(vi.getTimerCount()).toBe(0);
    expect(ticks).toBe(0);
    expect(schedule.byClass("ns", "kv")).toEqual(["ns/a"]);
  });
});
