// Standalone mode (--secret-provider-class-dir): SecretProviderClasses come
// from YAML files instead of the Kubernetes API, for running the driver on a
// laptop or in the demo without a cluster. Status objects and events are
// logged instead of written; Secret sync and restart recovery are off. A file
// that cannot be parsed fails only the publishes of classes it may define.
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { status } from "@grpc/grpc-js";
import { loadYaml } from "../../shared/load-yaml.ts";
import type { Logger } from "../../shared/logger.ts";
import { DriverError, ErrorType } from "../errors.ts";
import { oneLine } from "../../shared/provider-api/provider-errors.ts";
import { KubeClient, type PodRef } from "./kube-client.ts";
import { SPC_GROUP, type SecretProviderClass, type SecretProviderClassPodStatus } from "../../shared/kube/kube-types.ts";

/** A document of a class file: its value, or why it cannot be read (`whole`: the file itself). */
type ParsedDocument = { value: unknown } | { problem: string; whole?: boolean };

export class StandaloneKube extends KubeClient {
  private readonly dir: string;
  private readonly log: Logger;
  private readonly parsed = new Map<string, { version: string; docs: ParsedDocument[] }>();

  constructor(dir: string, logger: Logger, nodeName: string) {
    // Every call is overridden below; nothing is ever sent to this address.
    super({ server: "https://127.0.0.1:1", apply: async () => undefined }, logger, { nodeName });
    this.dir = dir;
    this.log = logger;
  }

  /**
   * The class from the first file and document that defines it. A file or
   * document that cannot be read or parsed is skipped, so it fails only the
   * publishes of classes found nowhere else, with an error naming it. Files
   * are parsed again only when they change (size, time or inode).
   */
  override async getSecretProviderClass(namespace: string, name: string): Promise<SecretProviderClass> {
    const broken: string[] = [];
    const files = (await readdir(this.dir)).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();
    for (const path of this.parsed.keys()) if (!files.includes(basename(path))) this.parsed.delete(path);
    for (const file of files) {
      const path = join(this.dir, file);
      for (const [i, doc] of (await this.documentsOf(path)).entries()) {
        if ("problem" in doc) {
          broken.push(`${path}${doc.whole ? "" : ` (document ${i + 1})`}: ${doc.problem}`);
          continue;
        }
        const obj = doc.value as SecretProviderClass | null;
        if (obj?.kind !== "SecretProviderClass" || obj.metadata?.name !== name) continue;
        if ((obj.metadata.namespace ?? "default") !== namespace) continue;
        return structuredClone({ ...obj, metadata: { ...obj.metadata, namespace } });
      }
    }
    const notFound = `failed to get secretproviderclass ${namespace}/${name}, error: secretproviderclasses.${SPC_GROUP} "${name}" not found in ${this.dir}`;
    if (broken.length > 0) {
      // The class may be in a file that could not be read: say which, so it can be fixed.
      throw new DriverError(
        status.FAILED_PRECONDITION,
        ErrorType.SecretProviderClassNotFound,
        `${notFound}; it may be defined where the driver could not read: ${broken.slice(0, 3).join("; ")}${broken.length > 3 ? `; and ${broken.length - 3} more` : ""}`,
      );
    }
    throw new DriverError(status.NOT_FOUND, ErrorType.SecretProviderClassNotFound, notFound);
  }

  /** The documents of a class file, parsed once per version of the file. */
  private async documentsOf(path: string): Promise<ParsedDocument[]> {
    let version: string;
    try {
      const st = await stat(path);
      version = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (err) {
      return [{ problem: oneLine((err as Error).message, 200), whole: true }];
    }
    const cached = this.parsed.get(path);
    if (cached?.version === version) return cached.docs;
    const { parseAllDocuments } = await loadYaml();
    let docs: ParsedDocument[];
    try {
      docs = [...parseAllDocuments(await readFile(path, "utf8"))].map((doc): ParsedDocument => {
        if (doc.errors.length > 0) return { problem: oneLine(doc.errors[0]!.message, 200) };
        try {
          return { value: doc.toJS() };
        } catch (err) {
          return { problem: oneLine((err as Error).message, 200) };
        }
      });
    } catch (err) {
      docs = [{ problem: oneLine((err as Error).message, 200), whole: true }];
    }
    this.parsed.set(path, { version, docs });
    return docs;
  }

  override async upsertPodStatus(desired: SecretProviderClassPodStatus): Promise<void> {
    this.log.info({ name: `${desired.metadata.namespace}/${desired.metadata.name}`, status: desired.status }, "secret provider class pod status");
  }

  override async listPodStatuses(): Promise<SecretProviderClassPodStatus[]> {
    return [];
  }

  override async recordEvent(pod: PodRef, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    this.log.info({ pod: `${pod.namespace}/${pod.name}`, type, reason, message }, "event");
  }
}
