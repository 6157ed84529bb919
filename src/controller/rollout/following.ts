// Which workloads follow which content. A Deployment, StatefulSet or
// DaemonSet opts in with an annotation on its own metadata, ours or one of
// Reloader's (so manifests written for Reloader work unchanged):
//
//   secrets-store.csi.x-k8s.io/restart-on-rotation: "true"
//   reloader.stakater.com/auto: "true"             every SecretProviderClass its
//                                                  pods mount and every Secret
//                                                  they read (env, envFrom, volumes)
//   secretproviderclass.reloader.stakater.com/auto: "true"   the classes only
//   secret.reloader.stakater.com/auto: "true"                the Secrets only
//   secretproviderclass.reloader.stakater.com/reload: "a,b"  these classes
//   secret.reloader.stakater.com/reload: "x,y"               these Secrets
//
// A Secret counts when this controller knows its content: one a SecretSync
// writes, or one the driver syncs from a class's secretObjects. What a
// workload follows is worked out once per version of the workload and kept
// small (names only, a bounded number of them).
export const RESTART_ANNOTATION = "secrets-store.csi.x-k8s.io/restart-on-rotation";
export const RELOADER_AUTO = "reloader.stakater.com/auto";
export const RELOADER_SECRET_AUTO = "secret.reloader.stakater.com/auto";
export const RELOADER_SPC_AUTO = "secretproviderclass.reloader.stakater.com/auto";
export const RELOADER_SECRET_RELOAD = "secret.reloader.stakater.com/reload";
export const RELOADER_SPC_RELOAD = "secretproviderclass.reloader.stakater.com/reload";

export const FOLLOW_ANNOTATIONS = [RESTART_ANNOTATION, RELOADER_AUTO, RELOADER_SECRET_AUTO, RELOADER_SPC_AUTO, RELOADER_SECRET_RELOAD, RELOADER_SPC_RELOAD];

/** The pod template annotations restart on rotation sets: <prefix>/<spc|secret>.<name>. */
export const ROLLOUT_ANNOTATION_PREFIX = "rotation.secrets-store.csi.x-k8s.io/";

const CSI_DRIVER = "secrets-store.csi.k8s.io";
/** Names kept per workload and kind, at most. */
const MAX_NAMES = 64;
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export type WorkloadKind = "Deployment" | "StatefulSet" | "DaemonSet";

export interface Following {
  classes: string[];
  secrets: string[];
}

interface RawContainer {
  env?: Array<{ valueFrom?: { secretKeyRef?: { name?: string } } }>;
  envFrom?: Array<{ secretRef?: { name?: string } }>;
}

/** The parts of a pod template this module reads. */
export interface RawPodTemplate {
  metadata?: { annotations?: Record<string, string> };
  spec?: {
    containers?: RawContainer[];
    initContainers?: RawContainer[];
    volumes?: Array<{
      csi?: { driver?: string; volumeAttributes?: Record<string, string> };
      secret?: { secretName?: string };
      projected?: { sources?: Array<{ secret?: { name?: string } }> };
    }>;
  };
}

const isTrue = (v: string | undefined) => v?.trim().toLowerCase() === "true";

function names(list: string | undefined): string[] {
  if (!list) return [];
  return [
    ...new Set(
      list
        .split(",")
        .map((n) => n.trim())
        .filter((n) => NAME.test(n)),
    ),
  ].slice(0, MAX_NAMES);
}

/** The classes a pod template mounts through the secrets-store CSI driver. */
export function mountedClasses(template: RawPodTemplate | undefined): string[] {
  const out = new Set<string>();
  for (const v of template?.spec?.volumes ?? []) {
    const name = v.csi?.driver === CSI_DRIVER ? v.csi.volumeAttributes?.secretProviderClass : undefined;
    if (name && NAME.test(name)) out.add(name);
  }
  return [...out].slice(0, MAX_NAMES);
}

/** The Secrets a pod template reads: env, envFrom, secret and projected volumes. */
export function referencedSecrets(template: RawPodTemplate | undefined): string[] {
  const out = new Set<string>();
  const add = (n: string | undefined) => n && NAME.test(n) && out.add(n);
  const spec = template?.spec;
  for (const c of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]) {
    for (const e of c.env ?? []) add(e.valueFrom?.secretKeyRef?.name);
    for (const e of c.envFrom ?? []) add(e.secretRef?.name);
  }
  for (const v of spec?.volumes ?? []) {
    add(v.secret?.secretName);
    for (const s of v.projected?.sources ?? []) add(s.secret?.name);
  }
  return [...out].slice(0, MAX_NAMES);
}

/** What a workload follows, from its annotations and pod template; undefined when it opted in to nothing. */
export function followingOf(annotations: Record<string, string> | undefined, template: RawPodTemplate | undefined): Following | undefined {
  const a = annotations ?? {};
  const ours = isTrue(a[RESTART_ANNOTATION]);
  const auto = ours || isTrue(a[RELOADER_AUTO]);
  const classes = new Set(names(a[RELOADER_SPC_RELOAD]));
  const secrets = new Set(names(a[RELOADER_SECRET_RELOAD]));
  if (auto || isTrue(a[RELOADER_SPC_AUTO])) for (const c of mountedClasses(template)) classes.add(c);
  if (auto || isTrue(a[RELOADER_SECRET_AUTO])) for (const s of referencedSecrets(template)) secrets.add(s);
  if (classes.size === 0 && secrets.size === 0) return undefined;
  return { classes: [...classes].slice(0, MAX_NAMES), secrets: [...secrets].slice(0, MAX_NAMES) };
}

/** The pod template annotation that records the content a workload was rolled for. */
export function rolloutAnnotation(source: "spc" | "secret", name: string): string {
  const key = `${source}.${name}`;
  if (key.length <= 63) return ROLLOUT_ANNOTATION_PREFIX + key;
  // Names may be longer than an annotation name allows: keep a readable
  // prefix and make it unique with a hash of the whole name.
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return `${ROLLOUT_ANNOTATION_PREFIX}${key.slice(0, 54).replace(/[-.]+$/, "")}-${hash.toString(16).padStart(8, "0")}`;
}
