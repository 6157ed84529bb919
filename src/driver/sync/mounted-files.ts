// The files of a mounted volume, read for the secretObjects syncer: only what
// the driver itself wrote (the atomic-writer layout under ..data), through a
// descriptor of the volume's tmpfs after checking it is still exactly the
// recorded mount (volume/target.ts). A plain directory, a volume whose tmpfs
// changed or anything else at the target is never read, so no file of the
// node or of another pod can end up in a Secret.
import type { DriverContext } from "../context.ts";
import type { MountedFile } from "../../shared/secrets/secret-data.ts";
import type { MountedVolume } from "../volume/mounted-volumes.ts";
import { VolumeTarget } from "../volume/target.ts";

export async function readMountedFiles(ctx: DriverContext, volume: MountedVolume): Promise<Map<string, MountedFile>> {
  const out = new Map<string, MountedFile>();
  for (const [path, file] of await VolumeTarget.readFiles(ctx, volume)) out.set(path, { path, contents: file.contents });
  return out;
}
