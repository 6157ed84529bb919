// The target paths kubelet hands the driver, checked before anything touches
// the node: absolute and clean, no control characters, lengths counted in bytes
// as the kernel counts them, and confined to <kubelet-dir>/pods/. Path elements
// are then checked with lstat one by one, so no symlink anywhere below the pods
// directory can send a mount or a write somewhere else.
//
// The lstat calls are synchronous, as everywhere the driver inspects a target
// (volume-target.ts): each takes microseconds on kubelet's local directory, and
// through the thread pool each would cost a round trip, which on a busy node
// waits for a thread to be scheduled.
import { lstatSync } from "node:fs";
import { status } from "@grpc/grpc-js";
import { hasControlCharacter, pathNameProblem } from "../../shared/path-names.ts";
import { DriverError, ErrorType, invalidArgument } from "../errors.ts";

/** Why an absolute path is not clean (".", "..", "//", a trailing "/"), or undefined. */
function cleanProblem(path: string): string | undefined {
  if (!path.startsWith("/")) return "is not absolute";
  if (path === "/") return "is the root directory";
  const elements = path.slice(1).split("/");
  if (elements.some((e) => e === "")) return "is not clean (it has '//' or a trailing '/')";
  if (elements.some((e) => e === "." || e === "..")) return "is not clean (it has a '.' or '..' element)";
  return undefined;
}

/**
 * Checks a target path as a string; returns its elements below
 * <kubelet-dir>/pods. Throws InvalidArgument naming the path and the problem.
 */
export function checkTargetPath(target: string, kubeletDir: string): string[] {
  const problem = pathNameProblem(target) ?? cleanProblem(target);
  // Quoted only when it holds control characters, so the message stays one line.
  if (problem) throw invalidArgument(`Target path ${hasControlCharacter(target) ? JSON.stringify(target) : target} ${problem}`);
  const podsDir = `${kubeletDir === "/" ? "" : kubeletDir}/pods`;
  if (!target.startsWith(`${podsDir}/`)) {
    throw invalidArgument(`Target path ${target} is not under ${podsDir}/ (kubelet's pods directory; see --kubelet-dir)`);
  }
  return target.slice(podsDir.length + 1).split("/");
}

export type TargetEntry = "absent" | "directory" | "symlink" | "file" | "other";

/** An element above the target is missing, or is not a real directory. */
export class TargetParentError extends DriverError {
  readonly missing: boolean;
  constructor(message: string, missing: boolean) {
    super(status.FAILED_PRECONDITION, ErrorType.FailedToEnsureMountPoint, message);
    this.missing = missing;
  }
}

/**
 * Walks from <kubelet-dir>/pods down to the target with lstat: every element
 * above the target must be a real directory. Returns what the target itself is.
 * A missing parent is FailedPrecondition: kubelet creates it (CSI spec), the
 * driver creates only the target.
 */
export function walkTarget(target: string, kubeletDir: string, relative: readonly string[]): TargetEntry {
  const podsDir = `${kubeletDir === "/" ? "" : kubeletDir}/pods`;
  const paths = relative.map((_, i) => `${podsDir}/${relative.slice(0, i + 1).join("/")}`);
  const entries = paths.map(entryAt);
  for (let i = 0; i < paths.length - 1; i++) {
    if (entries[i] === "absent") throw new TargetParentError(`parent directory ${paths[i]} of target path ${target} does not exist`, true);
    if (entries[i] !== "directory") {
      throw new TargetParentError(`target path ${target} is refused: ${paths[i]} is ${entries[i] === "symlink" ? "a symlink" : "not a directory"}`, false);
    }
  }
  return entries.at(-1)!;
}

function entryAt(path: string): TargetEntry {
  try {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return "symlink";
    if (st.isDirectory()) return "directory";
    if (st.isFile()) return "file";
    return "other";
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "absent";
    throw err;
  }
}
