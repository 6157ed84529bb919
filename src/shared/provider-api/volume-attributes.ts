// What the driver sends the provider in MountRequest, built as upstream does
// (reference driver-spec §2.5 steps 10 and 12) so every upstream provider
// understands it.
import { SERVICE_ACCOUNT_TOKENS_KEY } from "../logger.ts";

export const POD_NAME_KEY = "csi.storage.k8s.io/pod.name";
export const POD_NAMESPACE_KEY = "csi.storage.k8s.io/pod.namespace";
export const POD_UID_KEY = "csi.storage.k8s.io/pod.uid";
export const SERVICE_ACCOUNT_NAME_KEY = "csi.storage.k8s.io/serviceAccount.name";
export const SPC_NAME_KEY = "secretProviderClass";
export const PROVIDER_NAME_KEY = "providerName";

/** The default file mode the driver asks for: 0644, sent as a decimal JSON number. */
export const DEFAULT_PERMISSION = String(0o644);

/** Go's encoding/json sorts map keys; providers may depend on stable output. */
export function sortedJson(map: Record<string, string>): string {
  const sorted: Record<string, string> = {};
  for (const key of Object.keys(map).sort()) sorted[key] = map[key]!;
  return JSON.stringify(sorted);
}

/**
 * Kubelet puts service-account tokens in `secrets` when the CSIDriver sets
 * serviceAccountTokenInSecrets (Kubernetes >= 1.35), else in the volume context.
 */
export function serviceAccountTokens(secrets: Record<string, string>, volumeContext: Record<string, string>): string | undefined {
  return secrets[SERVICE_ACCOUNT_TOKENS_KEY] || volumeContext[SERVICE_ACCOUNT_TOKENS_KEY] || undefined;
}

/** SPC parameters, overridden by every volume_context entry, plus the tokens. */
export function buildAttributes(
  parameters: Record<string, string>,
  volumeContext: Record<string, string>,
  secrets: Record<string, string>,
): string {
  const attributes: Record<string, string> = { ...parameters, ...volumeContext };
  const tokens = serviceAccountTokens(secrets, volumeContext);
  if (tokens) attributes[SERVICE_ACCOUNT_TOKENS_KEY] = tokens;
  return sortedJson(attributes);
}

/** The nodePublishSecretRef data as JSON; the literal null when there is none. */
export function buildSecrets(secrets: Record<string, string>): string {
  return Object.keys(secrets).length === 0 ? "null" : sortedJson(secrets);
}
