// The `objects` parameter: a YAML document whose `array` lists YAML strings,
// each a mapping that describes one Key Vault object. Scalars decode as
// yaml.v3 does into string fields (their literal text: `objectVersion: 1234`
// is "1234", `filePermission: 0755` is "0755"), `objectVersionHistory` as an
// int32 (a quoted value is refused, as upstream does). Every object is
// validated before any network I/O, and each error names the object.
import { posix } from "node:path";
import { isMap, isScalar, isSeq, parseDocument, type Document, type Node as YamlNode } from "yaml";
import { invalidArgument, ProviderError } from "./errors.ts";
import { hasControlCharacter, NAME_MAX_BYTES, PATH_MAX_BYTES } from "../shared/path-names.ts";

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
  /** alias, or name when there is no alias. */
  fileName: string;
}

const STRING_FIELDS = ["objectName", "objectAlias", "objectVersion", "objectType", "objectFormat", "objectEncoding", "filePermission"] as const;
const KNOWN_FIELDS = new Set<string>([...STRING_FIELDS, "objectVersionHistory"]);

/** The prefix upstream puts in front of every per-object error. */
export function objectPrefix(type: string, name: string, version: string): string {
  return `failed to get objectType:${type}, objectName:${name}, objectVersion:${version}: `;
}

export function describeObject(obj: Pick<KeyVaultObject, "objectType" | "objectName" | "objectAlias">): string {
  return obj.objectAlias ? `objectType:${obj.objectType}, objectName:${obj.objectName} (objectAlias ${obj.objectAlias})` : `objectType:${obj.objectType}, objectName:${obj.objectName}`;
}

function lineOf(source: string, node: YamlNode | null | undefined): number {
  const offset = node?.range?.[0] ?? 0;
  let line = 1;
  for (let i = 0; i < offset && i < source.length; i++) if (source.charCodeAt(i) === 10) line++;
  return line;
}

function yamlTag(node: unknown): string {
  if (isMap(node)) return "!!map";
  if (isSeq(node)) return "!!seq";
  return "!!str";
}

function firstError(doc: Document): string | undefined {
  const err = doc.errors[0];
  if (!err) return undefined;
  // yaml's messages quote the offending source; keep only the first line (code + position).
  return `yaml: ${err.message.split("\n")[0]}`;
}

/** A yaml.v3 null for a string field: empty, ~ or null. */
function scalarText(node: YamlNode): string {
  if (!isScalar(node)) return "";
  const text = String(node.value ?? "");
  if (node.type === "PLAIN" && /^(~|null|Null|NULL)?$/.test(text)) return "";
  return text;
}

/** Parses the `objects` YAML into the list of raw item strings. */
export function parseObjectList(objects: string): string[] {
  const doc = parseDocument(objects, { schema: "failsafe", uniqueKeys: true, prettyErrors: false });
  const problem = firstError(doc);
  if (problem) throw invalidArgument(`failed to yaml unmarshal objects, error: ${problem}`);
  const root = doc.contents;
  if (root === null || (isScalar(root) && scalarText(root) === "")) return [];
  if (!isMap(root)) {
    throw invalidArgument(`failed to yaml unmarshal objects, error: yaml: unmarshal errors:\n  line ${lineOf(objects, root)}: cannot unmarshal ${yamlTag(root)} into the objects mapping (expected "array:")`);
  }
  const array = root.get("array", true) as YamlNode | undefined;
  if (array === undefined || array === null || (isScalar(array) && scalarText(array) === "")) return [];
  if (!isSeq(array)) {
    throw invalidArgument(`failed to yaml unmarshal objects, error: yaml: unmarshal errors:\n  line ${lineOf(objects, array)}: cannot unmarshal ${yamlTag(array)} into []string`);
  }
  return array.items.map((item) => {
    if (item !== null && !isScalar(item)) {
      throw invalidArgument(`failed to yaml unmarshal objects, error: yaml: unmarshal errors:\n  line ${lineOf(objects, item as YamlNode)}: cannot unmarshal ${yamlTag(item)} into string`);
    }
    return item === null ? "" : scalarText(item);
  });
}

