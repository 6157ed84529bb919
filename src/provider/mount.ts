// Mount: parameters → Key Vault reads (all objects of the mount in parallel)
// → files and object versions, in the order of the objects list. The first
// error fails the whole mount (no partial content), wrapped as upstream does:
// "failed to mount objects, error: <what, naming the object and vault>".
import { status } from "@grpc/grpc-js";
import { scopedSignal } from "../shared/abort.ts";
import type { Logger } from "../shared/logger.ts";
import { certificatePem } from "./formats/cert.ts";
import { deadlineExceeded, ProviderError } from "./errors.ts";
import type { AuthConfig, Identity, IdentityCache } from "./auth/identity.ts";
import { authError, describeIdentity } from "./auth/identity.ts";
import { publicKeyPem } from "./formats/key.ts";
import type { CallContext, KeyVaultReader, VaultRef } from "./keyvault/keyvault.ts";
import { conflictError, isHistoryMode, objectPrefix, type KeyVaultObject } from "./objects/objects.ts";
import { ObjectsParser } from "./objects/objects-parser.ts";
import { parseMountRequest, type MountRequestFields, type ParameterDefaults } from "./objects/parameters.ts";
import { CONTENT_TYPE_PKCS12, secretFiles, type ObjectFile } from "./formats/secret.ts";
import { loadPkcs12Reader } from "../shared/crypto/pkcs12-loader.ts";
import { isMsalNetworkError, probeTlsTrust } from "./auth/tls-probe.ts";
import { currentFirst, currentIsAmbiguous, orderVersions } from "./keyvault/version-history.ts";
import { traceStep, traceStepSync } from "../shared/trace.ts";

export interface ProviderFile {
  path: string;
  mode: number;
  contents: Buffer;
}

export interface ObjectVersion {
  id: string;
  version: string;
}

export interface MountResult {
  files: ProviderFile[];
  objectVersions: ObjectVersion[];
}

export interface MountOptions extends ParameterDefaults {
  constructPemChain: boolean;
  writeCertAndKeyInSeparateFiles: boolean;
  /** Objects of one mount read at the same time. */
  concurrency: number;
}

export const MOUNT_ERROR_PREFIX = "failed to mount objects, error: ";

interface Emitted {
  obj: KeyVaultObject;
  path: string;
  mode: number;
  contents: Buffer;
  id: string;
  version: string;
}

export class MountService {
  private readonly options: MountOptions;
  private readonly identities: IdentityCache;
  private readonly reader: KeyVaultReader;
  private readonly logger: Logger;
  readonly objectsParser = new ObjectsParser();

  constructor(options: MountOptions, identities: IdentityCache, reader: KeyVaultReader, logger: Logger) {
    this.options = options;
    this.identities = identities;
    this.reader = reader;
    this.logger = logger;
  }

  close(): void {
    this.objectsParser.close();
  }

  async mount(request: MountRequestFields, ctx: CallContext): Promise<MountResult> {
    try {
      return await this.mountInner(request, ctx);
    } catch (err) {
      if (err instanceof ProviderError) throw err.wrap(MOUNT_ERROR_PREFIX);
      const name = (err as Error).name;
      if (name === "TimeoutError" || name === "AbortError") {
        throw deadlineExceeded(`${MOUNT_ERROR_PREFIX}no answer from key vault before the call's deadline`);
      }
      this.logger.error({ err: { name: (err as Error).name } }, "unexpected mount failure");
      throw new ProviderError(status.INTERNAL, "Internal", `${MOUNT_ERROR_PREFIX}internal error (${(err as Error).name ?? "Error"})`);
    }
  }

