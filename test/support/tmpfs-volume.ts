// A real tmpfs at a kubelet-style target, mounted as the driver mounts its
// volumes (source secrets-store.csi.k8s.io), with the identity the driver
// records for it: for tests of what reads or writes a recorded volume.
import { execFileSync } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { identityOf, openTargetDirectory, resolveTarget, type VolumeMount } from "../../src/driver/volume/target-state.ts";

export const DRIVER_SOURCE = "secrets-store.csi.k8s.io";

/** <kubeletDir>/pods/<podUid>/volumes/kubernetes.io~csi/<volume>/mount, with its parent created. */
export async function csiTarget(kubeletDir: string, podUid: string, volume: string): Promise<string> {
  const parent = join(kubeletDir, "pods", podUid, "volumes", "kubernetes.io~csi", volume);
  await mkdir(parent, { recursive: true });
  return join(parent, "mount");
}

/** Mounts a 1 MiB tmpfs at target (created if missing) and returns its identity as the driver records it. */
export async function mountTmpfsVolume(kubeletDir: string, target: string, source = DRIVER_SOURCE): Promise<VolumeMount> {
  await mkdir(target, { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m,mode=0755", source, target]);
  const dir = openTargetDirectory(await resolveTarget(target, kubeletDir));
  try {
    return { ...identityOf(dir), source };
  } finally {
    dir.close();
  }
}
