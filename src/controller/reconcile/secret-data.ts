// The data of a synced Secret, from the files a provider returned: each
// spec.secretObject.data entry copies the file at sourcePath into targetKey,
// and a kubernetes.io/tls Secret takes only the certificates (tls.crt) or the
// private key (tls.key) of a PEM or PFX file, as upstream does. A key read
// from an optional object the provider did not find is left out (the Secret
// gets it once the object exists), as the driver's syncer does. Errors name
// the SecretSync, the path and the fix, never any content.
import { Reason } from "../api/conditions.ts";
import { keyOf, secretTypeOf, type SecretSync } from "../api/secret-sync.ts";
import { loadTlsSupport, tlsPart, TLS_SECRET_TYPE } from "../../shared/secrets/secret-data.ts";
import { listNames, SyncFailure } from "./sync-failure.ts";
import { isMissingFile } from "../../shared/provider-api/missing-objects.ts";

/** The provider's files by path. */
export type ProviderFiles = ReadonlyMap<string, Buffer>;

/** `missing`: the files of optional objects the provider reported missing. */
export async function buildSecretData(ss: SecretSync, classRef: string, files: ProviderFiles, missing: ReadonlySet<string> = new Set()): Promise<Map<string, Buffer>> {
  const type = secretTypeOf(ss);
  if (type === TLS_SECRET_TYPE) await loadTlsSupport();
  const data = new Map<string, Buffer>();
  const items = ss.spec.secretObject?.data ?? [];
  for (const [index, item] of items.entries()) {
    const sourcePath = (item.sourcePath ?? "").trim();
    const targetKey = (item.targetKey ?? "").trim();
    const field = `spec.secretObject.data[${index}]`;
    if (!sourcePath || !targetKey) {
      throw new SyncFailure(Reason.RemoteSecretStoreFetchFailed, `secretsync ${keyOf(ss)}: ${field} needs both sourcePath and targetKey`, { retryable: false });
    }
    const contents = files.get(sourcePath);
    if (!contents && isMissingFile(sourcePath, missing)) continue;
    if (!contents) {
      throw new SyncFailure(
        Reason.RemoteSecretStoreFetchFailed,
        `secretsync ${keyOf(ss)}: sourcePath "${sourcePath}" is not among the files the provider returned for secretproviderclass ${classRef}: ` +
          `${listNames([...files.keys()].sort())}; fix ${field}.sourcePath or add the object to the class`,
        { retryable: false },
      );
    }
    if (type !== TLS_SECRET_TYPE) {
      data.set(targetKey, contents);
      continue;
    }
    try {
      data.set(targetKey, tlsPart(contents, targetKey));
    } catch (err) {
      throw new SyncFailure(
        Reason.RemoteSecretStoreFetchFailed,
        `secretsync ${keyOf(ss)}: ${field}: cannot make ${targetKey} of a kubernetes.io/tls Secret from "${sourcePath}": ${(err as Error).message}; ` +
          "the file must hold a PEM or PFX certificate and key, and targetKey must be tls.crt or tls.key",
        { retryable: false },
      );
    }
  }
  return data;
}
