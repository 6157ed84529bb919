// The `objects` parameter: a YAML document whose `array` lists YAML strings,
// each a mapping that describes one Key Vault object. Scalars decode as
// yaml.v3 does into string fields (their literal text: `objectVersion: 1234`
// is "1234", `filePermission: 0755` is "0755"), `objectVersionHistory` as an
// int32 (a quoted value is refused, as upstream does). Every object is
// validated before any network I/O, and each error names the object.
//
// The provider imports this module on its first mount (objects-parser.ts),
// not at start-up: the YAML parser is about a sixth of the code it would
// otherwise compile before it answers, some 10 ms.
//
// Reading stays linear in the text: each text is lexed against a budget
// before it is built into a document (yaml-budget.ts), and duplicate keys are
// found with a set, in the mappings yaml.v3 decodes (the document's and each
// object's), with yaml.v3's message; the YAML library's own check compares
// every key with every other (30,000 keys: over 100 s).
import { isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node as YamlNode, type YAMLMap } from "yaml";
import { invalidArgument } from "../errors.ts";
import { YamlBudget } from "./yaml-budget.ts";
import {
  checkFileCount,
  checkPathConflicts,
  cleanFileName,
  isPattern,
  MAX_VERSION_HISTORY,
  OBJECT_TYPES,
  objectPrefix,
  parseFileMode,
  parseObjectTags,
  type KeyVaultObject,
  type ObjectLimits,
  type ObjectType,
  type ObjectWarning,
  type ParseObjectsResult,
} from "./objects.ts";

// objectTags and optional are this provider's extensions (upstream ignores both).
const STRING_FIELDS = ["objectName", "objectAlias", "objectVersion", "objectType", "objectFormat", "objectEncoding", "filePermission", "objectTags", "optional"] as const;
const KNOWN_FIELDS = new Set<string>([...STRING_FIELDS, "objectVersionHistory"]);

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

/** What yaml.v3 compares to call two keys the same: their kind and their value. */
function keyIdentity(key: unknown): string {
  if (isScalar(key)) return `scalar\n${String(key.value)}`;
  if (isAlias(key)) return `alias\n${key.source}`;
  return isMap(key) ? "map\n" : isSeq(key) ? "seq\n" : "null\n";
}

/** yaml.v3's error for a mapping that has a key twice (the first repeat), or undefined. */
function duplicateKey(map: YAMLMap, source: string): string | undefined {
  const seen = new Map<string, YamlNode | null>();
  for (const pair of map.items) {
    const identity = keyIdentity(pair.key);
    const first = seen.get(identity);
    if (first !== undefined) {
      const key = pair.key as YamlNode | null;
      const name = isScalar(key) ? String(key.value) : "";
      return `line ${lineOf(source, key)}: mapping key ${JSON.stringify(name)} already defined at line ${lineOf(source, first)}`;
    }
    seen.set(identity, pair.key as YamlNode | null);
  }
  return undefined;
}

function parseYaml(text: string, budgets: readonly YamlBudget[]): Document {
  YamlBudget.spend(text, budgets);
  return parseDocument(text, { schema: "failsafe", uniqueKeys: false, prettyErrors: false });
}

