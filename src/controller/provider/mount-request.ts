// The Mount request the controller sends a provider, built as upstream's
// controller builds it so any provider written for the CSI driver answers it
// unchanged: the SecretProviderClass parameters, the controller's own pod name
// and uid, the SecretSync's namespace and service account, and the service
// account's tokens; no node publish secrets, no current object versions.
import {
  DEFAULT_PERMISSION,
  POD_NAME_KEY,
  POD_NAMESPACE_KEY,
  POD_UID_KEY,
  SERVICE_ACCOUNT_NAME_KEY,
  sortedJson,
} from "../../shared/provider-api/volume-attributes.ts";
import type { MountRequest } from "../../shared/provider-api/provider-client.ts";
import { SERVICE_ACCOUNT_TOKENS_KEY } from "../../shared/logger.ts";

/** Upstream's fixed target path: no file is written there, providers only read it. */
export const CONTROLLER_TARGET_PATH = "/mnt/secrets-store";

export interface ControllerPod {
  name: string;
  uid: string;
}

export function buildMountRequest(
  parameters: Record<string, string>,
  pod: ControllerPod,
  namespace: string,
  serviceAccount: string,
  tokens: string | undefined,
): MountRequest {
  const attributes: Record<string, string> = {
    ...parameters,
    [POD_NAME_KEY]: pod.name,
    [POD_UID_KEY]: pod.uid,
    [POD_NAMESPACE_KEY]: namespace,
    [SERVICE_ACCOUNT_NAME_KEY]: serviceAccount,
  };
  // Tokens come from the controller's TokenRequests only, never from a class's parameters.
  if (tokens !== undefined) attributes[SERVICE_ACCOUNT_TOKENS_KEY] = tokens;
  else delete attributes[SERVICE_ACCOUNT_TOKENS_KEY];
  return {
    attributes: sortedJson(attributes),
    // Go's encoding/json of an empty map, as upstream sends it.
    secrets: "{}",
    target_path: CONTROLLER_TARGET_PATH,
    permission: DEFAULT_PERMISSION,
    current_object_version: [],
  };
}