  private async mountInner(request: MountRequestFields, outer: CallContext): Promise<MountResult> {
    const params = await traceStep("parse the request", () => parseMountRequest(request, this.options, {
      deadline: outer.deadline,
      objectsParser: this.objectsParser,
      // the caller gets one text for every refusal; the operator sees why
      onCloudFileRefused: (path, reason) => this.logger.warn({ cloudEnvFileName: path, reason }, "refused a cloudEnvFileName"),
    }));
    for (const { index, keys } of params.unknownKeys) {
      this.logger.warn({ pod: `${params.podNamespace}/${params.podName}`, index, keys }, "ignoring unknown keys in an objects entry (check their spelling)");
    }
    for (const { index, message } of params.warnings) {
      this.logger.warn({ pod: `${params.podNamespace}/${params.podName}`, index }, message);
    }
    const identity = this.identities.get(params.auth);
    const vault: VaultRef = { name: params.vaultName, url: params.vaultUrl };
    this.logger.info(
      { pod: `${params.podNamespace}/${params.podName}`, vault: vault.name, identity: describeIdentity(params.auth), objects: params.objects.length },
      "mounting",
    );

    // One failure cancels the rest of this mount's reads.
    const controller = new AbortController();
    const scoped = scopedSignal([outer.signal, controller.signal], outer.deadline - Date.now());
    const ctx: CallContext = { deadline: outer.deadline, signal: scoped.signal };
    const results: Emitted[][] = new Array<Emitted[]>(params.objects.length);
    let next = 0;
    const worker = async () => {
      while (next < params.objects.length && !ctx.signal.aborted) {
        const obj = params.objects[next++]!;
        results[obj.index] = await this.readObject(obj, identity, params.auth, vault, params.defaultMode, ctx);
      }
    };
    try {
      const workers = Array.from({ length: Math.min(this.options.concurrency, params.objects.length) }, worker);
      await Promise.all(workers);
    } catch (err) {
      controller.abort();
      throw err;
    } finally {
      scoped.dispose();
    }

    const emitted = results.flat();
    if (emitted.length > this.options.limits.maxFiles) {
      throw new ProviderError(
        status.INVALID_ARGUMENT,
        "InvalidArgument",
        `the objects give ${emitted.length} files, more than the ${this.options.limits.maxFiles} this provider returns for one mount (--max-files-per-mount)`,
      );
    }
    const owners = new Map<string, KeyVaultObject>();
    for (const e of emitted) {
      const other = owners.get(e.path);
      if (other && other !== e.obj) throw conflictError(e.path, other, e.obj);
      owners.set(e.path, e.obj);
    }
    this.logger.info({ pod: `${params.podNamespace}/${params.podName}`, vault: vault.name, files: emitted.length }, "mounted");
    return {
      files: emitted.map((e) => ({ path: e.path, mode: e.mode, contents: e.contents })),
      objectVersions: emitted.map((e) => ({ id: e.id, version: e.version })),
    };
  }

