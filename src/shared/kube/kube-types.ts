// The custom resources of group secrets-store.csi.x-k8s.io (reference
// driver-spec §4), as the driver reads and writes them.

export const SPC_GROUP = "secrets-store.csi.x-k8s.io";
export const SPC_VERSION = "v1";
export const SPC_PLURAL = "secretproviderclasses";
export const SPCPS_PLURAL = "secretproviderclasspodstatuses";
export const SPCPS_KIND = "SecretProviderClassPodStatus";
export const NODE_NAME_LABEL = "internal.secrets-store.csi.k8s.io/node-name";
export const MANAGED_SECRET_LABEL = "secrets-store.csi.k8s.io/managed";
/**
 * On a SecretProviderClassPodStatus: a new value asks the driver of its node
 * to refresh the volumes of that namespace and class (the controller sets it
 * when Key Vault announces a new version). The same name as the pod
 * annotation for an on-demand refresh.
 */
export const REFRESH_REQUESTED_AT_ANNOTATION = "secrets-store.csi.k8s.io/refresh-requested-at";
/**
 * Beside it, optional: the object version that prompted the request; volumes
 * that already hold it are not refreshed. It says only when to read, never what.
 */
export const REFRESH_VERSION_ANNOTATION = "secrets-store.csi.k8s.io/refresh-version";

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  /** Bumped by the API server on every change of the spec (not of the status). */
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  creationTimestamp?: string;
  deletionTimestamp?: string;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface SecretObjectData {
  objectName: string;
  key: string;
}

export interface SecretObject {
  secretName: string;
  type: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  data?: SecretObjectData[];
}

export interface SecretProviderClass {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: {
    provider?: string;
    parameters?: Record<string, string>;
    secretObjects?: SecretObject[];
  };
}

export interface ObjectVersion {
  id: string;
  version: string;
}

export interface SecretProviderClassPodStatus {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  status: {
    podName: string;
    secretProviderClassName: string;
    mounted: boolean;
    targetPath: string;
    objects?: ObjectVersion[];
  };
}
