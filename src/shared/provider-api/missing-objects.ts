// An object a provider was allowed to do without (the Azure provider's
// `optional: "true"`) and did not find: the provider's Mount answer leaves
// its file out and reports it among the object versions, with a version that
// says so instead of a version of the object:
//
//   { id: "secret/db-password", version: "(missing) db-password" }
//
// "(missing)", then, after one space, the file the object would have been
// written to (nothing when no file name is known, e.g. a pattern that matched
// nothing). Real versions never start with "(" (Key Vault's are 32 hex
// digits; other providers use numbers, UUIDs or labels), and the id is the
// one the object has when present, so its appearance later is an ordinary
// version change to the driver's rotation.
//
// This driver raises a Warning event on the pod naming the object and leaves
// the file's keys out of synced Secrets. Upstream's driver needs nothing: it
// records the entry in the SecretProviderClassPodStatus like any version, and
// its rotation only compares versions.

export const MISSING_VERSION = "(missing)";

/** A provider-chosen string in an event or a log: one line, bounded. */
const MAX_TEXT = 200;

/** The version a provider reports for an object it left out; `file` is where it would have been written. */
export function missingVersion(file?: string): string {
  return file ? `${MISSING_VERSION} ${file}` : MISSING_VERSION;
}

export interface MissingObject {
  id: string;
  /** The file it would have been written to, when the provider says. */
  file?: string;
}

/** The objects an answer reports missing, in its order. */
export function missingObjects(versions: ReadonlyArray<{ id: string; version: string }>): MissingObject[] {
  const out: MissingObject[] = [];
  for (const v of versions) {
    if (v.version === MISSING_VERSION) out.push({ id: v.id });
    else if (v.version.startsWith(`${MISSING_VERSION} `)) out.push({ id: v.id, file: v.version.slice(MISSING_VERSION.length + 1) });
  }
  return out;
}

/** The files of missing objects: a synced Secret leaves out keys read from them (or from below them). */
export function missingFiles(versions: ReadonlyArray<{ id: string; version: string }>): Set<string> {
  return new Set(missingObjects(versions).flatMap((m) => (m.file ? [m.file] : [])));
}

/** Whether `path` is a missing object's file, or a file below one (history versions). */
export function isMissingFile(path: string, files: ReadonlySet<string>): boolean {
  if (files.has(path)) return true;
  for (let cut = path.lastIndexOf("/"); cut > 0; cut = path.lastIndexOf("/", cut - 1)) {
    if (files.has(path.slice(0, cut))) return true;
  }
  return false;
}

/** "secret/a (file a), key/b (file b)": at most `max` named, each bounded, for an event. */
export function describeMissing(objects: readonly MissingObject[], max = 5): string {
  const clip = (text: string) => {
    const line = text.replace(/\s+/g, " ");
    return line.length > MAX_TEXT ? `${line.slice(0, MAX_TEXT)}…` : line;
  };
  const named = objects.slice(0, max).map((m) => (m.file ? `${clip(m.id)} (file ${clip(m.file)})` : clip(m.id)));
  const more = objects.length > max ? `, and ${objects.length - max} more` : "";
  return named.join(", ") + more;
}
