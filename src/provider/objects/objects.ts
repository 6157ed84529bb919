// The Key Vault objects of one mount, as the `objects` parameter lists them:
// the fields, the checks on file names, modes and counts, and the conflicts
// between files. Reading the YAML itself is objects-yaml.ts, which the
// provider loads on its first mount.
import { posix } from "node:path";
import { invalidArgument, ProviderError } from "../errors.ts";
import { hasControlCharacter, NAME_MAX_BYTES, PATH_MAX_BYTES } from "../../shared/path-names.ts";

export const OBJECT_TYPES = ["secret", "key", "cert"] as const;
export type ObjectType = (typeof OBJECT_TYPES)[number];
export type ObjectEncoding = "utf-8" | "hex" | "base64";
export type ObjectFormat = "pem" | "pfx";

/**
 * Largest accepted objectVersionHistory (upstream has no limit; N+1 versions
 * are read, so this bounds the Key Vault reads of one object).
 */
export const MAX_VERSION_HISTORY = 1000;

export interface KeyVaultObject {
  /** Position in the `array` list. */
  index: number;
  objectName: string;
  objectType: ObjectType;
  objectAlias: string;
  objectVersion: string;
  objectVersionHistory: number;
  objectFormat: ObjectFormat;
  objectEncoding: ObjectEncoding;
  /** Mode from filePermission, or undefined for the request's default. */
  fileMode: number | undefined;
  /**
   * alias, or name when there is no alias. For a pattern, the prefix of every
   * match's file (the alias as given, "" without one).
   */
  fileName: string;
  /**
   * Extension: objectName holds `*` or `?` (which no Key Vault name holds):
   * every enabled object of objectType whose name matches (object-selection.ts).
   */
  pattern: boolean;
  /** Extension: objectTags, the tags (name -> value) the object must carry; empty for none. */
  tags: Record<string, string>;
  /** Extension: optional "true": a missing or disabled object is left out of the volume. */
  optional: boolean;
}

/** Key Vault's limits on an object's tags: 15 of them, names up to 512 and values up to 256 characters. */
export const MAX_OBJECT_TAGS = 15;
const MAX_TAG_NAME = 512;
const MAX_TAG_VALUE = 256;

/** Whether objectName is a pattern (an extension: `*` and `?` never occur in a Key Vault name). */
export function isPattern(objectName: string): boolean {
  return /[*?]/.test(objectName);
}

/** A pattern as a regular expression: `*` any run of characters, `?` one; case-insensitive, as Key Vault names are. */
export function patternRegExp(pattern: string): RegExp {
  const body = [...pattern].map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[-\\^$.|+()[\]{}]/g, "\\$&"))).join("");
  return new RegExp(`^${body}$`, "i");
}

/** objectTags "name=value,name2=value2" as a map; throws naming what is wrong. */
export function parseObjectTags(text: string): Record<string, string> {
  const tags: Record<string, string> = {};
  if (text === "") return tags;
  const entries = text.split(",");
  if (entries.length > MAX_OBJECT_TAGS) throw new Error(`objectTags lists ${entries.length} tags; a Key Vault object carries at most ${MAX_OBJECT_TAGS}`);
  for (const entry of entries) {
    const cut = entry.indexOf("=");
    const name = (cut < 0 ? entry : entry.slice(0, cut)).trim();
    if (cut < 0 || name === "") throw new Error(`objectTags "${text.slice(0, 100)}" is not a list of name=value pairs separated by commas`);
    const value = entry.slice(cut + 1).trim();
    if (name.length > MAX_TAG_NAME || value.length > MAX_TAG_VALUE) {
      throw new Error(`objectTags: a tag name has at most ${MAX_TAG_NAME} characters and a value at most ${MAX_TAG_VALUE} (Key Vault's limits)`);
    }
    if (Object.hasOwn(tags, name)) throw new Error(`objectTags names the tag "${name}" twice`);
    tags[name] = value;
  }
  return tags;
}

/** Whether an object's tags include every tag asked for (names and values exact). */
export function carriesTags(objectTags: Readonly<Record<string, string>> | undefined, wanted: Readonly<Record<string, string>>): boolean {
  return Object.entries(wanted).every(([name, value]) => objectTags !== undefined && Object.hasOwn(objectTags, name) && objectTags[name] === value);
}

/** "env=prod, team=a" for messages. */
export function describeTags(tags: Readonly<Record<string, string>>): string {
  return Object.entries(tags)
    .map(([name, value]) => `${name}=${value}`)
    .join(", ");
}


/** The prefix upstream puts in front of every per-object error. */
export function objectPrefix(type: string, name: string, version: string): string {
  return `failed to get objectType:${type}, objectName:${name}, objectVersion:${version}: `;
}

export function describeObject(obj: Pick<KeyVaultObject, "objectType" | "objectName" | "objectAlias">): string {
  return obj.objectAlias ? `objectType:${obj.objectType}, objectName:${obj.objectName} (objectAlias ${obj.objectAlias})` : `objectType:${obj.objectType}, objectName:${obj.objectName}`;
}

/** Parses an octal file mode as upstream (ParseInt base 8), but refuses what it silently turned into 0. */
export function parseFileMode(text: string): number {
  if (!/^[0-7]{1,4}$/.test(text)) throw new Error(`filePermission "${text}" is not an octal file mode such as 0644, 0640 or 0400`);
  const mode = Number.parseInt(text, 8);
  if (mode > 0o777) throw new Error(`filePermission "${text}" must be at most 0777 (setuid, setgid and sticky bits are not supported)`);
  return mode;
}

