// The pure parts of the syncer: what a patch contains, how owners merge, and
// the redaction of values from API error texts.
import { describe, expect, it } from "vitest";
import { mergeOwners, plainOwner } from "../../../src/driver/sync/secret-owners.ts";
import { redactValues, secretPatch } from "../../../src/driver/sync/secret-sync.ts";

const rs = { apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-1", uid: "uid-rs-1" };
const spcps = { apiVersion: "secrets-store.csi.x-k8s.io/v1", kind: "SecretProviderClassPodStatus", name: "p-ns-spc", uid: "uid-spcps" };

const desired = {
  namespace: "ns",
  name: "s",
  type: "Opaque",
  data: { a: Buffer.from("A").toString("base64"), b: Buffer.from("B").toString("base64") },
  labels: { app: "web", "secrets-store.csi.k8s.io/managed": "true" },
  annotations: { note: "x" },
  owners: [rs],
};

describe("mergeOwners", () => {
  it("adds missing owners by uid, keeps existing ones as they are, and never sets controller flags", () => {
    const existing = [{ ...spcps, controller: true, blockOwnerDeletion: true }];
    const merged = mergeOwners(existing, [rs, { ...rs, name: "renamed" }]);
    expect(merged.changed).toBe(true);
    expect(merged.owners).toEqual([{ ...spcps, controller: true, blockOwnerDeletion: true }, rs]);
    expect("controller" in merged.owners[1]!).toBe(false);
    expect(mergeOwners(merged.owners, [rs]).changed).toBe(false);
  });

  it("keeps apiVersion, kind, name and uid only", () => {
    expect(plainOwner({ ...rs, controller: true, blockOwnerDeletion: true } as typeof rs)).toEqual(rs);
    expect(Object.keys(plainOwner({ ...rs, controller: true } as typeof rs)).sort()).toEqual(["apiVersion", "kind", "name", "uid"]);
  });
});

describe("secretPatch", () => {
  const existing = () => ({
    metadata: {
      name: "s",
      resourceVersion: "42",
      labels: { ...desired.labels, other: "theirs" },
      annotations: { note: "x", "their/annotation": "y" },
      ownerReferences: [rs],
    },
    type: "Opaque",
    data: { ...desired.data } as Record<string, string>,
  });

  it("is undefined when everything already matches, whatever others added", () => {
    expect(secretPatch(existing(), desired)).toBeUndefined();
  });

  it("patches changed and removed data keys only, with the resourceVersion as a lock", () => {
    const e = existing();
    e.data = { a: desired.data.a, b: "c3RhbGU=", gone: "eA==" };
    const change = secretPatch(e, desired)!;
    expect(change.dataChanged).toBe(true);
    expect(change.patch).toEqual({ data: { b: desired.data.b, gone: null }, metadata: { resourceVersion: "42" } });
  });

  it("sets changed labels and annotations without removing others, and merges owners", () => {
    const e = existing();
    e.metadata.labels.app = "old";
    e.metadata.ownerReferences = [spcps];
    const change = secretPatch(e, { ...desired, annotations: { note: "x", added: "1" } })!;
    expect(change.dataChanged).toBe(false);
    expect(change.patch).toEqual({
      metadata: { resourceVersion: "42", labels: { app: "web" }, annotations: { added: "1" }, ownerReferences: [spcps, rs] },
    });
  });
});

describe("redactValues", () => {
  it("removes values in raw and base64 form from API messages", () => {
    const data = { password: Buffer.from("hunter2-secret") };
    const message = `Secret "s" is invalid: data[x]: Invalid value: "hunter2-secret" (${data.password.toString("base64")})`;
    const out = redactValues(message, data);
    expect(out).not.toContain("hunter2-secret");
    expect(out).not.toContain(data.password.toString("base64"));
    expect(out).toContain('Secret "s" is invalid');
  });
});
