// The controller's index of SecretProviderClassPodStatus objects: a volume
// that moves to other versions is reported as a transition, and on taking the
// lead the classes whose volumes all show the same versions are listed (a
// class mid-rotation is not).
import { describe, expect, it } from "vitest";
import { PodStatusIndex, type PodStatus } from "../../../src/controller/kube/pod-status-index.ts";

const v = (id: string, version: string) => ({ id, version });

function status(name: string, className: string, objects: { id: string; version: string }[], namespace = "team-a"): PodStatus {
  return {
    apiVersion: "secrets-store.csi.x-k8s.io/v1",
    kind: "SecretProviderClassPodStatus",
    metadata: { name, namespace, uid: `uid-${name}` },
    status: { podName: name, secretProviderClassName: className, mounted: true, targetPath: "", objects },
  };
}

describe("pod status index", () => {
  it("reports a volume that moved to other versions, not one that was rewritten or first seen", () => {
    const moves: string[] = [];
    const index = new PodStatusIndex({ onTransition: (t) => moves.push(`${t.namespace}/${t.className}: ${t.before.map((o) => o.version)} -> ${t.after.map((o) => o.version)}`) });
    const first = status("web-0", "kv", [v("secret/a", "1")]);
    index.add(first);
    const same = status("web-0", "kv", [v("secret/a", "1")]);
    index.update(first, same);
    index.update(same, status("web-0", "kv", [v("secret/a", "2")]));
    expect(moves).toEqual(["team-a/kv: 1 -> 2"]);
  });

  it("lists the classes whose volumes agree on their versions, each once, skipping volumes with none yet", () => {
    const index = new PodStatusIndex();
    index.add(status("web-0", "kv", [v("secret/a", "2"), v("secret/b", "1")]));
    index.add(status("web-1", "kv", [v("secret/b", "1"), v("secret/a", "2")]));
    index.add(status("web-2", "kv", []));
    // Mid-rotation: one volume refreshed, the other not yet.
    index.add(status("api-0", "kv-split", [v("secret/c", "1")]));
    index.add(status("api-1", "kv-split", [v("secret/c", "2")]));
    index.add(status("other-0", "kv", [v("secret/a", "9")], "team-b"));
    index.add(status("empty-0", "kv-empty", []));
    expect([...index.agreedVersions()]).toEqual([
      { namespace: "team-a", className: "kv", objects: [v("secret/a", "2"), v("secret/b", "1")] },
      { namespace: "team-b", className: "kv", objects: [v("secret/a", "9")] },
    ]);
  });
});
