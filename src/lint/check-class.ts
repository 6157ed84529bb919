// Checks one SecretProviderClass the way this driver and provider will read
// it when a pod mounts it: the driver's own checks (provider, parameters,
// secretObjects), then, for provider "azure", the provider's own parameter
// parser on the Mount request the driver would send. Nothing here restates a
// rule: every verdict comes from the code that enforces it.
import { existsSync } from "node:fs";
import { posix } from "node:path";
import type { SecretProviderClass } from "../shared/kube/kube-types.ts";
import { checkProviderName, providerOf } from "../shared/provider-api/provider-client.ts";
import { validateSecretObject } from "../shared/secrets/secret-data.ts";
import { describeTags, isHistoryMode, patternRegExp, type KeyVaultObject } from "../provider/objects/objects.ts";
import { DEFAULT_CLOUD_ENV_FILE_DIRS } from "../provider/cloud/cloud-file.ts";
import { DEFAULT_LIMITS, parseMountRequest, POD_NAME_KEY, POD_NAMESPACE_KEY, type MountParameters } from "../provider/objects/parameters.ts";
import { WORKLOAD_IDENTITY_AUDIENCE } from "../provider/auth/identity.ts";
import { IDENTITY_BINDING_AUDIENCE } from "../shared/identity-binding.ts";
import { upstreamBehaviour, type UpstreamBehaviour } from "./upstream-behaviour.ts";

export const SPC_API_GROUP = "secrets-store.csi.x-k8s.io";

export type Verdict = "fine" | "refused" | "differs";

export interface Finding {
  /** refused: the mount (or the Secret sync) fails here; differs: upstream gives another volume; note: works, worth knowing. */
  kind: "refused" | "differs" | "note";
  /** What the finding is about: "mount", "objects[1]", "secretObjects[0]", ... */
  subject: string;
  message: string;
  /** For refusals: what upstream does with the class. */
  upstream?: UpstreamBehaviour | "unknown";
  upstreamDetail?: string;
}

export interface ClassReport {
  namespace: string;
  name: string;
  /** Where the class came from: a file path, or "cluster". */
  source: string;
  provider: string;
  verdict: Verdict;
  findings: Finding[];
}

export interface LintOptions {
  /** The provider's --cloud-name (default AzurePublicCloud). */
  cloudName?: string;
}

const LINT_POD = "secrets-store-csi-lint";
const TOKENS_KEY = "csi.storage.k8s.io/serviceAccount.tokens";
const MESSAGE_PREFIX = "failed to mount objects, error: ";

