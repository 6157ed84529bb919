import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { ClassObjectIndex, objectsOfClass } from "../../../src/controller/events/class-objects.ts";
import type { SecretProviderClass } from "../../../src/shared/kube/kube-types.ts";

const spc = (name: string, parameters: Record<string, string>, provider = "azure", namespace = "team-a"): SecretProviderClass => ({ metadata: { name, namespace }, spec: { provider, parameters } });

const OBJECTS = `array:
  - |
    objectName: DB-Password
    objectType: secret
  - |
    objectName: web
    objectType: cert
  - |
    objectName: fixed
    objectType: secret
    objectVersion: 0123456789abcdef0123456789abcdef
  - |
    objectName: history
    objectType: secret
    objectVersion: latest
    objectVersionHistory: 3
  - |
    objectName: odd
    objectType: blob
`;

describe("which classes read which Key Vault objects", () => {
  it("reads the Azure provider's parameters, names lower-cased, pinned versions marked", () => {
    expect(objectsOfClass(spc("kv", { keyvaultName: "KV-One", objects: OBJECTS }), parse)).toEqual([
      { vault: "kv-one", objectType: "secret", objectName: "db-password", pinned: false },
      { vault: "kv-one", objectType: "cert", objectName: "web", pinned: false },
      { vault: "kv-one", objectType: "secret", objectName: "fixed", pinned: true },
      { vault: "kv-one", objectType: "secret", objectName: "history", pinned: false },
    ]);
    expect(objectsOfClass(spc("other", { keyvaultName: "kv-one", objects: OBJECTS }, "vault"), parse)).toEqual([]);
    expect(objectsOfClass(spc("broken", { keyvaultName: "kv-one", objects: "array: [" }), parse)).toEqual([]);
    expect(objectsOfClass(spc("no-vault", { objects: OBJECTS }), parse)).toEqual([]);
  });

  it("matches by vault and name whatever the case, keeps up with edits and deletions", () => {
    const index = new ClassObjectIndex(parse);
    index.set(spc("kv", { keyvaultName: "kv-one", objects: OBJECTS }));
    index.set(spc("kv", { keyvaultName: "kv-one", objects: OBJECTS }, "azure", "team-b"));
    expect(index.classesFor("KV-ONE", "Web")).toEqual([
      { namespace: "team-a", name: "kv" },
      { namespace: "team-b", name: "kv" },
    ]);
    expect(index.classesFor("kv-one", "fixed")).toEqual([]);
    expect(index.classesOfVault("kv-one")).toHaveLength(2);
    index.set(spc("kv", { keyvaultName: "kv-two", objects: OBJECTS }));
    expect(index.classesFor("kv-one", "web")).toEqual([{ namespace: "team-b", name: "kv" }]);
    index.delete("team-b", "kv");
    expect(index.classesFor("kv-one", "web")).toEqual([]);
    expect(index.classCount).toBe(1);
  });
});
