// examples/: every SecretProviderClass is well-formed for the CRD and the
// Azure provider, and every pod references what its folder provides.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { REPO_ROOT } from "../../scripts/generate-deploy.ts";
import { one, render } from "./chart.ts";
import { loadExamples, type Example, type ExampleObject } from "./examples.ts";

interface Schema {
  properties?: Record<string, Schema>;
  items?: Schema;
}

const spcSchema = (
  YAML.parse(readFileSync(join(REPO_ROOT, "deploy/crds/secrets-store.csi.x-k8s.io_secretproviderclasses.yaml"), "utf8")) as {
    spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
  }
).spec.versions.find((v) => v.name === "v1")!.schema.openAPIV3Schema.properties!.spec!;

interface KeyVaultObject {
  objectName?: string;
  objectType?: string;
  objectAlias?: string;
  objectVersion?: string;
  objectVersionHistory?: number;
  objectEncoding?: string;
  objectFormat?: string;
  filePermission?: string;
  /** Extensions beyond upstream (examples/beyond-upstream-*). */
  objectTags?: string;
  optional?: string;
}

interface Spc extends ExampleObject {
  spec: {
    provider: string;
    parameters: Record<string, unknown>;
    secretObjects?: { secretName: string; type: string; data: { objectName: string; key: string }[]; labels?: Record<string, string> }[];
  };
}

interface Pod extends ExampleObject {
  spec: {
    serviceAccountName?: string;
    containers: { volumeMounts?: { name: string; readOnly?: boolean }[] }[];
    volumes: { name: string; csi?: { driver: string; readOnly?: boolean; volumeAttributes?: Record<string, string>; nodePublishSecretRef?: { name: string } } }[];
  };
}

/** The objects parameter: YAML with an `array` of YAML strings, each one object (as the provider parses it). */
function keyVaultObjects(spc: Spc): KeyVaultObject[] {
  const raw = spc.spec.parameters.objects;
  expect(typeof raw).toBe("string");
  const parsed = YAML.parse(raw as string) as { array?: unknown[] };
  expect(Array.isArray(parsed.array), "objects needs a top-level array").toBe(true);
  return parsed.array!.map((item) => {
    expect(typeof item, "each array item is a YAML string (written with - |)").toBe("string");
    return YAML.parse(item as string) as KeyVaultObject;
  });
}

const fileName = (o: KeyVaultObject) => o.objectAlias || o.objectName!;
const isPattern = (o: KeyVaultObject) => /[*?]/.test(o.objectName ?? "");
/** The files a pattern's matches get: its alias as a prefix, then a name the pattern matches. */
const patternFiles = (o: KeyVaultObject) => new RegExp(`^${(o.objectAlias ?? "").replace(/[.+^${}()|[\]\\]/g, "\\$&")}${o.objectName!.replace(/\*/g, "[0-9a-zA-Z-]*").replace(/\?/g, "[0-9a-zA-Z-]")}$`, "i");
const beyondUpstream = (name: string) => name.startsWith("beyond-upstream-");
const truthy = (v: unknown) => ["1", "t", "T", "true", "TRUE", "True"].includes(String(v ?? "").trim());

function identityMode(spc: Spc): "workload identity" | "identity binding" | "managed identity" | "service principal" {
  const p = spc.spec.parameters;
  if (truthy(p.useVMManagedIdentity)) return "managed identity";
  if (truthy(p.useAzureTokenProxy)) return "identity binding";
  if (typeof p.clientID === "string" && p.clientID.trim() !== "") return "workload identity";
  return "service principal";
}

const examples = loadExamples();
const isSyncExample = (e: Example) => e.objects.some((o) => o.kind === "SecretSync");
/** Examples that mount a CSI volume; the SecretSync ones have their own checks below. */
const mounting = examples.filter((e) => !isSyncExample(e));