/** A service-account-shaped token (unsigned): the provider only reads its subject before Entra ID checks it. */
function placeholderToken(namespace: string, audience: string): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${part({ alg: "none" })}.${part({ sub: `system:serviceaccount:${namespace}:${LINT_POD}`, aud: [audience] })}.`;
}

/** kubelet's tokens for the audiences the chart's CSIDriver requests. */
function placeholderTokens(namespace: string): string {
  const tokens: Record<string, { token: string; expirationTimestamp: string }> = {};
  for (const audience of [WORKLOAD_IDENTITY_AUDIENCE, IDENTITY_BINDING_AUDIENCE]) {
    tokens[audience] = { token: placeholderToken(namespace, audience), expirationTimestamp: "2100-01-01T00:00:00Z" };
  }
  return JSON.stringify(tokens);
}

/**
 * The Mount request the driver sends for a pod in the class's namespace. What
 * only a pod carries (nodePublishSecretRef data, kubelet's token) is filled
 * with placeholders, so the provider checks everything the class decides.
 */
function mountRequestFor(spc: SecretProviderClass, parameters: Record<string, string>) {
  const namespace = spc.metadata.namespace ?? "default";
  const attributes: Record<string, string> = {
    ...parameters,
    secretProviderClass: spc.metadata.name,
    [POD_NAME_KEY]: LINT_POD,
    [POD_NAMESPACE_KEY]: namespace,
    "csi.storage.k8s.io/pod.uid": "00000000-0000-4000-8000-000000000000",
    "csi.storage.k8s.io/ephemeral": "true",
    [TOKENS_KEY]: placeholderTokens(namespace),
  };
  return { attributes: JSON.stringify(attributes), secrets: JSON.stringify({ clientid: LINT_POD, clientsecret: LINT_POD }), permission: "420" };
}

function refusal(subject: string, message: string, what = "mount"): Finding {
  const text = message.startsWith(MESSAGE_PREFIX) ? message.slice(MESSAGE_PREFIX.length) : message;
  const behaviour = upstreamBehaviour(text);
  return { kind: "refused", subject: subject || what, message: text, upstream: behaviour?.upstream ?? "unknown", upstreamDetail: behaviour?.detail };
}

/** Paths the class's volume holds (history files and a pattern's matches as a pattern). */
function mountedPaths(objects: readonly KeyVaultObject[]): Array<string | RegExp> {
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return objects.flatMap((obj): Array<string | RegExp> => {
    if (obj.pattern) return [new RegExp(`^${escape(obj.fileName)}${patternRegExp(obj.objectName).source.slice(1, -1)}(\\.crt|\\.key)?$`, "i")];
    return isHistoryMode(obj) ? [new RegExp(`^${escape(obj.fileName)}/\\d+(\\.crt|\\.key)?$`)] : [obj.fileName, `${obj.fileName}.crt`, `${obj.fileName}.key`];
  });
}

/**
 * This provider's extensions (README "Beyond upstream"): what each does here,
 * and what upstream's provider, which does not know them, does instead.
 */
function extensionFindings(objects: readonly KeyVaultObject[]): Finding[] {
  const findings: Finding[] = [];
  for (const obj of objects) {
    const subject = `objects[${obj.index}]`;
    if (obj.pattern) {
      findings.push({
        kind: "differs",
        subject,
        message:
          `objectName "${obj.objectName}" is a pattern (an extension of this provider): every enabled ${obj.objectType} whose name matches is mounted, at ${obj.fileName ? `"${obj.fileName}<name>"` : "its name"}; ` +
          "upstream's provider takes it for a literal name, which Key Vault refuses, and fails the mount",
      });
    }
    if (Object.keys(obj.tags).length > 0) {
      findings.push({
        kind: "differs",
        subject,
        message: `objectTags ${describeTags(obj.tags)} (an extension of this provider): only objects carrying these tags are mounted; upstream's provider ignores objectTags and mounts the object whatever its tags`,
      });
    }
    if (obj.optional) {
      findings.push({
        kind: "differs",
        subject,
        message:
          'optional "true" (an extension of this provider): when Key Vault does not have the object or it is disabled, the volume is mounted without it and the pod gets a Warning event; ' +
          "upstream's provider ignores optional and fails the mount then",
      });
    }
  }
  return findings;
}

async function checkAzure(spc: SecretProviderClass, options: LintOptions, findings: Finding[]): Promise<MountParameters | undefined> {
  const parameters = { ...(spc.spec.parameters ?? {}) };
  const cloudFile = parameters.cloudEnvFileName?.trim();
  if (cloudFile && !existsSync(cloudFile)) {
    // read on the node; check the rest as if it named the public cloud
    findings.push({ kind: "note", subject: "cloudEnvFileName", message: `${cloudFile} is read on each node when a pod mounts the class; its content is not checked here` });
    delete parameters.cloudEnvFileName;
    parameters.cloudName = "AzurePublicCloud";
  }
  try {
    // the provider's defaults: a class over its bounds, or naming a cloud file outside /etc/kubernetes, is refused on the node too
    const defaults = { cloudName: options.cloudName ?? "AzurePublicCloud", cloudEnvFileDirs: DEFAULT_CLOUD_ENV_FILE_DIRS, limits: DEFAULT_LIMITS };
    const params = await parseMountRequest(mountRequestFor(spc, parameters), defaults, { deadline: Date.now() + 10_000 });
    for (const { index, keys } of params.unknownKeys) {
      findings.push({ kind: "note", subject: `objects[${index}]`, message: `unknown key${keys.length > 1 ? "s" : ""} ${keys.join(", ")} ignored (as upstream does): check the spelling` });
    }
    for (const w of params.warnings) {
      findings.push({ kind: w.differsFromUpstream ? "differs" : "note", subject: w.index === undefined ? "parameters" : `objects[${w.index}]`, message: w.message });
    }
    findings.push(...extensionFindings(params.objects));
    if (params.auth.mode === "ServicePrincipal") {
      findings.push({ kind: "note", subject: "identity", message: "service principal: each pod's nodePublishSecretRef must hold clientid and clientsecret" });
    } else if (params.auth.mode === "WorkloadIdentity") {
      findings.push({ kind: "note", subject: "identity", message: `workload identity: the CSIDriver object must request tokens for ${WORKLOAD_IDENTITY_AUDIENCE} (the chart does)` });
    } else if (params.auth.mode === "IdentityBinding") {
      findings.push({
        kind: "note",
        subject: "identity",
        message: `identity binding: the CSIDriver object must request tokens for ${IDENTITY_BINDING_AUDIENCE} (the chart does), and the provider reaches the cluster's token proxy (--token-proxy-url, --sni-name)`,
      });
    }
    return params;
  } catch (err) {
    findings.push(refusal("", (err as Error).message));
    return undefined;
  }
}

