// Mount: parameters → the objects patterns stand for (one list per object
// type) → Key Vault reads (all objects of the mount in parallel, bounded) →
// files and object versions, in the order of the objects list. The first
// error fails the whole mount (no partial content), wrapped as upstream does:
// "failed to mount objects, error: <what, naming the object and vault>".
// An optional object that Key Vault does not have (or has disabled) is left
// out and reported with a missing version (shared/provider-api/missing-objects.ts).
import { status } from "@grpc/grpc-js";
import { scopedSignal } from "../shared/abort.ts";
import type { Logger } from "../shared/logger.ts";
import { certificatePem } from "./formats/cert.ts";
import { deadlineExceeded, ProviderError } from "./errors.ts";
import type { AuthConfig, Identity, IdentityCache } from "./auth/identity.ts";
import { authError, describeIdentity } from "./auth/identity.ts";
import { publicKeyPem } from "./formats/key.ts";
import type { CallContext, KeyVaultReader, ListedObject, VaultRef } from "./keyvault/keyvault.ts";
import { carriesTags, conflictError, describeTags, isHistoryMode, objectPrefix, type KeyVaultObject, type ObjectType } from "./objects/objects.ts";
import { checkSelection, selectMatches, type Selection } from "./objects/object-selection.ts";
import { missingVersion } from "../shared/provider-api/missing-objects.ts";
import type { ProviderMetrics } from "./metrics.ts";
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
  /** An optional object left out: no file, its version says so. */
  missing?: boolean;
}

/** One version of an object, read and converted. */
interface VersionRead {
  files: ObjectFile[];
  version: string;
  tags?: Record<string, string>;
  /** false only when Key Vault answered for a disabled object (certificates). */
  enabled?: boolean;
}

/** Key Vault has no such object (or version), or it is disabled: what an optional object may be. */
const ABSENT_CLASSES = new Set(["SecretNotFound", "KeyNotFound", "CertificateNotFound", "NotFound", "ObjectDisabled"]);
const isAbsent = (err: unknown) => err instanceof ProviderError && ABSENT_CLASSES.has(err.errorClass);

/** What listing each object type needs: the access policy permission and the RBAC data action (and a built-in role that has it). */
const LIST_PERMISSION: Record<ObjectType, string> = {
  secret: 'access policy permission "List" on secrets, or the RBAC data action Microsoft.KeyVault/vaults/secrets/readMetadata/action (role Key Vault Secrets User)',
  key: 'access policy permission "List" on keys, or the RBAC data action Microsoft.KeyVault/vaults/keys/read (role Key Vault Crypto User)',
  cert: 'access policy permission "List" on certificates, or the RBAC data action Microsoft.KeyVault/vaults/certificates/read (role Key Vault Certificate User)',
};
const COLLECTION: Record<ObjectType, string> = { secret: "secrets", key: "keys", cert: "certificates" };

export class MountService {
  private readonly options: MountOptions;
  private readonly identities: IdentityCache;
  private readonly reader: KeyVaultReader;
  private readonly logger: Logger;
  readonly objectsParser: ObjectsParser;