/** Parses the `objects` YAML into the list of raw item strings. */
export function parseObjectList(objects: string, budget?: YamlBudget): string[] {
  const doc = parseYaml(objects, budget ? [budget] : []);
  const problem = firstError(doc);
  if (problem) throw invalidArgument(`failed to yaml unmarshal objects, error: ${problem}`);
  const root = doc.contents;
  if (root === null || (isScalar(root) && scalarText(root) === "")) return [];
  if (!isMap(root)) {
    throw invalidArgument(`failed to yaml unmarshal objects, error: yaml: unmarshal errors:\n  line ${lineOf(objects, root)}: cannot unmarshal ${yamlTag(root)} into the objects mapping (expected "array:")`);
  }
  const duplicate = duplicateKey(root, objects);
  if (duplicate) throw invalidArgument(`failed to yaml unmarshal objects, error: yaml: unmarshal errors:\n  ${duplicate}`);
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

function parseItem(item: string, budgets: readonly YamlBudget[]): RawObject {
  const strings = Object.fromEntries(STRING_FIELDS.map((f) => [f, ""])) as RawObject["strings"];
  const result: RawObject = { strings, history: 0, unknownKeys: [] };
  const doc = parseYaml(item, budgets);
  const problem = firstError(doc);
  if (problem) throw new Error(problem);
  const root = doc.contents;
  if (root === null || (isScalar(root) && scalarText(root) === "")) return result;
  if (!isMap(root)) throw new Error(`yaml: unmarshal errors:\n  line ${lineOf(item, root)}: cannot unmarshal ${yamlTag(root)} into KeyVaultObject`);
  const duplicate = duplicateKey(root, item);
  if (duplicate) throw new Error(`yaml: unmarshal errors:\n  ${duplicate}`);
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

const TRUE_WORDS = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const FALSE_WORDS = new Set(["", "0", "f", "F", "FALSE", "false", "False"]);

/** optional: the words strconv.ParseBool takes, as the other boolean parameters. */
function parseOptional(text: string, fail: (message: string) => never): boolean {
  if (TRUE_WORDS.has(text)) return true;
  if (FALSE_WORDS.has(text)) return false;
  return fail(`optional "${text}" is neither "true" nor "false"`);
}

/**
 * A pattern's objectAlias is the prefix of every match's file ("" for none):
 * prefix + name must be a clean relative path, e.g. "certs/" or "app-".
 */
function checkFilePrefix(prefix: string, fail: (message: string) => never): void {
  if (prefix === "") return;
  const sample = `${prefix}x`;
  let clean: string;
  try {
    clean = cleanFileName(sample);
  } catch (err) {
    return fail(`objectAlias "${prefix}" (the prefix of every match's file): ${(err as Error).message}`);
  }
  if (clean !== sample) fail(`objectAlias "${prefix}" is the prefix of every match's file and must be a clean path ("dir/", "dir/name-"): write "${clean.slice(0, -1)}"`);
}

/** Parses and validates every object. Throws the first error (INVALID_ARGUMENT). */
export function parseObjects(objects: string, limits?: ObjectLimits): ParseObjectsResult {
  const items = parseObjectList(objects, limits && YamlBudget.forList(limits.maxObjects));
  if (limits && items.length > limits.maxObjects) {
    throw invalidArgument(
      `objects lists ${items.length} objects, more than the ${limits.maxObjects} this provider accepts in one mount (--max-objects-per-mount); split them over several SecretProviderClasses`,
    );
  }
  const parsed: KeyVaultObject[] = [];
  const unknownKeys: ParseObjectsResult["unknownKeys"] = [];
  const warnings: ObjectWarning[] = [];
  const itemsBudget = limits && YamlBudget.forItems(limits.maxObjects);
  items.forEach((item, index) => {
    let raw: RawObject;
    try {
      raw = parseItem(item, limits && itemsBudget ? [itemsBudget, YamlBudget.forItem(limits.maxObjects)] : []);
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
    const pattern = isPattern(s.objectName);
    const givenName = s.objectAlias || s.objectName;
    let fileName = givenName;
    if (pattern) {
      fileName = s.objectAlias;
      checkFilePrefix(s.objectAlias, fail);
    } else {
      try {
        fileName = cleanFileName(givenName);
      } catch (err) {
        fail((err as Error).message);
      }
    }
    if (fileName !== givenName && !pattern) {
      warnings.push({
        index,
        message: `${s.objectAlias ? "objectAlias" : "objectName"} "${givenName}" is written as "${fileName}" (upstream's driver refuses "${givenName}": invalid filepath); write "${fileName}"`,
        // in history mode upstream joins the name with the index, which cleans it too
        differsFromUpstream: raw.history <= 1,
      });
    }
    if (s.objectName === "") fail("objectName must not be empty");
    if (pattern) {
      if (!/^[0-9a-zA-Z*?-]{1,127}$/.test(s.objectName)) {
        fail(`objectName pattern "${s.objectName}" may hold only what Key Vault names hold (0-9, a-z, A-Z and -) and the wildcards * and ?, 1-127 characters`);
      }
      if (s.objectVersion !== "") fail(`objectVersion cannot be given with the objectName pattern "${s.objectName}": a pattern mounts the current version of every match`);
      if (raw.history !== 0) fail(`objectVersionHistory cannot be given with the objectName pattern "${s.objectName}": a pattern mounts the current version of every match`);
    } else if (!/^[0-9a-zA-Z-]{1,127}$/.test(s.objectName)) {
      fail(`objectName "${s.objectName}" is not a valid Key Vault object name (1-127 characters of 0-9, a-z, A-Z and -)`);
    }
    let tags: Record<string, string> = {};
    try {
      tags = parseObjectTags(s.objectTags);
    } catch (err) {
      fail((err as Error).message);
    }
    const optional = parseOptional(s.optional, fail);
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
      pattern,
      tags,
      optional,
    });
  });
  if (limits) checkFileCount(parsed, limits.maxFiles);
  checkPathConflicts(parsed);
  return { objects: parsed, unknownKeys, warnings };
}