describe("examples", () => {
  it("cover service principal, nodePublishSecretRef, certificate sync, workload identity, identity binding and SecretSync", () => {
    expect(examples.map((e) => e.name)).toEqual(
      expect.arrayContaining(["service-principal-secret", "service-principal-secret-ref", "certificate-tls-sync", "workload-identity", "identity-binding", "secret-sync"]),
    );
  });

  describe.each(mounting.map((e) => [e.name, e] as [string, Example]))("%s", (_name, example) => {
    const spc = example.objects.find((o) => o.kind === "SecretProviderClass") as Spc;
    const pod = example.objects.find((o) => o.kind === "Pod") as Pod;

    it("has one SecretProviderClass and one pod, with no fixed namespace", () => {
      expect(example.objects.filter((o) => o.kind === "SecretProviderClass")).toHaveLength(1);
      expect(example.objects.filter((o) => o.kind === "Pod")).toHaveLength(1);
      for (const o of example.objects) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBeUndefined();
    });

    it("writes the SecretProviderClass with the CRD's fields and the provider's parameters", () => {
      expect(spc.apiVersion).toBe("secrets-store.csi.x-k8s.io/v1");
      expect(spc.spec.provider).toBe("azure");
      for (const key of Object.keys(spc.spec)) expect(Object.keys(spcSchema.properties!), `spec.${key}`).toContain(key);
      const itemFields = Object.keys(spcSchema.properties!.secretObjects?.items?.properties ?? {});
      for (const so of spc.spec.secretObjects ?? []) for (const key of Object.keys(so)) expect(itemFields, `secretObjects[].${key}`).toContain(key);
      for (const [k, v] of Object.entries(spc.spec.parameters)) expect(typeof v, `parameters.${k} must be a string`).toBe("string");
      expect(spc.spec.parameters.keyvaultName).toMatch(/^[-A-Za-z0-9]{3,24}$/);
      expect(spc.spec.parameters.tenantID).toMatch(/^[0-9a-fA-F-]{36}$/);
      const modes = ["usePodIdentity", "useVMManagedIdentity", "useAzureTokenProxy"].filter((k) => truthy(spc.spec.parameters[k]));
      expect(modes.length, "only one identity mode at a time").toBeLessThanOrEqual(1);
    });

    it("lists Key Vault objects the provider accepts", () => {
      const objects = keyVaultObjects(spc);
      expect(objects.length).toBeGreaterThan(0);
      const files = new Set<string>();
      for (const o of objects) {
        // patterns, objectTags and optional are extensions, shown only in the examples that say so
        if (beyondUpstream(example.name)) expect(o.objectName).toMatch(/^[0-9a-zA-Z*?-]{1,127}$/);
        else {
          expect(o.objectName).toMatch(/^[0-9a-zA-Z-]{1,127}$/);
          expect(o.objectTags ?? o.optional, "extensions beyond upstream only in examples/beyond-upstream-*").toBeUndefined();
        }
        if (o.optional !== undefined) expect(["true", "false"]).toContain(o.optional);
        if (o.objectTags !== undefined) expect(o.objectTags).toMatch(/^[^=,]+=[^,]*(,[^=,]+=[^,]*)*$/);
        expect(["secret", "key", "cert"]).toContain(o.objectType);
        const file = fileName(o);
        expect(file.startsWith("/"), `${file} must be relative`).toBe(false);
        expect(file.includes(".."), `${file} must not contain ..`).toBe(false);
        expect(files.has(file), `two objects write ${file}`).toBe(false);
        files.add(file);
        if (o.objectEncoding !== undefined) {
          expect(o.objectType).toBe("secret");
          expect(["utf-8", "hex", "base64"]).toContain(o.objectEncoding.toLowerCase());
        }
        if (o.objectFormat !== undefined) expect(["pem", "pfx"]).toContain(o.objectFormat.toLowerCase());
        if (o.objectVersionHistory !== undefined) expect(Number.isInteger(o.objectVersionHistory)).toBe(true);
        if (o.filePermission !== undefined) expect(o.filePermission).toMatch(/^0?[0-7]{3}$/);
      }
    });

    it("syncs only mounted objects, with the keys a TLS Secret allows", () => {
      const objects = keyVaultObjects(spc);
      const names = new Set(objects.filter((o) => !isPattern(o)).flatMap((o) => [o.objectName!, fileName(o)]));
      const patterns = objects.filter(isPattern).map(patternFiles);
      const mounted = (path: string) => names.has(path) || patterns.some((p) => p.test(path));
      for (const so of spc.spec.secretObjects ?? []) {
        expect(so.secretName).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
        expect(so.type).not.toBe("");
        expect(so.data.length).toBeGreaterThan(0);
        for (const d of so.data) {
          expect(mounted(d.objectName), `secretObjects ${so.secretName} reads ${d.objectName}, which is not mounted`).toBe(true);
          if (so.type === "kubernetes.io/tls") expect(["tls.key", "tls.crt"]).toContain(d.key);
        }
        if (so.type === "kubernetes.io/tls") expect(so.data.map((d) => d.key).sort()).toEqual(["tls.crt", "tls.key"]);
      }
    });

    it("mounts the SecretProviderClass read-only through the driver", () => {
      const volumes = pod.spec.volumes.filter((v) => v.csi);
      expect(volumes).toHaveLength(1);
      const csi = volumes[0]!.csi!;
      expect(csi.driver).toBe("secrets-store.csi.k8s.io");
      expect(csi.readOnly).toBe(true);
      expect(csi.volumeAttributes?.secretProviderClass).toBe(spc.metadata.name);
      const mounts = pod.spec.containers.flatMap((c) => c.volumeMounts ?? []).filter((m) => m.name === volumes[0]!.name);
      expect(mounts.length).toBeGreaterThan(0);
      for (const m of mounts) expect(m.readOnly).toBe(true);
    });

    it("provides what its identity mode needs", () => {
      const csi = pod.spec.volumes.find((v) => v.csi)!.csi!;
      const mode = identityMode(spc);
      if (mode === "service principal") {
        const ref = csi.nodePublishSecretRef?.name;
        expect(ref, "a service principal needs nodePublishSecretRef").toBeDefined();
        const secret = example.objects.find((o) => o.kind === "Secret" && o.metadata.name === ref) as
          | (ExampleObject & { stringData?: Record<string, string>; data?: Record<string, string> })
          | undefined;
        if (secret) {
          expect(Object.keys({ ...secret.data, ...secret.stringData }).sort()).toEqual(["clientid", "clientsecret"]);
        } else {
          // The Secret is created by hand; the comment must say how.
          expect([...example.texts.values()].join("\n")).toContain(`kubectl create secret generic ${ref}`);
        }
      } else if (mode === "workload identity") {
        const sa = example.objects.find((o) => o.kind === "ServiceAccount" && o.metadata.name === pod.spec.serviceAccountName);
        expect(sa, "workload identity needs the pod's federated ServiceAccount").toBeDefined();
        expect(sa!.metadata.annotations?.["azure.workload.identity/client-id"]).toBe(spc.spec.parameters.clientID);
        expect(csi.nodePublishSecretRef).toBeUndefined();
        // The driver must be asked for the token the provider exchanges.
        const csiDriver = one(render(), "CSIDriver").spec as { tokenRequests: { audience: string }[] };
        expect(csiDriver.tokenRequests.map((t) => t.audience)).toContain("api://AzureADTokenExchange");
      } else if (mode === "identity binding") {
        expect(spc.spec.parameters.clientID).toMatch(/^[0-9a-fA-F-]{36}$/);
        const sa = example.objects.find((o) => o.kind === "ServiceAccount" && o.metadata.name === pod.spec.serviceAccountName);
        expect(sa, "identity binding needs the pod's ServiceAccount").toBeDefined();
        // the token proxy lets a service account use the identity if a ClusterRole allows it
        const role = example.objects.find((o) => o.kind === "ClusterRole") as (ExampleObject & { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }) | undefined;
        expect(role?.rules).toContainEqual({ apiGroups: ["cid.wi.aks.azure.com"], resources: [spc.spec.parameters.clientID], verbs: ["use-managed-identity"] });
        expect([...example.texts.values()].join("\n")).toContain(`--clusterrole=${role!.metadata.name} --serviceaccount=<namespace>:${sa!.metadata.name}`);
        expect(csi.nodePublishSecretRef).toBeUndefined();
        const csiDriver = one(render(), "CSIDriver").spec as { tokenRequests: { audience: string }[] };
        expect(csiDriver.tokenRequests.map((t) => t.audience)).toContain("api://AKSIdentityBinding");
      } else {
        expect(spc.spec.parameters.userAssignedIdentityID ?? "").toMatch(/^([0-9a-fA-F-]{36})?$/);
      }
      if (spc.spec.secretObjects?.length) expect(example.name).toMatch(/sync/);
    });
  });
});