  constructor(options: MountOptions, identities: IdentityCache, reader: KeyVaultReader, logger: Logger, metrics?: ProviderMetrics) {
    this.options = options;
    this.identities = identities;
    this.reader = reader;
    this.logger = logger;
    this.objectsParser = new ObjectsParser({ onWaiting: (waiting) => metrics?.objectsListsWaiting.set(waiting) });
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
    const ctx: CallContext = { deadline: outer.deadline, signal: scoped.signal, tenant: params.podNamespace };
    let missing: Emitted[] = [];
    const results: Emitted[][] = [];
    try {
      const selected = await this.selectObjects(params.objects, identity, params.auth, vault, ctx);
      const objects = selected.objects;
      missing = selected.missing;
      results.length = objects.length;
      let next = 0;
      const worker = async () => {
        while (next < objects.length && !ctx.signal.aborted) {
          const i = next++;
          const obj = objects[i]!;
          results[i] = await this.readObject(obj, identity, params.auth, vault, params.defaultMode, ctx, selected.matches.has(obj));
        }
      };
      const workers = Array.from({ length: Math.min(this.options.concurrency, objects.length) }, worker);
      await Promise.all(workers);
    } catch (err) {
      controller.abort();
      throw err;
    } finally {
      scoped.dispose();
    }

    // in the order of the objects list; a pattern's matches by name
    const all = [...results.flat(), ...missing].sort((a, b) => a.obj.index - b.obj.index);
    const emitted = all.filter((e) => !e.missing);
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
      objectVersions: all.map((e) => ({ id: e.id, version: e.version })),
    };
  }

  /**
   * The objects the mount reads: each entry of the list as it is, a pattern
   * as its matches (one list per object type for the whole mount, shared like
   * reads). A pattern matching nothing fails the mount, unless optional.
   * Bounds and file conflicts are checked on the result, before any read.
   */
  private async selectObjects(
    entries: readonly KeyVaultObject[],
    identity: Identity,
    auth: AuthConfig,
    vault: VaultRef,
    ctx: CallContext,
  ): Promise<{ objects: KeyVaultObject[]; missing: Emitted[]; matches: ReadonlySet<KeyVaultObject> }> {
    if (!entries.some((e) => e.pattern)) return { objects: [...entries], missing: [], matches: new Set() };
    const lists = new Map<ObjectType, Promise<ListedObject[]>>();
    const listOf = (type: ObjectType): Promise<ListedObject[]> => {
      let list = lists.get(type);
      if (!list) {
        list = this.reader.listObjects(identity, vault, type, ctx);
        list.catch(() => {});
        lists.set(type, list);
      }
      return list;
    };
    const missing: Emitted[] = [];
    const selections = await Promise.all(
      entries.map(async (source): Promise<Selection> => {
        if (!source.pattern) return { source, objects: [source] };
        const prefix = objectPrefix(source.objectType, source.objectName, "");
        await this.prepareIdentity(identity, auth, vault, ctx, prefix);
        let listed: ListedObject[];
        try {
          listed = await listOf(source.objectType);
        } catch (err) {
          if (!(err instanceof ProviderError)) throw err;
          if (err.errorClass === "Forbidden" || err.errorClass === "Unauthorized") {
            throw new ProviderError(
              err.code,
              err.errorClass,
              `${prefix}listing the ${COLLECTION[source.objectType]} of key vault "${vault.name}" for the objectName pattern "${source.objectName}" was refused: the identity needs the ${LIST_PERMISSION[source.objectType]}: ${err.message}`,
            );
          }
          throw err.wrap(prefix);
        }
        const objects = selectMatches(source, listed);
        if (objects.length === 0) {
          const what = `no enabled ${COLLECTION[source.objectType]} of key vault "${vault.name}" match the objectName pattern "${source.objectName}"${
            Object.keys(source.tags).length > 0 ? ` with the tags ${describeTags(source.tags)}` : ""
          }`;
          if (!source.optional) throw new ProviderError(status.NOT_FOUND, "NotFound", `${prefix}${what}`);
          missing.push(this.leftOut(source, vault, what, ""));
        }
        return { source, objects };
      }),
    );
    checkSelection(selections, this.options.limits);
    return { objects: selections.flatMap((s) => s.objects), missing, matches: new Set(selections.filter((s) => s.source.pattern).flatMap((s) => s.objects)) };
  }

  /** An optional object mounted without: one log line, and its version marked missing. */
  private leftOut(obj: KeyVaultObject, vault: VaultRef, reason: string, file: string): Emitted {
    this.logger.warn({ vault: vault.name, objectType: obj.objectType, objectName: obj.objectName, reason }, "optional object left out of the volume");
    return { obj, path: file, mode: 0, contents: Buffer.alloc(0), id: `${obj.objectType}/${obj.objectName}`, version: missingVersion(file), missing: true };
  }

  private async prepareIdentity(identity: Identity, auth: AuthConfig, vault: VaultRef, ctx: CallContext, prefix: string): Promise<void> {
    try {
      await traceStep("identity", () => identity.prepare(auth, ctx.signal, ctx.tenant));
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
  }

  /**
   * Reads one object into its files. `match`: the object is a pattern's
   * match, which may have been deleted or disabled since the list (it is then
   * no match any more).
   */
  private async readObject(obj: KeyVaultObject, identity: Identity, auth: AuthConfig, vault: VaultRef, defaultMode: number, ctx: CallContext, match: boolean): Promise<Emitted[]> {
    const prefix = objectPrefix(obj.objectType, obj.objectName, obj.objectVersion);
    await this.prepareIdentity(identity, auth, vault, ctx, prefix);
    try {
      return await this.readFiles(obj, identity, vault, defaultMode, ctx);
    } catch (err) {
      if (match && isAbsent(err)) {
        this.logger.debug({ vault: vault.name, objectType: obj.objectType, objectName: obj.objectName }, "a pattern's match went away between the list and the read");
        return [];
      }
      // Key Vault does not have it, or it is disabled: an optional object is left out
      if (obj.optional && isAbsent(err)) return [this.leftOut(obj, vault, (err as ProviderError).message, obj.fileName)];
      if (err instanceof ProviderError) throw err.wrap(prefix);
      throw err;
    }
  }

  private async readFiles(obj: KeyVaultObject, identity: Identity, vault: VaultRef, defaultMode: number, ctx: CallContext): Promise<Emitted[]> {
    const mode = obj.fileMode ?? defaultMode;
    if (!isHistoryMode(obj)) {
      const read = await this.readVersion(obj, identity, vault, obj.objectVersion, ctx);
      this.checkSelected(obj, vault, read);
      const id = `${obj.objectType}/${obj.objectName}`;
      return read.files.map((f) => ({ obj, path: obj.fileName + f.suffix, mode, contents: f.contents, id, version: read.version }));
    }
    {
      const versions = await this.reader.listVersions(identity, vault, obj.objectType, obj.objectName, ctx);
      let enabled = orderVersions(versions);
      let current: VersionRead | undefined;
      if (currentIsAmbiguous(enabled)) {
        // Same-second versions: only Key Vault knows which one is current.
        current = await this.readVersion(obj, identity, vault, "", ctx).catch((err: unknown) => {
          // a disabled current version: the newest enabled one comes first
          if (err instanceof ProviderError && (err.errorClass === "ObjectDisabled" || err.errorClass === "Forbidden")) return undefined;
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
      // objectTags: the newest version mounted carries them
      if (perVersion[0]) this.checkSelected(obj, vault, perVersion[0]);
      return perVersion.flatMap(({ files, version }, i) =>
        files.map((f) => ({ obj, path: `${obj.fileName}/${i}${f.suffix}`, mode, contents: f.contents, id: `${obj.objectType}/${obj.objectName}/${i}`, version })),
      );
    }
  }

  /**
   * An object named with objectTags must carry the tags; an optional
   * certificate Key Vault answers for although disabled is left out.
   */
  private checkSelected(obj: KeyVaultObject, vault: VaultRef, read: VersionRead): void {
    if (obj.optional && read.enabled === false) {
      throw new ProviderError(status.PERMISSION_DENIED, "ObjectDisabled", `key vault "${vault.name}": the ${obj.objectType} is disabled`);
    }
    if (!carriesTags(read.tags, obj.tags)) {
      throw new ProviderError(
        status.NOT_FOUND,
        "NotFound",
        `key vault "${vault.name}": ${obj.objectType} ${obj.objectName} does not carry the tags objectTags asks for (${describeTags(obj.tags)})`,
      );
    }
  }

  private async readVersion(obj: KeyVaultObject, identity: Identity, vault: VaultRef, version: string, ctx: CallContext): Promise<VersionRead> {
    try {
      return await this.readAndConvert(obj, identity, vault, version, ctx);
    } catch (err) {
      // conversion errors do not come from the vault; name it too
      if (err instanceof ProviderError && err.errorClass === "ConversionFailed") throw err.wrap(`key vault "${vault.name}": `);
      throw err;
    }
  }

  private async readAndConvert(obj: KeyVaultObject, identity: Identity, vault: VaultRef, version: string, ctx: CallContext): Promise<VersionRead> {
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
        return { files, version: secret.version, tags: secret.tags };
      }
      case "key": {
        const key = await this.reader.getKey(identity, vault, obj.objectName, version, ctx);
        return { files: [{ suffix: "", contents: Buffer.from(publicKeyPem(key)) }], version: key.version, tags: key.tags };
      }
      case "cert": {
        const cert = await this.reader.getCertificate(identity, vault, obj.objectName, version, ctx);
        return { files: [{ suffix: "", contents: Buffer.from(certificatePem(cert)) }], version: cert.version, tags: cert.tags, enabled: cert.enabled };
      }
    }
  }
}
