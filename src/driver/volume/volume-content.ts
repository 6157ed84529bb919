// Fetches a volume's objects from its provider, validated, nothing written.
// Shared by the first mount and the rotation reconciler, so both ask the same
// way; writing is the VolumeTarget's (target.ts), separate so one provider
// answer can be written to every volume that shares it.
import type { DriverContext } from "../context.ts";
import type { ObjectVersion, SecretProviderClass } from "../../shared/kube/kube-types.ts";
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
