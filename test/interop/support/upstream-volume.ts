// Would upstream's driver (v1.6.0) turn a provider's Mount answer into a valid
// volume? Its rules, from pkg/secrets-store/provider_client.go and
// pkg/util/fileutil (the atomic writer it vendors from kubelet): at least one
// object version; every path relative, no "..", elements ≤ 255 and paths ≤ 4096
// characters, and filepath.Clean(path) == path; files go into a map by path
// (the last of two writers wins); a file cannot also be a directory. Beyond
// what it refuses, a volume is broken when a file cannot be read (mode 0),
// when the mode asks for bits it drops (setuid, setgid, sticky), or when an
// object of the class got no file at all. The driver interop tests check the
// decisive ones against the real upstream driver.
import { posix } from "node:path";

export interface ProviderAnswer {
  object_version: Array<{ id: string; version: string }>;
  files: Array<{ path: string; mode: number; contents: Buffer }>;
}

/** What the upstream driver refuses outright (its error text), or undefined. */
export function upstreamDriverRefusal(answer: ProviderAnswer): string | undefined {
  if (answer.object_version.length === 0) return "missing object versions";
  for (const { path } of answer.files) {
    if (path === "") return `invalid path: must not be empty: "${path}"`;
    if (path.startsWith("/")) return `invalid path: must be relative path: ${path}`;
    if (path.length > 4096) return "invalid path: must be less than or equal to 4096 characters";
    const items = path.split("/");
    if (items.includes("..")) return `invalid path: must not contain '..': ${path}`;
    if (items.some((item) => item.length > 255)) return "invalid path: filenames must be less than or equal to 255 characters";
    if (items[0]!.startsWith("..") && items[0]!.length > 2) return `invalid path: must not start with '..': ${path}`;
    if (posix.normalize(path).replace(/\/$/, "") !== path) return `invalid filepath: ${JSON.stringify(path)}`;
  }
  const paths = answer.files.map((f) => f.path);
  for (const path of paths) {
    if (paths.some((other) => other.startsWith(`${path}/`))) return `"${path}" is both a file and a directory (the atomic writer fails)`;
  }
  return undefined;
}

/** Why upstream's answer does not give the volume the class asks for, or undefined when it does. */
export function upstreamVolumeProblem(answer: ProviderAnswer, objects: ReadonlyArray<{ objectType: string; objectName: string }>): string | undefined {
  const refusal = upstreamDriverRefusal(answer);
  if (refusal) return `upstream's driver refuses it: ${refusal}`;
  const seen = new Set<string>();
  for (const { path } of answer.files) {
    if (seen.has(path)) return `two files at "${path}": upstream's driver keeps the last one, the other object is lost`;
    seen.add(path);
  }
  for (const { path, mode } of answer.files) {
    if ((mode & 0o777) === 0) return `"${path}" gets mode 0 (no one can read it)`;
    if (mode & ~0o777) return `"${path}" asks for mode 0${mode.toString(8)}: setuid, setgid and sticky bits are dropped (the file gets 0${(mode & 0o777).toString(8)})`;
  }
  for (const [i, obj] of objects.entries()) {
    const id = `${obj.objectType}/${obj.objectName}`;
    if (!answer.object_version.some((v) => v.id === id || v.id.startsWith(`${id}/`))) {
      return `no file for objects[${i}] (${obj.objectName}): upstream leaves it out without an error`;
    }
  }
  return undefined;
}
