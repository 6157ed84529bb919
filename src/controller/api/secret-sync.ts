// The SecretSync custom resource (group secret-sync.x-k8s.io, v1alpha1), as
// kubernetes-sigs/secrets-store-sync-controller defines it: a Secret named
// like the SecretSync, filled from the files a provider returns for a
// SecretProviderClass, under the identity of a service account.
import type { ObjectMeta } from "../../shared/kube/kube-types.ts";

export const SECRET_SYNC_GROUP = "secret-sync.x-k8s.io";
export const SECRET_SYNC_VERSION = "v1alpha1";
export const SECRET_SYNC_API_VERSION = `${SECRET_SYNC_GROUP}/${SECRET_SYNC_VERSION}`;
export const SECRET_SYNC_KIND = "SecretSync";
export const SECRET_SYNC_PLURAL = "secretsyncs";

/** The label every synced Secret carries, with an empty value (upstream's controllerLabelKey). */
export const SYNC_LABEL = "secrets-store.sync.x-k8s.io";
/** Reserved: no label or annotation key of a SecretSync's secretObject may start with it. */
export const RESERVED_PREFIX = SYNC_LABEL;
/** The field manager of every write to a synced Secret (managedFields show it). */
export const FIELD_MANAGER = "secrets-store-sync-controller";

/** The type the controller never writes, policies or not: a token Secret would mint credentials. */
export const SERVICE_ACCOUNT_TOKEN_TYPE = "kubernetes.io/service-account-token";
export const DEFAULT_SECRET_TYPE = "Opaque";

export interface SecretObjectData {
  /** A file path of the provider's answer (an object name or alias, e.g. "db-password" or "cert/0"). */
  sourcePath: string;
  /** The key in the Secret's data. */
  targetKey: string;
}

export interface SecretObject {
  type?: string;
  data: SecretObjectData[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface SecretSyncSpec {
  secretProviderClassName: string;
  serviceAccountName: string;
  secretObject: SecretObject;
  /** Any change of this value forces a sync. */
  forceSynchronization?: string;
  /** Accepted and never read, as upstream. */
  secretSyncControllerName?: string;
}

export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface SecretSyncStatus {
  syncHash?: string;
  lastSuccessfulSyncTime?: string;
  conditions?: Condition[];
}

export interface SecretSync {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: SecretSyncSpec;
  status?: SecretSyncStatus;
}

/** "namespace/name", the key of a SecretSync in every map and in messages. */
export function keyOf(obj: { metadata: { namespace?: string; name: string } }): string {
  return `${obj.metadata.namespace ?? ""}/${obj.metadata.name}`;
}

export function secretTypeOf(ss: SecretSync): string {
  return ss.spec.secretObject?.type || DEFAULT_SECRET_TYPE;
}
