// SecretProviderClass reads: each answer comes from a GET sent after the
// caller asked, callers waiting at the same time share one GET, and the
// copies kept for an early start are bounded whatever classes tenants write.
import { describe, expect, it } from "vitest";
import { CLASS_COPIES_MAX, CLASS_COPY_MAX_BYTES, sameClass, SecretProviderClassReads } from "../../../src/driver/kube/class-reads.ts";
import type { SecretProviderClass } from "../../../src/shared/kube/kube-types.ts";

const NOT_FOUND = new Error("not found");

function spc(name: string, resourceVersion: string, parameters: Record<string, string> = { objects: "a" }): SecretProviderClass {
  return {
    apiVersion: "secrets-store.csi.x-k8s.io/v1",
    kind: "SecretProviderClass",
    metadata: { name, namespace: "ns", uid: `uid-${name}`, resourceVersion },
    spec: { provider: "fake", parameters },
  } as SecretProviderClass;
}

/** An API server whose GETs the test answers one by one; `version` is what a GET answered now would find. */
function apiServer() {
  const gets: Array<{ name: string; version: number; answer: () => void; fail: (err: Error) => void }> = [];
  let version = 1;
  return {
    gets,
    change: () => version++,
    get: (_ns: string, name: string) =>
      new Promise<SecretProviderClass>((resolve, reject) => {
        const at = version;
        gets.push({ name, version: at, answer: () => resolve(spc(name, String(at))), fail: reject });
      }),
  };
}

const flush = () => new Promise((r) => setImmediate(r));

describe("SecretProviderClass reads", () => {
  it("answers a caller only with a GET sent after it asked; callers waiting meanwhile share the next GET", async () => {
    const api = apiServer();
    const reads = new SecretProviderClassReads(api.get, (e) => e === NOT_FOUND);
    const first = reads.read("ns", "c");
    expect(first.early).toBeUndefined();
    expect(api.gets).toHaveLength(1);
    // The class changes while the first GET is on the wire; three publishes ask.
    api.change();
    const waiting = [reads.read("ns", "c"), reads.read("ns", "c"), reads.read("ns", "c")];
    expect(api.gets).toHaveLength(1);
    api.gets[0]!.answer();
    expect((await first.current).metadata.resourceVersion).toBe("1");
    await flush();
    // One more GET for the three, sent after they asked: it sees the change.
    expect(api.gets).toHaveLength(2);
    api.gets[1]!.answer();
    for (const read of waiting) expect((await read.current).metadata.resourceVersion).toBe("2");
    // Nothing in flight now: the next caller gets a GET of its own, and the last answer as its early copy.
    const later = reads.read("ns", "c");
    expect(later.early?.metadata.resourceVersion).toBe("2");
    expect(api.gets).toHaveLength(3);
    api.gets[2]!.answer();
    await later.current;
  });

  it("passes a failed GET to its callers, keeps serving, and forgets the copy of a class that is gone", async () => {
    const api = apiServer();
    const reads = new SecretProviderClassReads(api.get, (e) => e === NOT_FOUND);
    const ok = reads.read("ns", "c");
    api.gets[0]!.answer();
    await ok.current;
    const down = reads.read("ns", "c");
    api.gets[1]!.fail(new Error("unreachable"));
    await expect(down.current).rejects.toThrow("unreachable");
    const gone = reads.read("ns", "c");
    expect(gone.early).toBeDefined();
    api.gets[2]!.fail(NOT_FOUND);
    await expect(gone.current).rejects.toBe(NOT_FOUND);
    const after = reads.read("ns", "c");
    expect(after.early).toBeUndefined();
    api.gets[3]!.answer();
    await after.current;
  });

  it("keeps at most CLASS_COPIES_MAX copies, and none of a class with large parameters, however many classes a tenant writes", async () => {
    const big = "x".repeat(CLASS_COPY_MAX_BYTES + 1);
    const reads = new SecretProviderClassReads(async (_ns, name) => spc(name, "1", name === "big" ? { objects: big } : undefined), () => false);
    for (let i = 0; i < 1000; i++) await reads.read("ns", `class-${i}`).current;
    expect(reads.copiesKept).toBe(CLASS_COPIES_MAX);
    expect(reads.read("ns", "class-999").early).toBeDefined();
    expect(reads.read("ns", "class-0").early).toBeUndefined();
    await reads.read("ns", "big").current;
    expect(reads.read("ns", "big").early).toBeUndefined();
  });

  it("tells a changed class from the same version by uid and resourceVersion, and never calls two classes without them the same", () => {
    expect(sameClass(spc("c", "1"), spc("c", "1"))).toBe(true);
    expect(sameClass(spc("c", "1"), spc("c", "2"))).toBe(false);
    expect(sameClass(spc("c", "1"), { ...spc("c", "1"), metadata: { ...spc("c", "1").metadata, uid: "recreated" } })).toBe(false);
    // a class from a file in standalone mode: edited or not, nothing proves it the same
    const fromFile = (objects: string) => ({ ...spc("c", "", { objects }), metadata: { name: "c", namespace: "ns" } }) as SecretProviderClass;
    expect(sameClass(fromFile("a"), fromFile("b"))).toBe(false);
    expect(sameClass(fromFile("a"), fromFile("a"))).toBe(false);
  });

  it("counts all of a class against the copy's bound (secretObjects, labels, annotations), keeps no managedFields, and no copy without uid and resourceVersion", async () => {
    const secretObjects = Array.from({ length: 200 }, (_, i) => ({ secretName: `s-${i}`, type: "Opaque", labels: { big: "x".repeat(400) }, data: [{ objectName: "a", key: "a" }] }));
    const classes: Record<string, SecretProviderClass> = {
      wide: { ...spc("wide", "1"), spec: { provider: "fake", parameters: { objects: "a" }, secretObjects } } as SecretProviderClass,
      annotated: { ...spc("annotated", "1"), metadata: { ...spc("annotated", "1").metadata, annotations: { note: "y".repeat(CLASS_COPY_MAX_BYTES) } } },
      tracked: { ...spc("tracked", "1"), metadata: { ...spc("tracked", "1").metadata, managedFields: [{ manager: "kubectl", fieldsV1: { f: "z".repeat(1000) } }] } } as SecretProviderClass,
      unversioned: { ...spc("unversioned", ""), metadata: { name: "unversioned", namespace: "ns" } } as SecretProviderClass,
    };
    const reads = new SecretProviderClassReads(async (_ns, name) => classes[name]!, () => false);
    for (const name of Object.keys(classes)) await reads.read("ns", name).current;
    expect(reads.read("ns", "wide").early).toBeUndefined();
    expect(reads.read("ns", "annotated").early).toBeUndefined();
    expect(reads.read("ns", "unversioned").early).toBeUndefined();
    const kept = reads.read("ns", "tracked").early!;
    expect(kept.metadata.uid).toBe("uid-tracked");
    expect((kept.metadata as { managedFields?: unknown }).managedFields).toBeUndefined();
  });
});
