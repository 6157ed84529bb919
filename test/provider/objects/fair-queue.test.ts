// Unit tests of the parser's fair queue: the tenant that used the worker
// least lately goes next, waiting jobs are bounded per tenant and in all, and
// a full queue takes a place from the tenant with the most waiting.
import { describe, expect, it } from "vitest";
import { FairQueue } from "../../../src/provider/objects/fair-queue.ts";

function queue(now = { t: 0 }) {
  return { q: new FairQueue<string>({ maxPerTenant: 3, maxTotal: 6, halfLifeMs: 1000, now: () => now.t }), now };
}

const drainOrder = (q: FairQueue<string>) => {
  const out: string[] = [];
  for (let next = q.shift(); next; next = q.shift()) out.push(next.job);
  return out;
};

describe("fair queue", () => {
  it("serves each tenant's oldest job, the tenant with the least worker time first, ties by who waited first", () => {
    const { q } = queue();
    for (const job of ["a1", "a2", "a3"]) expect(q.push("a", job)).toBeUndefined();
    q.charge("a", 500);
    expect(q.push("b", "b1")).toBeUndefined();
    expect(q.push("c", "c1")).toBeUndefined();
    // b and c have used nothing: they go before a's waiting jobs, in arrival order
    expect(q.shift()).toEqual({ tenant: "b", job: "b1" });
    expect(q.shift()).toEqual({ tenant: "c", job: "c1" });
    expect(drainOrder(q)).toEqual(["a1", "a2", "a3"]);
  });

  it("a tenant whose jobs cost the worker waits behind one that costs little", () => {
    const { q } = queue();
    q.push("heavy", "h1");
    q.push("heavy", "h2");
    q.push("light", "l1");
    q.push("light", "l2");
    const served: string[] = [];
    for (let next = q.shift(); next; next = q.shift()) {
      served.push(next.job);
      q.charge(next.tenant, next.tenant === "heavy" ? 900 : 10);
    }
    expect(served).toEqual(["h1", "l1", "l2", "h2"]);
  });

  it("worker time counts less as it ages", () => {
    const { q, now } = queue();
    q.charge("old", 1000);
    now.t = 5000; // five half-lives: about 31 ms left
    q.charge("recent", 100);
    q.push("recent", "r1");
    q.push("old", "o1");
    expect(q.shift()!.job).toBe("o1");
  });

  it("refuses a tenant's job over its share, and takes a full queue's place from the tenant with the most waiting", () => {
    const { q } = queue();
    for (const job of ["a1", "a2", "a3"]) q.push("a", job);
    expect(q.push("a", "a4")).toBe("a4");
    for (const job of ["b1", "b2", "b3"]) q.push("b", job);
    expect(q.size).toBe(6);
    // c has nothing waiting: a's newest job gives way
    expect(q.push("c", "c1")).toBe("a3");
    expect(q.push("c", "c2")).toBe("b3");
    // now a, b and c each have two waiting: no one has more than c would
    expect(q.push("c", "c3")).toBe("c3");
    expect(q.size).toBe(6);
    expect(drainOrder(q).sort()).toEqual(["a1", "a2", "b1", "b2", "c1", "c2"]);
  });

  it("drain takes out every waiting job", () => {
    const { q } = queue();
    q.push("a", "a1");
    q.push("b", "b1");
    expect(q.drain().sort()).toEqual(["a1", "b1"]);
    expect(q.size).toBe(0);
    expect(q.shift()).toBeUndefined();
  });
});
