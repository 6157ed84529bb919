// The Kubernetes calls of the Secret syncer, each bounded by a deadline so a
// hung API server cannot stall a mount or a refresh: read, create and JSON
// merge-patch a Secret, read a Pod. Bodies are never logged or echoed.
import { PatchStrategy, setHeaderOptions, type CoreV1Api, type V1Pod, type V1Secret } from "@kubernetes/client-node";
import { httpStatusOf } from "./kube-client.ts";

const API_TIMEOUT_MS = 15_000;
/** Shows up in managedFields, so users can tell who wrote a field. */
export const FIELD_MANAGER = "secrets-store-csi-driver";

export function withApiTimeout<T>(promise: Promise<T>, what: string, ms = API_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer from the Kubernetes API server within ${ms / 1000}s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class SecretsApi {
  private readonly core: CoreV1Api;

  constructor(core: CoreV1Api) {
    this.core = core;
  }

  /** The Secret, or undefined when it does not exist. */
  async get(namespace: string, name: string): Promise<V1Secret | undefined> {
    try {
      return await withApiTimeout(this.core.readNamespacedSecret({ name, namespace }), `get secret ${namespace}/${name}`);
    } catch (err) {
      if (httpStatusOf(err) === 404) return undefined;
      throw err;
    }
  }

  create(namespace: string, body: V1Secret): Promise<V1Secret> {
    return withApiTimeout(
      this.core.createNamespacedSecret({ namespace, body, fieldManager: FIELD_MANAGER }),
      `create secret ${namespace}/${body.metadata?.name ?? ""}`,
    );
  }

  /** A JSON merge patch (RFC 7386): a null value removes the key. */
  mergePatch(namespace: string, name: string, patch: object): Promise<V1Secret> {
    return withApiTimeout(
      this.core.patchNamespacedSecret(
        { name, namespace, body: patch, fieldManager: FIELD_MANAGER },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      ),
      `patch secret ${namespace}/${name}`,
    );
  }

  /** The Pod, or undefined when it does not exist. */
  async getPod(namespace: string, name: string): Promise<V1Pod | undefined> {
    try {
      return await withApiTimeout(this.core.readNamespacedPod({ name, namespace }), `get pod ${namespace}/${name}`);
    } catch (err) {
      if (httpStatusOf(err) === 404) return undefined;
      throw err;
    }
  }
}