const ssSchema = (
  YAML.parse(readFileSync(join(REPO_ROOT, "deploy/crds/secret-sync.x-k8s.io_secretsyncs.yaml"), "utf8")) as {
    spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
  }
).spec.versions.find((v) => v.name === "v1alpha1")!.schema.openAPIV3Schema.properties!.spec!;

interface SecretSyncExample extends ExampleObject {
  spec: {
    secretProviderClassName: string;
    serviceAccountName: string;
    forceSynchronization?: string;
    secretObject: { type: string; data: { sourcePath: string; targetKey: string }[]; labels?: Record<string, string> };
  };
}

describe.each(examples.filter(isSyncExample).map((e) => [e.name, e] as [string, Example]))("SecretSync example %s", (_name, example) => {
  const spc = example.objects.find((o) => o.kind === "SecretProviderClass") as Spc;
  const syncs = example.objects.filter((o) => o.kind === "SecretSync") as SecretSyncExample[];
  const workloads = example.objects.filter((o) => o.kind === "Deployment" || o.kind === "Pod");

  it("holds a class, its federated service account, SecretSyncs and a workload, with no fixed namespace", () => {
    expect(example.objects.filter((o) => o.kind === "SecretProviderClass")).toHaveLength(1);
    expect(syncs.length).toBeGreaterThan(0);
    expect(workloads).toHaveLength(1);
    for (const o of example.objects) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBeUndefined();
    expect(identityMode(spc)).toBe("workload identity");
    for (const ss of syncs) {
      expect(ss.apiVersion).toBe("secret-sync.x-k8s.io/v1alpha1");
      for (const key of Object.keys(ss.spec)) expect(Object.keys(ssSchema.properties!), `spec.${key}`).toContain(key);
      expect(ss.spec.secretProviderClassName).toBe(spc.metadata.name);
      const sa = example.objects.find((o) => o.kind === "ServiceAccount" && o.metadata.name === ss.spec.serviceAccountName);
      expect(sa?.metadata.annotations?.["azure.workload.identity/client-id"]).toBe(spc.spec.parameters.clientID);
    }
    // The controller asks for the token the provider exchanges.
    const values = YAML.parse(readFileSync(join(REPO_ROOT, "charts/secrets-store-csi-driver-azure/values.yaml"), "utf8")) as { syncController: { tokenRequestAudience: { audience: string }[] } };
    expect(values.syncController.tokenRequestAudience.map((a) => a.audience)).toContain("api://AzureADTokenExchange");
  });

  it("reads only files the class returns, with the keys a TLS Secret allows", () => {
    const files = new Set(keyVaultObjects(spc).map(fileName));
    for (const ss of syncs) {
      for (const d of ss.spec.secretObject.data) expect(files, `${ss.metadata.name} reads ${d.sourcePath}`).toContain(d.sourcePath);
      if (ss.spec.secretObject.type === "kubernetes.io/tls") expect(ss.spec.secretObject.data.map((d) => d.targetKey).sort()).toEqual(["tls.crt", "tls.key"]);
    }
  });

  it("has a workload that uses the synced Secrets as plain Secrets, with no CSI volume", () => {
    const spec = (workloads[0]!.kind === "Pod" ? workloads[0]!.spec : (workloads[0]!.spec as { template: { spec: unknown } }).template.spec) as {
      containers: { env?: { valueFrom?: { secretKeyRef?: { name: string; key: string } } }[] }[];
      volumes?: { csi?: unknown; secret?: { secretName: string } }[];
    };
    expect((spec.volumes ?? []).some((v) => v.csi)).toBe(false);
    const used = [
      ...spec.containers.flatMap((c) => (c.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef] : []))),
      ...(spec.volumes ?? []).flatMap((v) => (v.secret ? [{ name: v.secret.secretName, key: undefined }] : [])),
    ];
    expect(used.length).toBeGreaterThan(0);
    for (const ref of used) {
      const ss = syncs.find((s) => s.metadata.name === ref.name);
      expect(ss, `the workload reads Secret ${ref.name}, which no SecretSync of the folder writes`).toBeDefined();
      if (ref.key !== undefined) expect(ss!.spec.secretObject.data.map((d) => d.targetKey)).toContain(ref.key);
    }
  });
});
