// Writes the status subresource of a SecretSync (the controller's role may
// patch secretsyncs/status, never the spec). A JSON merge patch replaces the
// conditions list as a whole, which is how the controller computes it.
import { SECRET_SYNC_GROUP, SECRET_SYNC_PLURAL, SECRET_SYNC_VERSION, type SecretSync, type SecretSyncStatus } from "../api/secret-sync.ts";
import { httpStatusOf } from "../../shared/kube/api-errors.ts";
import type { KubeRest } from "../../shared/kube/kube-rest.ts";

export const secretSyncsPath = `/apis/${SECRET_SYNC_GROUP}/${SECRET_SYNC_VERSION}/${SECRET_SYNC_PLURAL}`;

const statusPath = (namespace: string, name: string) =>
  `/apis/${SECRET_SYNC_GROUP}/${SECRET_SYNC_VERSION}/namespaces/${encodeURIComponent(namespace)}/${SECRET_SYNC_PLURAL}/${encodeURIComponent(name)}/status`;

export class SecretSyncStatusWriter {
  private readonly rest: KubeRest;

  constructor(rest: KubeRest) {
    this.rest = rest;
  }

  /** The updated SecretSync, or undefined when it is gone. */
  async patch(ss: SecretSync, status: SecretSyncStatus): Promise<SecretSync | undefined> {
    const namespace = ss.metadata.namespace ?? "";
    try {
      return await this.rest.request<SecretSync>({
        method: "PATCH",
        path: statusPath(namespace, ss.metadata.name),
        body: { status },
        contentType: "application/merge-patch+json",
        what: `update status of secretsync ${namespace}/${ss.metadata.name}`,
      });
    } catch (err) {
      if (httpStatusOf(err) === 404) return undefined;
      throw err;
    }
  }
}