function checkSecretObjects(spc: SecretProviderClass, params: MountParameters | undefined, findings: Finding[]): void {
  const paths = params ? mountedPaths(params.objects) : undefined;
  for (const [i, obj] of (spc.spec.secretObjects ?? []).entries()) {
    const subject = `secretObjects[${i}]${obj?.secretName ? ` (secretName ${obj.secretName})` : ""}`;
    try {
      validateSecretObject(obj);
    } catch (err) {
      findings.push({ ...refusal(subject, `the Secret is not synced: ${(err as Error).message}`), upstream: "refuses", upstreamDetail: "it does not sync it either" });
      continue;
    }
    if (!paths) continue;
    for (const item of obj.data ?? []) {
      const objectName = (item?.objectName ?? "").trim();
      const mounted = (path: string) => paths.some((p) => (typeof p === "string" ? p === path : p.test(path)));
      const optional = params?.objects.find((o) => o.optional && !o.pattern && (o.fileName === objectName || objectName.startsWith(`${o.fileName}/`)));
      if (optional) {
        findings.push({
          kind: "note",
          subject,
          message: `${objectName} comes from an optional object (objects[${optional.index}]): while Key Vault does not have it, the Secret is synced without the key ${item?.key ?? ""}`,
        });
      }
      if (objectName && !mounted(objectName)) {
        const clean = posix.normalize(objectName).replace(/\/+$/, "");
        findings.push({
          kind: "refused",
          subject,
          message: `the Secret is not synced: file matching objectName ${objectName} not found in the pod (${
            mounted(clean) ? `the file is "${clean}": write that` : "secretObjects name the file: the objectAlias, or objectName without one"
          })`,
          upstream: "refuses",
          upstreamDetail: "it does not sync it either",
        });
      }
    }
  }
}

export async function checkClass(spc: SecretProviderClass, source: string, options: LintOptions = {}): Promise<ClassReport> {
  const findings: Finding[] = [];
  const namespace = spc.metadata?.namespace ?? "default";
  const name = spc.metadata?.name ?? "";
  const provider = (spc.spec?.provider ?? "").trim();
  const report = (): ClassReport => ({
    namespace,
    name,
    source,
    provider,
    findings,
    verdict: findings.some((f) => f.kind === "refused") ? "refused" : findings.some((f) => f.kind === "differs") ? "differs" : "fine",
  });
  if (spc.apiVersion === `${SPC_API_GROUP}/v1alpha1`) {
    findings.push({ kind: "note", subject: "apiVersion", message: `${SPC_API_GROUP}/v1alpha1 is deprecated (served as before): use ${SPC_API_GROUP}/v1` });
  }
  try {
    providerOf({ ...spc, metadata: { ...spc.metadata, namespace } });
    checkProviderName(provider);
  } catch (err) {
    findings.push(refusal("", (err as Error).message));
    return report();
  }
  let params: MountParameters | undefined;
  if (provider === "azure") {
    params = await checkAzure(spc, options, findings);
  } else {
    findings.push({ kind: "note", subject: "parameters", message: `provider "${provider}" reads its own parameters; only the driver's checks apply here` });
  }
  checkSecretObjects(spc, params, findings);
  return report();
}
