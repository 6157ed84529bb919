// Where the lint finds SecretProviderClasses: YAML or JSON manifests (files,
// or directories searched recursively, multi-document files and List kinds
// included), or every namespace of a live cluster.
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import type { SecretProviderClass } from "../shared/kube/kube-types.ts";
import { SPC_API_GROUP } from "./check-class.ts";

export interface FoundClass {
  spc: SecretProviderClass;
  source: string;
}

/** A manifest that could not be read; the lint reports it and fails. */
export class SourceError extends Error {
  override readonly name = "SourceError";
}

const MANIFEST = /\.(ya?ml|json)$/i;

async function manifestFiles(path: string): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw new SourceError(`${path}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : (err as Error).message}`);
  }
  if (!info.isDirectory()) return [path];
  const out: string[] = [];
  for (const entry of (await readdir(path, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith(".")) continue;
    const child = join(path, entry.name);
    if (entry.isDirectory()) out.push(...(await manifestFiles(child)));
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

/** SecretProviderClasses in the given files and directories, in path order. */
export async function classesFromPaths(paths: readonly string[]): Promise<FoundClass[]> {
  const found: FoundClass[] = [];
  for (const path of paths) {
    for (const file of await manifestFiles(path)) {
      const text = await readFile(file, "utf8");
      const docs = parseAllDocuments(text, { prettyErrors: false });
      for (const doc of Array.isArray(docs) ? docs : [docs]) {
        const error = doc.errors[0];
        if (error) throw new SourceError(`${file}: not valid YAML: ${error.message.split("\n")[0]}`);
        for (const spc of classesIn(doc.toJSON())) {
          if (!spc.metadata || typeof spc.metadata.name !== "string") throw new SourceError(`${file}: a SecretProviderClass without metadata.name`);
          found.push({ spc, source: file });
        }
      }
    }
  }
  return found;
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
