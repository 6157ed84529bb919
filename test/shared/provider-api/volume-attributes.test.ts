import { describe, expect, it } from "vitest";
import { buildAttributes, buildSecrets } from "../../../src/shared/provider-api/volume-attributes.ts";
import { podStatusName } from "../../../src/driver/kube/pod-status.ts";

const TOKENS = "csi.storage.k8s.io/serviceAccount.tokens";

describe("mount request attributes", () => {
  it("merges SPC parameters with the volume context, which wins, and sorts keys", () => {
    const json = buildAttributes({ b: "1", keyvaultName: "kv", clash: "spc" }, { clash: "pod", a: "2" }, {});
    expect(json).toBe('{"a":"2","b":"1","clash":"pod","keyvaultName":"kv"}');
  });

  it("takes tokens from secrets first (serviceAccountTokenInSecrets), then the volume context", () => {
    expect(JSON.parse(buildAttributes({}, { [TOKENS]: "ctx" }, { [TOKENS]: "sec" }))[TOKENS]).toBe("sec");
    expect(JSON.parse(buildAttributes({}, { [TOKENS]: "ctx" }, {}))[TOKENS]).toBe("ctx");
    expect(JSON.parse(buildAttributes({ p: "1" }, {}, {}))[TOKENS]).toBeUndefined();
  });

  it("sends secrets as JSON, or the literal null without nodePublishSecretRef", () => {
    expect(buildSecrets({})).toBe("null");
    expect(buildSecrets({ clientsecret: "s", clientid: "i" })).toBe('{"clientid":"i","clientsecret":"s"}');
  });

  it("names the status object as upstream, hashing only names Kubernetes would reject", () => {
    expect(podStatusName("pod", "ns", "spc")).toBe("pod-ns-spc");
    const long = podStatusName("p".repeat(200), "ns", "s".repeat(100));
    expect(long.length).toBeLessThanOrEqual(253);
    expect(long).toMatch(/-[0-9a-f]{10}$/);
    expect(podStatusName("p".repeat(200), "ns", "s".repeat(100))).toBe(long);
  });
});