  private async readObject(obj: KeyVaultObject, identity: Identity, auth: AuthConfig, vault: VaultRef, defaultMode: number, ctx: CallContext): Promise<Emitted[]> {
    const prefix = objectPrefix(obj.objectType, obj.objectName, obj.objectVersion);
    try {
      await traceStep("identity", () => identity.prepare(auth, ctx.signal));
    } catch (err) {
      const name = (err as Error).name;
      if (name === "TimeoutError" || name === "AbortError") {
        throw deadlineExceeded(`key vault "${vault.name}" (${vault.url}): no access token for ${describeIdentity(auth)} before the call's deadline`).wrap(prefix);
      }
      const what = `key vault "${vault.name}" (${vault.url}): failed to get an access token for ${describeIdentity(auth)}`;
      if (isMsalNetworkError(err)) {
        const tls = await probeTlsTrust(auth.cloud.activeDirectoryEndpoint);
        if (tls) throw tls.wrap(`${what}: `).wrap(prefix);
      }
      throw (err instanceof ProviderError ? err : authError(err, what, auth)).wrap(prefix);
    }
    const mode = obj.fileMode ?? defaultMode;
    try {
      if (!isHistoryMode(obj)) {
        const { files, version } = await this.readVersion(obj, identity, vault, obj.objectVersion, ctx);
        const id = `${obj.objectType}/${obj.objectName}`;
        return files.map((f) => ({ obj, path: obj.fileName + f.suffix, mode, contents: f.contents, id, version }));
      }
      const versions = await this.reader.listVersions(identity, vault, obj.objectType, obj.objectName, ctx);
      let enabled = orderVersions(versions);
      let current: { files: ObjectFile[]; version: string } | undefined;
      if (currentIsAmbiguous(enabled)) {
        // Same-second versions: only Key Vault knows which one is current.
        current = await this.readVersion(obj, identity, vault, "", ctx).catch((err: unknown) => {
          // a disabled current version: the newest enabled one comes first
          if (err instanceof ProviderError && err.errorClass === "Forbidden") return undefined;
          throw err;
        });
        if (current) enabled = currentFirst(enabled, current.version);
      }
      let start = 0;
      if (obj.objectVersion !== "" && obj.objectVersion !== "latest") {
        start = enabled.findIndex((v) => v.version === obj.objectVersion);
        if (start < 0) {
          // upstream returns no files here; no files means the driver fails with "missing object versions"
          throw new ProviderError(
            status.NOT_FOUND,
            "NotFound",
            `key vault "${vault.name}": version ${obj.objectVersion} is not among the enabled versions of ${obj.objectName} (upstream silently mounts no file for it): pin an enabled version, or remove objectVersion to start at the newest`,
          );
        }
      }
      // Upstream's loop emits N+1 versions (indices 0..N) for objectVersionHistory N; kept for compatibility.
      const selected = enabled.slice(start, start + obj.objectVersionHistory + 1);
      const perVersion = await Promise.all(
        selected.map((v) => (current?.version === v.version ? current : this.readVersion(obj, identity, vault, v.version, ctx))),
      );
      return perVersion.flatMap(({ files, version }, i) =>
        files.map((f) => ({ obj, path: `${obj.fileName}/${i}${f.suffix}`, mode, contents: f.contents, id: `${obj.objectType}/${obj.objectName}/${i}`, version })),
      );
    } catch (err) {
      if (err instanceof ProviderError) throw err.wrap(prefix);
      throw err;
    }
  }

  private async readVersion(obj: KeyVaultObject, identity: Identity, vault: VaultRef, version: string, ctx: CallContext): Promise<{ files: ObjectFile[]; version: string }> {
    try {
      return await this.readAndConvert(obj, identity, vault, version, ctx);
    } catch (err) {
      // conversion errors do not come from the vault; name it too
      if (err instanceof ProviderError && err.errorClass === "ConversionFailed") throw err.wrap(`key vault "${vault.name}": `);
      throw err;
    }
  }

  private async readAndConvert(obj: KeyVaultObject, identity: Identity, vault: VaultRef, version: string, ctx: CallContext): Promise<{ files: ObjectFile[]; version: string }> {
    switch (obj.objectType) {
      case "secret": {
        const secret = await this.reader.getSecret(identity, vault, obj.objectName, version, ctx);
        if (secret.contentType === CONTENT_TYPE_PKCS12) await loadPkcs12Reader();
        const files = traceStepSync("convert", () => secretFiles(secret, {
          objectFormat: obj.objectFormat,
          objectEncoding: obj.objectEncoding,
          constructPemChain: this.options.constructPemChain,
          writeCertAndKeyInSeparateFiles: this.options.writeCertAndKeyInSeparateFiles,
          onChainFallback: (reason) =>
            this.logger.warn({ vault: vault.name, objectName: obj.objectName, reason }, "certificate chain could not be constructed, keeping the PFX order"),
        }));
        return { files, version: secret.version };
      }
      case "key": {
        const key = await this.reader.getKey(identity, vault, obj.objectName, version, ctx);
        return { files: [{ suffix: "", contents: Buffer.from(publicKeyPem(key)) }], version: key.version };
      }
      case "cert": {
        const cert = await this.reader.getCertificate(identity, vault, obj.objectName, version, ctx);
        return { files: [{ suffix: "", contents: Buffer.from(certificatePem(cert)) }], version: cert.version };
      }
    }
  }
}
