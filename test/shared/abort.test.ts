import { describe, expect, it } from "vitest";
import { scopedSignal } from "../../src/shared/abort.ts";

describe("scopedSignal", () => {
  it("aborts with a parent's reason", () => {
    const parent = new AbortController();
    const { signal } = scopedSignal([parent.signal, undefined]);
    parent.abort(new Error("cancelled by the caller"));
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).message).toBe("cancelled by the caller");
  });

  it("is aborted at once when a parent already is", () => {
    const parent = new AbortController();
    parent.abort(new Error("already"));
    expect(scopedSignal([new AbortController().signal, parent.signal]).signal.aborted).toBe(true);
  });

  it("times out with a TimeoutError", async () => {
    const { signal } = scopedSignal([], 5);
    await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
    expect((signal.reason as DOMException).name).toBe("TimeoutError");
  });

  it("after dispose, neither the timer nor a parent aborts it, and the parent holds no listener", async () => {
    const parent = new AbortController();
    let listeners = 0;
    const add = parent.signal.addEventListener.bind(parent.signal);
    const remove = parent.signal.removeEventListener.bind(parent.signal);
    parent.signal.addEventListener = ((...args: Parameters<typeof add>) => {
      listeners++;
      add(...args);
    }) as typeof add;
    parent.signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
      listeners--;
      remove(...args);
    }) as typeof remove;
    const scoped = scopedSignal([parent.signal], 5);
    expect(listeners).toBe(1);
    scoped.dispose();
    expect(listeners).toBe(0);
    await new Promise((r) => setTimeout(r, 20));
    parent.abort();
    expect(scoped.signal.aborted).toBe(false);
  });
});
