// Where the lint finds SecretProviderClasses: YAML or JSON manifests (files,
// or directories searched recursively, multi-document files and List kinds
// included), or every namespace of a live cluster. A file that cannot be read
// (missing, not a regular file, too large, not YAML, too slow to parse) is
// reported by name and the others are still checked.
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import type { SecretProviderClass } from "../shared/kube/kube-types.ts";
import { SPC_API_GROUP } from "./check-class.ts";
import { ManifestParser } from "./manifest-parser.ts";
import { errnoText, ManifestError, readManifest } from "./read-manifest.ts";

export interface FoundClass {
  spc: SecretProviderClass;
  source: string;
}

/** A manifest that could not be read; the lint reports it and fails. */
export class SourceError extends Error {
  override readonly name = "SourceError";
}

const MANIFEST = /\.(ya?ml|json)$/i;

/** The manifest files under `path` (a file given by name is taken whatever its name); unreadable directories go to `errors`. */
async function manifestFiles(path: string, errors: ManifestError[]): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    errors.push(new ManifestError(path, errnoText(err)));
    return [];
  }
  if (!info.isDirectory()) return [path];
  let entries;
  try {
    entries = await readdir(path, { withFileTypes: true });
  } catch (err) {
    errors.push(new ManifestError(path, errnoText(err)));
    return [];
  }
  const out: string[] = [];
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith(".")) continue;
    const child = join(path, entry.name);
    // symlinked directories are not followed (no loops); a symlinked *.yaml is read if it leads to a regular file
    if (entry.isDirectory()) out.push(...(await manifestFiles(child, errors)));
    else if (MANIFEST.test(entry.name)) out.push(child);
  }
  return out;
}

function isSecretProviderClass(doc: unknown): doc is SecretProviderClass {
  const d = doc as { kind?: unknown; apiVersion?: unknown } | null;
  return d !== null && typeof d === "object" && d.kind === "SecretProviderClass" && typeof d.apiVersion === "string" && d.apiVersion.startsWith(`${SPC_API_GROUP}/`);
}

function classesIn(doc: unknown): SecretProviderClass[] {
  if (isSecretProviderClass(doc)) return [doc];
  const list = doc as { kind?: unknown; items?: unknown } | null;
  if (list && typeof list === "object" && typeof list.kind === "string" && list.kind.endsWith("List") && Array.isArray(list.items)) {
    return list.items.flatMap(classesIn);
  }
  return [];
}

export interface ReadLimits {
  /** Largest manifest file read (--max-file-bytes). */
  maxFileBytes: number;
  /** Longest time one file may take to parse (--timeout). */
  timeoutMs: number;
}

/** SecretProviderClasses in the given files and directories, in path order, and the files that could not be read. */
export async function classesFromPaths(paths: readonly string[], limits: ReadLimits): Promise<{ found: FoundClass[]; errors: ManifestError[] }> {
  const found: FoundClass[] = [];
  const errors: ManifestError[] = [];
  const parser = new ManifestParser(limits.timeoutMs);
  try {
    for (const path of paths) {
      for (const file of await manifestFiles(path, errors)) {
        let text: string;
        try {
          text = await readManifest(file, limits.maxFileBytes);
        } catch (err) {
          if (!(err instanceof ManifestError)) throw err;
          errors.push(err);
          continue;
        }
        const parsed = await parser.parse(text);
        if (!parsed.ok) {
          errors.push(new ManifestError(file, parsed.message));
          continue;
        }
        const classes = parsed.docs.flatMap(classesIn);
        const unnamed = classes.find((spc) => !spc.metadata || typeof spc.metadata.name !== "string");
        if (unnamed) {
          errors.push(new ManifestError(file, "a SecretProviderClass without metadata.name"));
          continue;
        }
        found.push(...classes.map((spc) => ({ spc, source: file })));
      }
    }
  } finally {
    parser.close();
  }
  return { found, errors };
}

/** Every SecretProviderClass of the cluster, all namespaces (needs list on secretproviderclasses). */
export async function classesFromCluster(kubeconfig: string, context?: string): Promise<FoundClass[]> {
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(kubeconfig);
    if (context) kc.setCurrentContext(context);
  } catch (err) {
    throw new SourceError(`${kubeconfig}: ${(err as Error).message}`);
  }
  const api = kc.makeApiClient(CustomObjectsApi);
  const found: FoundClass[] = [];
  let _continue: string | undefined;
  do {
    let page: { items?: SecretProviderClass[]; metadata?: { continue?: string } };
    try {
      page = (await api.listClusterCustomObject({ group: SPC_API_GROUP, version: "v1", plural: "secretproviderclasses", limit: 500, _continue })) as typeof page;
    } catch (err) {
      const code = (err as { code?: number }).code;
      throw new SourceError(`listing SecretProviderClasses in ${kc.getCurrentCluster()?.server ?? "the cluster"} failed${code ? ` (HTTP ${code})` : ""}: ${(err as Error).message.split("\n")[0]}`);
    }
    for (const spc of page.items ?? []) found.push({ spc: { ...spc, apiVersion: spc.apiVersion ?? `${SPC_API_GROUP}/v1`, kind: "SecretProviderClass" }, source: "cluster" });
    _continue = page.metadata?.continue || undefined;
  } while (_continue);
  return found.sort((a, b) => `${a.spc.metadata.namespace}/${a.spc.metadata.name}`.localeCompare(`${b.spc.metadata.namespace}/${b.spc.metadata.name}`));
}
