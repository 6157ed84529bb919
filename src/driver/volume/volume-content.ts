// Fetches a volume's objects from its provider, validated, nothing written.
// Shared by the first mount and the rotation reconciler, so both ask the same
// way; writing is the VolumeTarget's (target.ts), separate so one provider
// answer can be written to every volume that shares it.
import type { DriverContext } from "../context.ts";
import type { PodRef } from "../kube/kube-client.ts";
import type { ObjectVersion, SecretProviderClass } from "../../shared/kube/kube-types.ts";
import { describeMissing, missingObjects } from "../../shared/provider-api/missing-objects.ts";
import { providerOf, type MountResult } from "../../shared/provider-api/provider-client.ts";
import { buildAttributes, buildSecrets, DEFAULT_PERMISSION } from "../../shared/provider-api/volume-attributes.ts";

export interface ContentRequest {
  targetPath: string;
  spc: SecretProviderClass;
  volumeContext: Record<string, string>;
  secrets: Record<string, string>;
  currentObjectVersions: ObjectVersion[];
  deadline: Date;
}

export interface FetchedContent extends MountResult {
  provider: string;
}

/** Asks the provider for the volume's objects; the answer is validated, nothing is written. */
export async function fetchContent(ctx: DriverContext, req: ContentRequest): Promise<FetchedContent> {
  const provider = providerOf(req.spc);
  const client = await ctx.providers.get(provider);
  const result = await client.mount(
    {
      attributes: buildAttributes(req.spc.spec.parameters ?? {}, req.volumeContext, req.secrets),
      secrets: buildSecrets(req.secrets),
      target_path: req.targetPath,
      permission: DEFAULT_PERMISSION,
      current_object_version: req.currentObjectVersions,
    },
    req.deadline,
  );
  return { ...result, provider };
}

/** The reason of the Warning event for objects a provider left out (shared/provider-api/missing-objects.ts). */
export const OBJECT_MISSING_REASON = "OptionalObjectMissing";

/**
 * Raises a Warning event on the pod naming the objects the provider's answer
 * reports missing that `before` (the volume's versions until now) did not:
 * on the first mount every one, on a refresh only the newly missing ones.
 */
export async function reportMissingObjects(ctx: DriverContext, pod: PodRef, spcRef: string, content: FetchedContent, before: readonly ObjectVersion[] = []): Promise<void> {
  const known = new Set(missingObjects(before).map((m) => m.id));
  const missing = missingObjects(content.objectVersions).filter((m) => !known.has(m.id));
  if (missing.length === 0 || ctx.kube instanceof Error) return;
  const message = `provider "${content.provider}" left out optional objects it did not find, and the volume of spc ${spcRef} holds the others: ${describeMissing(missing)}`;
  ctx.logger.warn({ pod: `${pod.namespace}/${pod.name}`, spc: spcRef, missing: missing.length }, "optional objects missing from the volume");
  await ctx.kube.recordEvent(pod, "Warning", OBJECT_MISSING_REASON, message);
}
