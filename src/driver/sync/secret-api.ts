// The Kubernetes calls of the Secret syncer, each bounded by a deadline so a
// hung API server cannot stall a mount or a refresh: read, create and JSON
// merge-patch a Secret. Bodies are never logged or echoed.
import type { V1Secret } from "@kubernetes/client-node";
import { httpStatusOf } from "../kube/kube-client.ts";
import type { KubeRest } from "../../shared/kube/kube-rest.ts";

/** Shows up in managedFields, so users can tell who wrote a field. */
export const FIELD_MANAGER = "secrets-store-csi-driver";

const secretPath = (namespace: string, name = "") => `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets${name ? `/${encodeURIComponent(name)}` : ""}`;

export class SecretsApi {
  private readonly rest: KubeRest;

  constructor(rest: KubeRest) {
    this.rest = rest;
  }

  /** The Secret, or undefined when it does not exist. */
  async get(namespace: string, name: string): Promise<V1Secret | undefined> {
    try {
      return await this.rest.request<V1Secret>({ method: "GET", path: secretPath(namespace, name), what: `get secret ${namespace}/${name}` });
    } catch (err) {
      if (httpStatusOf(err) === 404) return undefined;
      throw err;
    }
  }

  create(namespace: string, body: V1Secret): Promise<V1Secret> {
    return this.rest.request<V1Secret>({
      method: "POST",
      path: secretPath(namespace),
      query: { fieldManager: FIELD_MANAGER },
      body,
      contentType: "application/json",
      what: `create secret ${namespace}/${body.metadata?.name ?? ""}`,
    });
  }

  /** A JSON merge patch (RFC 7386): a null value removes the key. */
  mergePatch(namespace: string, name: string, patch: object): Promise<V1Secret> {
    return this.rest.request<V1Secret>({
      method: "PATCH",
      path: secretPath(namespace, name),
      query: { fieldManager: FIELD_MANAGER },
      body: patch,
      contentType: "application/merge-patch+json",
      what: `patch secret ${namespace}/${name}`,
    });
  }
}
