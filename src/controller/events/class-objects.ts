// Which SecretProviderClasses read which Key Vault objects: the index events
// are matched against. A class of the Azure provider names its vault in
// `keyvaultName` and its objects in `objects` (a YAML document whose `array`
// holds one YAML mapping per object: objectName, objectType secret|key|cert,
// objectVersion). A Key Vault event names (vault, object type, object name):
// a new certificate version announces the certificate, its key and its
// secret, each matching a class object of type cert, key or secret. Objects
// pinned to a version (objectVersion set, and not "latest") never change
// with a new version and are left out. Events are matched by name: a
// certificate, its key and its secret share the name and every version, so
// whichever of the three events arrives first refreshes every class that
// reads any of them (a plain secret and a plain key of the same name cost
// one needless read, no more). Names compare case-insensitively, as Key
// Vault's do. Only what a class names is indexed, so the index grows with
// the cluster's classes, never with what events say. The YAML parser is
// handed in, loaded only when events are on: without them the controller
// starts without it.
import type { SecretProviderClass } from "../../shared/kube/kube-types.ts";

export const AZURE_PROVIDER = "azure";

/** The `yaml` package's parse, as the controller loads it on demand. */
export type YamlParse = (text: string) => unknown;
/** More objects than a class may usefully name (the provider refuses far fewer). */
const MAX_OBJECTS_PER_CLASS = 1000;

export interface ClassObject {
  /** Lower case. */
  vault: string;
  /** The class's objectType: secret, key or cert. */
  objectType: string;
  /** Lower case. */
  objectName: string;
  /** objectVersion names a version: a new one changes nothing here. */
  pinned: boolean;
}

export interface ClassRef {
  namespace: string;
  name: string;
}

export const classKeyOf = (namespace: string, name: string) => `${namespace}/${name}`;

/** The Key Vault objects a class reads; [] for other providers or unreadable parameters. */
export function objectsOfClass(spc: SecretProviderClass, parse: YamlParse): ClassObject[] {
  if (spc.spec?.provider !== AZURE_PROVIDER) return [];
  const parameters = spc.spec.parameters ?? {};
  const vault = (parameters.keyvaultName ?? "").trim().toLowerCase();
  if (!vault) return [];
  let items: unknown;
  try {
    items = (parse(parameters.objects ?? "") as { array?: unknown } | null)?.array;
  } catch {
    return [];
  }
  if (!Array.isArray(items)) return [];
  const out: ClassObject[] = [];
  for (const item of items.slice(0, MAX_OBJECTS_PER_CLASS)) {
    let obj: unknown;
    try {
      obj = typeof item === "string" ? parse(item) : item;
    } catch {
      continue;
    }
    if (!obj || typeof obj !== "object") continue;
    const o = obj as Record<string, unknown>;
    const objectName = String(o.objectName ?? "").trim().toLowerCase();
    const objectType = String(o.objectType ?? "").trim();
    const version = String(o.objectVersion ?? "").trim();
    if (!objectName || !["secret", "key", "cert"].includes(objectType)) continue;
    out.push({ vault, objectType, objectName, pinned: version !== "" && version !== "latest" });
  }
  return out;
}

const objectKey = (vault: string, objectName: string) => `${vault}\0${objectName}`;

export class ClassObjectIndex {
  /** (vault, object name) -> classes. */
  private readonly byObject = new Map<string, Set<string>>();
  /** vault -> classes. */
  private readonly byVault = new Map<string, Set<string>>();
  /** class -> its index keys, to remove them again. */
  private readonly ofClass = new Map<string, { objects: string[]; vault?: string }>();

  private readonly parse: YamlParse;

  constructor(parse: YamlParse) {
    this.parse = parse;
  }

  get classCount(): number {
    return this.ofClass.size;
  }

  /** Indexes a class (again); a class of another provider is simply forgotten. */
  set(spc: SecretProviderClass): void {
    const key = classKeyOf(spc.metadata.namespace ?? "", spc.metadata.name);
    this.delete(spc.metadata.namespace ?? "", spc.metadata.name);
    const objects = objectsOfClass(spc, this.parse);
    if (objects.length === 0) return;
    const keys = [...new Set(objects.filter((o) => !o.pinned).map((o) => objectKey(o.vault, o.objectName)))];
    for (const k of keys) add(this.byObject, k, key);
    const vault = objects[0]!.vault;
    add(this.byVault, vault, key);
    this.ofClass.set(key, { objects: keys, vault });
  }

  delete(namespace: string, name: string): void {
    const key = classKeyOf(namespace, name);
    const known = this.ofClass.get(key);
    if (!known) return;
    for (const k of known.objects) remove(this.byObject, k, key);
    if (known.vault) remove(this.byVault, known.vault, key);
    this.ofClass.delete(key);
  }

  /** The classes that read an object of this name (of any type) from this vault. */
  classesFor(vault: string, objectName: string): ClassRef[] {
    const set = this.byObject.get(objectKey(vault.toLowerCase(), objectName.toLowerCase()));
    return [...(set ?? [])].map(refOf);
  }

  /** The classes that read anything from this vault, pinned versions included (access re-checks). */
  classesOfVault(vault: string): ClassRef[] {
    return [...(this.byVault.get(vault.toLowerCase()) ?? [])].map(refOf);
  }
}

function refOf(key: string): ClassRef {
  const slash = key.indexOf("/");
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

function add(map: Map<string, Set<string>>, key: string, value: string): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(value);
}

function remove(map: Map<string, Set<string>>, key: string, value: string): void {
  const set = map.get(key);
  set?.delete(value);
  if (set?.size === 0) map.delete(key);
}
