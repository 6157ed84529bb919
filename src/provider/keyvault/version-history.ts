// The order of objectVersionHistory files: `<name>/0` is the current version
// (the one Key Vault returns without a version), then the others by creation
// time, newest first. Key Vault's timestamps have one-second resolution and
// its version listing has no defined order, so versions created in the same
// second are ordered by version id: the same files whatever order the
// listing came in.
import type { VersionInfo } from "./keyvault.ts";

/** Enabled versions, newest first, ties by version id. */
export function orderVersions(versions: readonly VersionInfo[]): VersionInfo[] {
  return versions
    .filter((v) => v.enabled)
    .sort((a, b) => b.createdOn - a.createdOn || (a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
}

/**
 * True when the listing alone cannot tell the current version: two enabled
 * versions share the newest creation time.
 */
export function currentIsAmbiguous(ordered: readonly VersionInfo[]): boolean {
  return ordered.length > 1 && ordered[0]!.createdOn === ordered[1]!.createdOn;
}

/** Moves the current version (by id) to the front; unchanged if it is not listed as enabled. */
export function currentFirst(ordered: readonly VersionInfo[], current: string): VersionInfo[] {
  const i = ordered.findIndex((v) => v.version === current);
  if (i <= 0) return [...ordered];
  return [ordered[i]!, ...ordered.slice(0, i), ...ordered.slice(i + 1)];
}