/**
 * Checks a file name (alias or name) as upstream's provider does (relative,
 * no "..") and returns its clean form, the path upstream's driver requires:
 * "./x", "a//b", "a/./b" and "dir/" become "x", "a/b" and "dir". Upstream's
 * provider passes such names on and its driver then refuses the mount
 * (`invalid filepath`); here the volume gets the clean path, with a warning.
 */
export function cleanFileName(name: string): string {
  if (name === "") throw new Error("file name must not be empty");
  if (name.startsWith("/")) throw new Error("file name must be a relative path");
  if (name.includes("..")) throw new Error("file name must not contain '..'");
  if (hasControlCharacter(name)) throw new Error(`file name ${JSON.stringify(name)} must not contain a control character (newline, tab, NUL, ...)`);
  const clean = posix.normalize(name).replace(/\/+$/, "");
  if (clean === "." || clean === "") throw new Error(`file name "${name}" names the volume itself, not a file in it: give the object a file name`);
  if (clean.split("/").some((p) => Buffer.byteLength(p) > NAME_MAX_BYTES)) throw new Error(`file name "${name}" has a path segment longer than ${NAME_MAX_BYTES} bytes`);
  if (Buffer.byteLength(clean) > PATH_MAX_BYTES) throw new Error(`file name is longer than ${PATH_MAX_BYTES} bytes`);
  return clean;
}

/** Bounds of one mount (--max-objects-per-mount, --max-files-per-mount). */
export interface ObjectLimits {
  maxObjects: number;
  maxFiles: number;
}

export interface ParseObjectsResult {
  objects: KeyVaultObject[];
  /** Keys that were ignored (typos such as "objectname"), per object index, for a warning. */
  unknownKeys: Array<{ index: number; keys: string[] }>;
  /** What was accepted but read differently from how it is written (upstream's quirks), for a warning. */
  warnings: ObjectWarning[];
}

export interface ObjectWarning {
  index: number;
  message: string;
  /** Upstream gives another volume (its driver refuses what is mounted here). */
  differsFromUpstream: boolean;
}

/**
 * Files the objects can give at most (history mode: N+1 each), checked
 * before any Key Vault request. A pattern counts as one here; its matches
 * are counted again once listed.
 */
export function checkFileCount(objects: readonly KeyVaultObject[], maxFiles: number): void {
  const files = objects.reduce((n, obj) => n + (isHistoryMode(obj) ? obj.objectVersionHistory + 1 : 1), 0);
  if (files > maxFiles) {
    throw invalidArgument(
      `objects would give up to ${files} files (objectVersionHistory N counts N+1), more than the ${maxFiles} this provider returns for one mount (--max-files-per-mount)`,
    );
  }
}

/** True when the object is read in multi-version mode (files `<name>/<i>`). */
export function isHistoryMode(obj: KeyVaultObject): boolean {
  return obj.objectVersionHistory > 1;
}

/** `i` when `segment` is the decimal index i of a history file ("0", "1", ...). */
function historyIndex(segment: string): number | undefined {
  return /^(0|[1-9][0-9]{0,9})$/.test(segment) ? Number(segment) : undefined;
}

/**
 * Refuses two objects writing the same file, or one writing a file where
 * another needs a directory (`a` and `a/b`, or `a` and history folder `a/`,
 * or `h/1` and the history files `h/0` ... `h/<N>`).
 */
export function checkPathConflicts(objects: readonly KeyVaultObject[]): void {
  // path -> owner; a history object owns the directory `<name>/`
  const owners = new Map<string, KeyVaultObject>();
  const claim = (path: string, obj: KeyVaultObject) => {
    const other = owners.get(path);
    if (other && other !== obj) throw conflictError(path.replace(/\/$/, ""), other, obj);
    owners.set(path, obj);
  };
  // a pattern's files are known once it is listed (object-selection.ts checks them then)
  for (const obj of objects) if (!obj.pattern) claim(isHistoryMode(obj) ? `${obj.fileName}/` : obj.fileName, obj);
  for (const [path, obj] of owners) {
    const segments = path.replace(/\/$/, "").split("/");
    if (path.endsWith("/")) {
      const file = owners.get(segments.join("/"));
      if (file && file !== obj) throw conflictError(segments.join("/"), file, obj);
    }
    for (let i = 1; i < segments.length; i++) {
      const parent = segments.slice(0, i).join("/");
      const file = owners.get(parent);
      if (file && file !== obj) throw conflictError(parent, file, obj);
      // inside another object's history folder: only its numbered files clash
      const history = owners.get(`${parent}/`);
      const index = historyIndex(segments[i]!);
      if (history && history !== obj && index !== undefined && index <= history.objectVersionHistory) {
        throw conflictError(`${parent}/${index}`, history, obj);
      }
    }
  }
}

export function conflictError(path: string, first: Pick<KeyVaultObject, "objectType" | "objectName" | "objectAlias">, second: Pick<KeyVaultObject, "objectType" | "objectName" | "objectAlias">): ProviderError {
  return invalidArgument(`file "${path}" would be written by both ${describeObject(first)} and ${describeObject(second)}: give one of them a different objectAlias`);
}
