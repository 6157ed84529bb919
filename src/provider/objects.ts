// The `objects` parameter: a YAML document whose `array` lists YAML strings,
// each a mapping that describes one Key Vault object. Scalars decode as
// yaml.v3 does into string fields (their literal text: `objectVersion: 1234`
// is "1234", `filePermission: 0755` is "0755"), `objectVersionHistory` as an
// int32 (a quoted value is refused, as upstream does). Every object is
// validated before any network I/O, and each error names the object.
import { isMap, isScalar, isSeq, parseDocument, type Document, type Node as YamlNode } from "yaml";
import { invalidArgument, ProviderError } from "./errors.ts";
import { hasControlCharacter } from "../shared/path-names.ts";

export const OBJECT_TYPES = ["secret", "key", "cert"] as const;
export type ObjectType = (typeof OBJECT_TYPES)[number];
export type ObjectEncoding = "utf-8" | "hex" | "base64";
export type ObjectFormat = "pem" | "pfx";

/** Largest accepted objectVersionHistory (upstream has no limit). */
export const MAX_VERSION_HISTORY = 100;

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
 * Checks a file name (alias or name): relative, clean, no "..", as the
 * driver's writer will require, so the error comes early and names the object.
 */
export function validateFileName(name: string): void {
  if (name === "") throw new Error("file name must not be empty");
  if (name.startsWith("/") || name.startsWith("\\") || /^[A-Za-z]:/.test(name)) throw new Error("file name must be a relative path");
  if (name.includes("..")) throw new Error("file name must not contain '..'");
  if (name.includes("\\")) throw new Error(`file name "${name}" must not contain a backslash`);
  if (hasControlCharacter(name)) throw new Error(`file name ${JSON.stringify(name)} must not contain a control character (newline, tab, NUL, ...)`);
  const parts = name.split("/");
  if (parts.some((p) => p === "" || p === ".")) {
    throw new Error(`file name "${name}" is not a clean path (no empty or "." segments, no leading "./" or trailing "/")`);
  }
  if (parts.some((p) => Buffer.byteLength(p) > 255)) throw new Error(`file name "${name}" has a path segment longer than 255 bytes`);
  if (Buffer.byteLength(name) > 4096) throw new Error("file name is longer than 4096 bytes");
}

export interface ParseObjectsResult {
  objects: KeyVaultObject[];
  /** Keys that were ignored (typos such as "objectname"), per object index, for a warning. */
  unknownKeys: Array<{ index: number; keys: string[] }>;
}

/** Parses and validates every object. Throws the first error (INVALID_ARGUMENT). */
export function parseObjects(objects: string): ParseObjectsResult {
  const items = parseObjectList(objects);
  const parsed: KeyVaultObject[] = [];
  const unknownKeys: ParseObjectsResult["unknownKeys"] = [];
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
    if (format === "pfx" && objectType !== "secret") fail("PFX format only supported for objectType: secret");
    const encoding = s.objectEncoding.toLowerCase();
    if (encoding !== "" && objectType !== "secret") fail("objectEncoding only supported for objectType: secret");
    if (encoding !== "" && encoding !== "utf-8" && encoding !== "hex" && encoding !== "base64") {
      fail(`invalid objectEncoding: ${s.objectEncoding}, should be hex, base64 or utf-8`);
    }
    const fileName = s.objectAlias || s.objectName;
    try {
      validateFileName(fileName);
    } catch (err) {
      fail((err as Error).message);
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
    if (raw.history < 0 || raw.history > MAX_VERSION_HISTORY) {
      fail(`objectVersionHistory ${raw.history} is out of range, must be between 0 and ${MAX_VERSION_HISTORY}`);
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
  checkPathConflicts(parsed);
  return { objects: parsed, unknownKeys };
}

/** True when the object is read in multi-version mode (files `<name>/<i>`). */
export function isHistoryMode(obj: KeyVaultObject): boolean {
  return obj.objectVersionHistory > 1;
}

/**
 * The paths an object certainly writes: its file, or in history mode the
 * folder `<name>/` holding `<name>/0` … `<name>/<N>`.
 */
function claimedPaths(obj: KeyVaultObject): { files: string[]; dirs: string[] } {
  if (isHistoryMode(obj)) {
    const files: string[] = [];
    for (let i = 0; i <= obj.objectVersionHistory; i++) files.push(`${obj.fileName}/${i}`);
    return { files, dirs: [obj.fileName] };
  }
  return { files: [obj.fileName], dirs: [] };
}

/**
 * Refuses two objects writing the same file, or one writing a file where
 * another needs a directory (`a` and `a/b`, or `a` and history folder `a/`).
 */
export function checkPathConflicts(objects: readonly KeyVaultObject[]): void {
  const owners = new Map<string, KeyVaultObject>();
  const claim = (path: string, obj: KeyVaultObject) => {
    const other = owners.get(path);
    if (other && other !== obj) throw conflictError(path, other, obj);
    owners.set(path, obj);
  };
  for (const obj of objects) {
    const { files, dirs } = claimedPaths(obj);
    for (const f of files) claim(f, obj);
    for (const d of dirs) claim(`${d}/`, obj);
  }
  // a file that is also a parent directory of another path
  for (const [path, obj] of owners) {
    if (path.endsWith("/")) {
      const file = owners.get(path.slice(0, -1));
      if (file && file !== obj) throw conflictError(path.slice(0, -1), file, obj);
      continue;
    }
    const segments = path.split("/");
    for (let i = 1; i < segments.length; i++) {
      const parent = segments.slice(0, i).join("/");
      const other = owners.get(parent);
      if (other && other !== obj) throw conflictError(parent, other, obj);
    }
  }
}

export function conflictError(path: string, first: Pick<KeyVaultObject, "objectType" | "objectName" | "objectAlias">, second: Pick<KeyVaultObject, "objectType" | "objectName" | "objectAlias">): ProviderError {
  return invalidArgument(`file "${path}" would be written by both ${describeObject(first)} and ${describeObject(second)}: give one of them a different objectAlias`);
}