interface RawObject {
  strings: Record<(typeof STRING_FIELDS)[number], string>;
  history: number;
  unknownKeys: string[];
}

const INT32_MAX = 2 ** 31 - 1;

function parseInt32(node: YamlNode, source: string): number {
  const line = lineOf(source, node);
  if (!isScalar(node)) throw new Error(`line ${line}: cannot unmarshal ${yamlTag(node)} into int32`);
  const text = String(node.value ?? "");
  if (node.type !== "PLAIN") throw new Error(`line ${line}: cannot unmarshal !!str \`${text}\` into int32`);
  if (/^(~|null|Null|NULL)?$/.test(text)) return 0;
  const clean = text.replace(/_/g, "");
  let value: number;
  if (/^[-+]?\d+$/.test(clean)) value = Number.parseInt(clean, 10);
  else if (/^0x[0-9a-fA-F]+$/.test(clean)) value = Number.parseInt(clean.slice(2), 16);
  else if (/^0o[0-7]+$/.test(clean)) value = Number.parseInt(clean.slice(2), 8);
  else throw new Error(`line ${line}: cannot unmarshal !!str \`${text}\` into int32`);
  if (value > INT32_MAX || value < -INT32_MAX - 1) throw new Error(`line ${line}: cannot unmarshal !!int \`${text}\` into int32`);
  return value;
}

