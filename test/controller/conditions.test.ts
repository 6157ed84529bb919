// Conditions as apimachinery sets them: the transition time moves only when
// the status does; upstream's types, reasons and initial values.
import { describe, expect, it } from "vitest";
import { ConditionType, conditionTypeFor, hasFailure, initialConditions, Reason, setCondition } from "../../src/controller/api/conditions.ts";
import { secretSync } from "./fakes.ts";

const t0 = new Date("2030-01-01T00:00:00.123Z");
const t1 = new Date("2030-01-01T00:05:00Z");

describe("SecretSync conditions", () => {
  it("start as upstream's: SecretCreated SyncStarting and SecretUpdated NoUpdatesAttemptedYet, both Unknown", () => {
    expect(initialConditions(secretSync("a"), t0)).toEqual([
      { type: "SecretCreated", status: "Unknown", reason: "SyncStarting", message: "", lastTransitionTime: "2030-01-01T00:00:00Z" },
      { type: "SecretUpdated", status: "Unknown", reason: "NoUpdatesAttemptedYet", message: "", lastTransitionTime: "2030-01-01T00:00:00Z" },
    ]);
  });

  it("keep the transition time while the status stays, and move it when the status changes", () => {
    let list = setCondition([], { type: ConditionType.Updated, status: "False", reason: Reason.ProviderError, message: "first" }, t0);
    list = setCondition(list, { type: ConditionType.Updated, status: "False", reason: Reason.ControllerSyncError, message: "second" }, t1);
    expect(list).toEqual([{ type: "SecretUpdated", status: "False", reason: "ControllerSyncError", message: "second", lastTransitionTime: "2030-01-01T00:00:00Z" }]);
    list = setCondition(list, { type: ConditionType.Updated, status: "True", reason: Reason.SecretUpToDate, message: "ok" }, t1);
    expect(list[0]!.lastTransitionTime).toBe("2030-01-01T00:05:00Z");
  });

  it("report on SecretCreated until a first sync succeeded, then on SecretUpdated; failures make the next sync write", () => {
    const fresh = secretSync("a");
    expect(conditionTypeFor(fresh)).toBe("SecretCreated");
    const synced = { ...fresh, status: { syncHash: "v1:abc", conditions: setCondition([], { type: "SecretUpdated", status: "False", reason: "ProviderError" }, t0) } };
    expect(conditionTypeFor(synced)).toBe("SecretUpdated");
    expect(hasFailure(synced)).toBe(true);
    expect(hasFailure({ ...synced, status: { ...synced.status, conditions: initialConditions(fresh, t0) } })).toBe(false);
  });

  it("cut a message at the CRD's 32 KiB", () => {
    const list = setCondition([], { type: "SecretUpdated", status: "False", reason: "ProviderError", message: "x".repeat(40_000) }, t0);
    expect(list[0]!.message.length).toBe(32 * 1024);
  });
});
