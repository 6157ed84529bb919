// kubelet's own record of a CSI volume: the vol_data.json it writes beside
// the mount directory (<kubelet-dir>/pods/<uid>/volumes/kubernetes.io~csi/
// <volume>/vol_data.json) when it sets the volume up, naming the driver and
// the volume handle it will unpublish with. Only root on the node can write
// there. For an unpublish after a restart it is what says the tmpfs at the
// target is this driver's volume when the pod (and with it the status object)
// is already gone.
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { csiVolumeOf } from "./volume-proof.ts";
import { openTargetParent, type ResolvedTarget } from "./target-state.ts";

const FILE_NAME = "vol_data.json";
/** kubelet writes six short fields; anything larger is not its file. */
const MAX_BYTES = 4096;

interface VolumeData {
  driverName?: unknown;
  volumeHandle?: unknown;
  specVolID?: unknown;
}

/**
 * Why kubelet's record beside the target does not show it as this driver's
 * volume `volumeId`, or undefined when it does.
 */
export function kubeletVolumeProblem(target: ResolvedTarget, drivername: string, volumeId: string): string | undefined {
  const volume = csiVolumeOf(target);
  if (!volume) return "the path is not a CSI volume's mount path";
  let text: string;
  try {
    text = readSmallFile(target);
  } catch (err) {
    return `kubelet's ${FILE_NAME} beside the target cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  let data: VolumeData;
  try {
    data = JSON.parse(text) as VolumeData;
  } catch {
    return `kubelet's ${FILE_NAME} beside the target is not JSON`;
  }
  if (data.driverName !== drivername) return `kubelet's ${FILE_NAME} names driver ${JSON.stringify(String(data.driverName)).slice(0, 100)}`;
  if (!volumeId || data.volumeHandle !== volumeId) return `kubelet's ${FILE_NAME} names another volume handle than this call's`;
  if (data.specVolID !== volume.volumeName) return `kubelet's ${FILE_NAME} names another volume than the path`;
  return undefined;
}

/** Reads the file in the checked parent directory, without following a symlink, only if it is a small regular file. */
function readSmallFile(target: ResolvedTarget): string {
  const parent = openTargetParent(target);
  try {
    const fd = openSync(`/proc/self/fd/${parent.fd}/${FILE_NAME}`, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new Error("not a regular file");
      if (st.size > MAX_BYTES) throw new Error(`larger than ${MAX_BYTES} bytes`);
      const buffer = Buffer.alloc(MAX_BYTES + 1);
      const length = readSync(fd, buffer, 0, buffer.length, 0);
      if (length > MAX_BYTES) throw new Error(`larger than ${MAX_BYTES} bytes`);
      return buffer.subarray(0, length).toString("utf8");
    } finally {
      closeSync(fd);
    }
  } finally {
    parent.close();
  }
}
