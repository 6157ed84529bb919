// Writes the Secret of a SecretSync with server-side apply (field manager
// secrets-store-sync-controller), as upstream's controller does, but only
// into a Secret that is provably its own. The controller may not read Secrets
// (its role has create and patch only), so before applying it sends a JSON
// patch made only of tests: the Secret carries the secrets-store.sync.x-k8s.io
// label with an empty value and its first owner is this SecretSync. The API
// server answers 404 when there is no Secret (the apply then creates it), 422
// when a test fails (someone else's Secret: left alone), and 200 without
// changing anything when it is ours. The apply itself forces the controller's
// ownership of the fields it sets; the Secret is never deleted (garbage
// collection does that once the SecretSync is gone).
import { Reason } from "../api/conditions.ts";
import { FIELD_MANAGER, keyOf, SECRET_SYNC_API_VERSION, SECRET_SYNC_KIND, secretTypeOf, SYNC_LABEL, type SecretSync } from "../api/secret-sync.ts";
import { describeApiError, httpStatusOf } from "../../shared/kube/api-errors.ts";
import type { KubeRest } from "../../shared/kube/kube-rest.ts";
import { SyncFailure } from "../reconcile/sync-failure.ts";

export type WriteOutcome = "created" | "updated";

const secretPath = (namespace: string, name: string) => `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`;

/** A JSON pointer segment (RFC 6901). */
const pointer = (segment: string) => segment.replace(/~/g, "~0").replace(/\//g, "~1");

/** Removes any Secret value an API server message might quote. */
function redact(message: string, data: ReadonlyMap<string, Buffer>): string {
  let out = message;
  for (const value of data.values()) {
    for (const form of [value.toString("base64"), value.toString("utf8")]) {
      if (form.length >= 4 && out.includes(form)) out = out.split(form).join("<redacted>");
    }
  }
  return out;
}

/** The apply configuration: everything the controller owns in the Secret, nothing else. */
export function applyConfiguration(ss: SecretSync, data: ReadonlyMap<string, Buffer>): Record<string, unknown> {
  const encoded: Record<string, string> = {};
  for (const [key, value] of data) encoded[key] = value.toString("base64");
  const { name, namespace, uid } = ss.metadata;
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name,
      namespace,
      labels: { ...ss.spec.secretObject.labels, [SYNC_LABEL]: "" },
      ...(ss.spec.secretObject.annotations && Object.keys(ss.spec.secretObject.annotations).length > 0 ? { annotations: { ...ss.spec.secretObject.annotations } } : {}),
      ownerReferences: [{ apiVersion: SECRET_SYNC_API_VERSION, kind: SECRET_SYNC_KIND, name, uid }],
    },
    type: secretTypeOf(ss),
    data: encoded,
  };
}

export class SecretWriter {
  private readonly rest: KubeRest;

  constructor(rest: KubeRest) {
    this.rest = rest;
  }

  async write(ss: SecretSync, data: ReadonlyMap<string, Buffer>): Promise<WriteOutcome> {
    const namespace = ss.metadata.namespace ?? "";
    const name = ss.metadata.name;
    const secretRef = `${namespace}/${name}`;
    const exists = await this.ownedByUs(ss);
    try {
      await this.rest.request({
        method: "PATCH",
        path: secretPath(namespace, name),
        query: { fieldManager: FIELD_MANAGER, force: "true" },
        body: applyConfiguration(ss, data),
        contentType: "application/apply-patch+yaml",
        what: `apply secret ${secretRef}`,
      });
    } catch (err) {
      const detail = redact(describeApiError(err), data);
      const hint =
        httpStatusOf(err) === 422 && /type.*immutable|immutable.*type/i.test(detail)
          ? `; the type of a Secret cannot change: delete Secret ${secretRef} and it is created again as ${secretTypeOf(ss)}`
          : httpStatusOf(err) === 403
            ? "; check the controller's role (secrets: create, patch) and the admission policies"
            : "";
      throw new SyncFailure(Reason.ControllerPatchError, `failed to patch secret ${secretRef} of secretsync ${keyOf(ss)}: ${detail}${hint}`, { cause: err });
    }
    return exists ? "updated" : "created";
  }

  /** True when the Secret is ours, false when there is none; a SyncFailure when it belongs to someone else. */
  private async ownedByUs(ss: SecretSync): Promise<boolean> {
    const namespace = ss.metadata.namespace ?? "";
    const name = ss.metadata.name;
    const tests = [
      { op: "test", path: `/metadata/labels/${pointer(SYNC_LABEL)}`, value: "" },
      { op: "test", path: "/metadata/ownerReferences/0/uid", value: ss.metadata.uid ?? "" },
    ];
    try {
      await this.rest.request({
        method: "PATCH",
        path: secretPath(namespace, name),
        query: { fieldManager: FIELD_MANAGER },
        body: tests,
        contentType: "application/json-patch+json",
        what: `check owner of secret ${namespace}/${name}`,
      });
      return true;
    } catch (err) {
      const code = httpStatusOf(err);
      if (code === 404) return false;
      if (code === 422) {
        throw new SyncFailure(
          Reason.ControllerPatchError,
          `secret ${namespace}/${name} exists and is not owned by secretsync ${keyOf(ss)} (it lacks the ${SYNC_LABEL} label or the SecretSync as its owner), ` +
            "so it was left unchanged: delete or rename that Secret, or give the SecretSync another name",
        );
      }
      throw new SyncFailure(Reason.ControllerPatchError, `failed to check the owner of secret ${namespace}/${name} for secretsync ${keyOf(ss)}: ${describeApiError(err)}`, { cause: err });
    }
  }
}
