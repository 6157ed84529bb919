// The gate token requests pass on their way to Entra ID: at most so many on
// the wire, and tenants take turns for the rest, so one tenant's burst keeps
// another's request waiting for one answer, not for the burst.
import { describe, expect, it } from "vitest";
import { TokenRequestGate } from "../../../src/provider/auth/token-gate.ts";

/** A request that stays on the wire until the test answers it. */
function held(log: string[], name: string) {
  let answer!: () => void;
  const done = new Promise<void>((r) => (answer = r));
  return {
    request: async () => {
      log.push(`sent ${name}`);
      await done;
      return name;
    },
    answer,
  };
}

const turn = () => new Promise((r) => setImmediate(r));

describe("token request gate", () => {
  it("a tenant alone uses every place; beyond them its requests wait and go in order", async () => {
    const gate = new TokenRequestGate(2);
    const log: string[] = [];
    const a = [0, 1, 2, 3].map((i) => held(log, `a${i}`));
    const results = a.map((r) => gate.run("ns-a", undefined, r.request));
    await turn();
    expect(log).toEqual(["sent a0", "sent a1"]);
    expect(gate.queued).toBe(2);
    a[1]!.answer();
    await turn();
    expect(log).toEqual(["sent a0", "sent a1", "sent a2"]);
    for (const r of a) r.answer();
    expect(await Promise.all(results)).toEqual(["a0", "a1", "a2", "a3"]);
    expect(gate.queued).toBe(0);
  });

  it("another tenant's request goes at the next free place, ahead of the burst waiting before it", async () => {
    const gate = new TokenRequestGate(2);
    const log: string[] = [];
    const a = Array.from({ length: 6 }, (_, i) => held(log, `a${i}`));
    const b = held(log, "b0");
    const all = a.map((r) => gate.run("ns-a", undefined, r.request));
    await turn();
    all.push(gate.run("ns-b", undefined, b.request));
    await turn();
    // a2..a5 were waiting before b0: the tenants take turns, so b0 is the second to go.
    a[0]!.answer();
    await turn();
    a[1]!.answer();
    await turn();
    expect(log).toEqual(["sent a0", "sent a1", "sent a2", "sent b0"]);
    for (const r of [...a, b]) r.answer();
    await Promise.all(all);
    expect(log.slice(4)).toEqual(["sent a3", "sent a4", "sent a5"]);
  });

  it("a request whose signal aborts while it waits leaves the queue with the signal's reason, and takes no place", async () => {
    const gate = new TokenRequestGate(1);
    const log: string[] = [];
    const first = held(log, "a0");
    const running = gate.run("ns-a", undefined, first.request);
    const controller = new AbortController();
    const waiting = gate.run("ns-b", controller.signal, held(log, "b0").request);
    const after = held(log, "c0");
    const next = gate.run("ns-c", undefined, after.request);
    expect(gate.queued).toBe(2);
    controller.abort(new Error("deadline"));
    await expect(waiting).rejects.toThrow("deadline");
    expect(gate.queued).toBe(1);
    first.answer();
    after.answer();
    expect(await running).toBe("a0");
    expect(await next).toBe("c0");
    expect(log).toEqual(["sent a0", "sent c0"]);
    // An already aborted signal never waits.
    const aborted = AbortSignal.abort(new Error("gone"));
    const blocker = held(log, "d0");
    const busy = gate.run("ns-d", undefined, blocker.request);
    await expect(gate.run("ns-e", aborted, held(log, "e0").request)).rejects.toThrow("gone");
    blocker.answer();
    await busy;
    expect(gate.queued).toBe(0);
  });

  it("a failed request frees its place", async () => {
    const gate = new TokenRequestGate(1);
    await expect(gate.run("ns-a", undefined, () => Promise.reject(new Error("refused")))).rejects.toThrow("refused");
    expect(await gate.run("ns-a", undefined, () => Promise.resolve("ok"))).toBe("ok");
  });
});
