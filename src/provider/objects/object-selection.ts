// Objects chosen by pattern or tag (an extension beyond upstream): an
// objectName with `*` or `?` stands for every enabled object of its type
// whose name matches, as the vault's list operation describes them, and
// objectTags keeps those that carry every tag asked for. Each match becomes
// a plain object of the mount (read like one named in the list), written at
// `<objectAlias><name>`; its object version has the id `<type>/<name>`.
// What a certificate manages (its secret and its key) is never a match: it
// is mounted with objectType cert, or by naming it.
import { invalidArgument, ProviderError } from "../errors.ts";
import { carriesTags, checkFileCount, checkPathConflicts, patternRegExp, type KeyVaultObject, type ObjectLimits } from "./objects.ts";

/** What a list operation says about an object (keyvault.ts ListedObject). */
export interface ListedEntry {
  name: string;
  enabled: boolean;
  managed: boolean;
  tags: Record<string, string>;
}

/** The matches of a pattern object, as plain objects, sorted by name. */
export function selectMatches(pattern: KeyVaultObject, listed: readonly ListedEntry[]): KeyVaultObject[] {
  const regex = patternRegExp(pattern.objectName);
  return listed
    .filter((o) => o.enabled && !o.managed && regex.test(o.name) && carriesTags(o.tags, pattern.tags))
    .map((o) => o.name)
    .sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : a.toLowerCase() > b.toLowerCase() ? 1 : 0))
    .map((name) => ({ ...pattern, objectName: name, fileName: `${pattern.fileName}${name}`, pattern: false, tags: {} }));
}

/** One entry of the objects list with what it stands for: itself, or a pattern's matches. */
export interface Selection {
  source: KeyVaultObject;
  objects: KeyVaultObject[];
}

/**
 * The bounds of one mount (--max-objects-per-mount, --max-files-per-mount)
 * and the file conflicts, checked again on the objects the patterns stand
 * for, before any of them is read. An error names the pattern with the most
 * matches and their count.
 */
export function checkSelection(selections: readonly Selection[], limits: ObjectLimits): void {
  const objects = selections.flatMap((s) => s.objects);
  const widest = selections.filter((s) => s.source.pattern).reduce<Selection | undefined>((a, b) => (!a || b.objects.length > a.objects.length ? b : a), undefined);
  const naming = widest ? `the objectName pattern "${widest.source.objectName}" (objects[${widest.source.index}]) matches ${widest.objects.length} objects of type ${widest.source.objectType}` : "";
  if (objects.length > limits.maxObjects) {
    throw invalidArgument(
      `${naming}: with the others that makes ${objects.length} objects, more than the ${limits.maxObjects} this provider reads in one mount (--max-objects-per-mount); narrow the pattern or add objectTags`,
    );
  }
  try {
    checkFileCount(objects, limits.maxFiles);
  } catch (err) {
    if (!(err instanceof ProviderError) || !widest) throw err;
    throw invalidArgument(`${naming}: ${err.message}; narrow the pattern or add objectTags`);
  }
  checkPathConflicts(objects);
}
