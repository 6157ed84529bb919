// Stand-ins for unit tests of one controller module: a KubeRest that answers
// from a function and records the calls, and SecretSync / class objects.
import type { SecretSync } from "../../src/controller/api/secret-sync.ts";
import { KubeApiError, type KubeRest, type RequestSpec } from "../../src/shared/kube/kube-rest.ts";
import type { SecretProviderClass } from "../../src/shared/kube/kube-types.ts";

export interface RecordingRest {
  rest: KubeRest;
  calls: RequestSpec[];
}

/** A KubeRest whose answers come from `answer`; throw a KubeApiError (apiError()) to fail a call. */
export function recordingRest(answer: (spec: RequestSpec) => unknown): RecordingRest {
  const calls: RequestSpec[] = [];
  const rest = {
    request: (spec: RequestSpec) => {
      calls.push(spec);
      try {
        return Promise.resolve(answer(spec));
      } catch (err) {
        return Promise.reject(err as Error);
      }
    },
    watch: () => Promise.resolve(),
  } as unknown as KubeRest;
  return { rest, calls };
}

export const apiError = (code: number, message: string) => new KubeApiError(code, { message });

export function secretSync(name: string, overrides: Partial<SecretSync["spec"]> & { namespace?: string; uid?: string } = {}): SecretSync {
  const { namespace = "team-a", uid = `uid-${name}`, ...spec } = overrides;
  return {
    metadata: { name, namespace, uid, generation: 1, resourceVersion: "1" },
    spec: {
      secretProviderClassName: "kv",
      serviceAccountName: "app",
      secretObject: { type: "Opaque", data: [{ sourcePath: "a", targetKey: "a" }] },
      ...spec,
    },
  };
}

export function secretProviderClass(name: string, namespace = "team-a", uid = `uid-spc-${name}`, provider = "fake"): SecretProviderClass {
  return { metadata: { name, namespace, uid, generation: 1 }, spec: { provider, parameters: { objects: "a" } } };
}
