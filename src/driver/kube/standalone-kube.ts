// Standalone mode (--secret-provider-class-dir): SecretProviderClasses come
// from YAML files instead of the Kubernetes API, for running the driver on a
// laptop or in the demo without a cluster. Status objects and events are
// logged instead of written; Secret sync and restart recovery are off.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { loadYaml } from "../../shared/load-yaml.ts";
import type { Logger } from "../../shared/logger.ts";
import { DriverError, ErrorType } from "../errors.ts";
import { KubeClient, type PodRef } from "./kube-client.ts";
import { SPC_GROUP, type SecretProviderClass, type SecretProviderClassPodStatus } from "../../shared/kube/kube-types.ts";

export class StandaloneKube extends KubeClient {
  private readonly dir: string;
  private readonly log: Logger;

  constructor(dir: string, logger: Logger, nodeName: string) {
    // Every call is overridden below; nothing is ever sent to this address.
    super({ server: "https://127.0.0.1:1", apply: async () => undefined }, logger, { nodeName });
    this.dir = dir;
    this.log = logger;
  }

  override async getSecretProviderClass(namespace: string, name: string): Promise<SecretProviderClass> {
    const { parseAllDocuments } = await loadYaml();
    for (const file of (await readdir(this.dir)).filter((f) => /\.(ya?ml|json)$/.test(f)).sort()) {
      const docs = parseAllDocuments(await readFile(join(this.dir, file), "utf8"));
      for (const doc of docs) {
        const obj = doc.toJS() as SecretProviderClass | null;
        if (obj?.kind !== "SecretProviderClass" || obj.metadata?.name !== name) continue;
        if ((obj.metadata.namespace ?? "default") !== namespace) continue;
        return { ...obj, metadata: { ...obj.metadata, namespace } };
      }
    }
    throw new DriverError(
      status.NOT_FOUND,
      ErrorType.SecretProviderClassNotFound,
      `failed to get secretproviderclass ${namespace}/${name}, error: secretproviderclasses.${SPC_GROUP} "${name}" not found in ${this.dir}`,
    );
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