function parseItem(item: string): RawObject {
  const strings = Object.fromEntries(STRING_FIELDS.map((f) => [f, ""])) as RawObject["strings"];
  const result: RawObject = { strings, history: 0, unknownKeys: [] };
  const doc = parseDocument(item, { schema: "failsafe", uniqueKeys: true, prettyErrors: false });
  const problem = firstError(doc);
  if (problem) throw new Error(problem);
  const root = doc.contents;
  if (root === null || (isScalar(root) && scalarText(root) === "")) return result;
  if (!isMap(root)) throw new Error(`yaml: unmarshal errors:\n  line ${lineOf(item, root)}: cannot unmarshal ${yamlTag(root)} into KeyVaultObject`);
  const errors: string[] = [];
  for (const pair of root.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : "";
    const value = pair.value as YamlNode | null;
    if (!KNOWN_FIELDS.has(key)) {
      result.unknownKeys.push(key);
      continue;
    }
    try {
      if (key === "objectVersionHistory") {
        result.history = value === null ? 0 : parseInt32(value, item);
      } else if (value !== null) {
        if (!isScalar(value)) throw new Error(`line ${lineOf(item, value)}: cannot unmarshal ${yamlTag(value)} into string`);
        strings[key as (typeof STRING_FIELDS)[number]] = scalarText(value);
      }
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (errors.length) throw new Error(`yaml: unmarshal errors:\n  ${errors.join("\n  ")}`);
  return result;
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

/** Parses and validates every object. Throws the first error (INVALID_ARGUMENT). */
export function parseObjects(objects: string, limits?: ObjectLimits): ParseObjectsResult {
  const items = parseObjectList(objects);
  if (limits && items.length > limits.maxObjects) {
    throw invalidArgument(
      `objects lists ${items.length} objects, more than the ${limits.maxObjects} this provider accepts in one mount (--max-objects-per-mount); split them over several SecretProviderClasses`,
    );
  }
  const parsed: KeyVaultObject[] = [];
  const unknownKeys: ParseObjectsResult["unknownKeys"] = [];
  const warnings: ObjectWarning[] = [];
  items.forEach((item, index) => {
    let raw: RawObject;
    try {
      raw = parseItem(item);
    } catch (err) {
      throw invalidArgument(`unmarshal failed for keyVaultObjects at index ${index}, error: ${(err as Error).message}`);
    }
    if (raw.unknownKeys.length) unknownKeys.push({ index, keys: raw.unknownKeys });
    const s = Object.fromEntries(Object.entries(raw.strings).map(([k, v]) => [k, v.trim()])) as RawObject["strings"];
    const fail = (message: string): never => {
      throw invalidArgument(objectPrefix(s.objectType, s.objectName, s.objectVersion) + message);
    };
    if (!(OBJECT_TYPES as readonly string[]).includes(s.objectType)) fail("Invalid vaultObjectTypes. Should be secret, key, or cert");
    const objectType = s.objectType as ObjectType;
    const format = s.objectFormat.toLowerCase();
    if (format !== "" && format !== "pem" && format !== "pfx") fail(`invalid objectFormat: ${s.objectFormat}, should be PEM or PFX`);
    if (format === "pfx" && objectType !== "secret") {
      // upstream refuses only the exact lower-case "pfx" here; "PFX" passes and is ignored
      if (s.objectFormat === "pfx") fail("PFX format only supported for objectType: secret");
      warnings.push({
        index,
        message: `objectFormat "${s.objectFormat}" has no effect on objectType ${objectType}: the file is PEM, as upstream writes it (remove objectFormat, or use objectType secret to get the PFX)`,
        differsFromUpstream: false,
      });
    }
    const encoding = s.objectEncoding.toLowerCase();
    if (encoding !== "" && objectType !== "secret") fail("objectEncoding only supported for objectType: secret");
    if (encoding !== "" && encoding !== "utf-8" && encoding !== "hex" && encoding !== "base64") {
      fail(`invalid objectEncoding: ${s.objectEncoding}, should be hex, base64 or utf-8`);
    }
    const givenName = s.objectAlias || s.objectName;
    let fileName = givenName;
    try {
      fileName = cleanFileName(givenName);
    } catch (err) {
      fail((err as Error).message);
    }
    if (fileName !== givenName) {
      warnings.push({
        index,
        message: `${s.objectAlias ? "objectAlias" : "objectName"} "${givenName}" is written as "${fileName}" (upstream's driver refuses "${givenName}": invalid filepath); write "${fileName}"`,
        // in history mode upstream joins the name with the index, which cleans it too
        differsFromUpstream: raw.history <= 1,
      });
    }
    if (s.objectName === "") fail("objectName must not be empty");
    if (!/^[0-9a-zA-Z-]{1,127}$/.test(s.objectName)) {
      fail(`objectName "${s.objectName}" is not a valid Key Vault object name (1-127 characters of 0-9, a-z, A-Z and -)`);
    }
    if (s.objectVersion !== "" && !/^[0-9a-zA-Z-]+$/.test(s.objectVersion)) {
      fail(`objectVersion "${s.objectVersion}" is not a valid Key Vault version id`);
    }
    let fileMode: number | undefined;
    if (s.filePermission !== "") {
      try {
        fileMode = parseFileMode(s.filePermission);
      } catch (err) {
        fail((err as Error).message);
      }
    }
    if (raw.history > MAX_VERSION_HISTORY) {
      fail(`objectVersionHistory ${raw.history} is more than this provider reads (at most ${MAX_VERSION_HISTORY}, that is ${MAX_VERSION_HISTORY + 1} versions): lower it`);
    }
    parsed.push({
      index,
      objectName: s.objectName,
      objectType,
      objectAlias: s.objectAlias,
      objectVersion: s.objectVersion,
      objectVersionHistory: raw.history,
      objectFormat: format === "pfx" ? "pfx" : "pem",
      objectEncoding: encoding === "hex" || encoding === "base64" ? encoding : "utf-8",
      fileMode,
      fileName,
    });
  });
  if (limits) checkFileCount(parsed, limits.maxFiles);
  checkPathConflicts(parsed);
  return { objects: parsed, unknownKeys, warnings };
}

/** Files the objects can give at most (history mode: N+1 each), checked before any Key Vault request. */
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
  for (const obj of objects) claim(isHistoryMode(obj) ? `${obj.fileName}/` : obj.fileName, obj);
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
