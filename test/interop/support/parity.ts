// Runs one parity case against a provider pair and decides what happened:
// the Mount request both providers get, their answers, and the outcome as the
// acceptance rule reads it (see parity-cases.ts).
import type { ServiceError } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { objectsYaml, type MountResponse } from "../../provider/client.ts";
import type { Expectation, ParityCase } from "../parity-cases.ts";
import { upstreamVolumeProblem } from "./upstream-volume.ts";
import { IB_APP, NO_ACCESS, POD, SP, UAMI, VAULT, WI_APP, type ProviderPair, type World } from "./world.ts";

export type Answer = { ok: MountResponse } | { error: { code: string; message: string } };

export interface PairOutcome {
  setting: string;
  upstream: Answer;
  ours: Answer;
  /** Why upstream's answer is not a valid volume. */
  upstreamProblem?: string;
  outcome: Expectation["outcome"] | "different";
  /** What differed, when the outcome is "different". */
  difference?: string;
}

export interface MountRequestArgs {
  attributes: Record<string, string>;
  secrets: Record<string, string> | null;
  permission: string;
}

/** The SecretProviderClass parameters of a case (what a lint of the class sees). */
export async function caseParameters(c: ParityCase, world: World): Promise<Record<string, string>> {
  const params: Record<string, string | undefined> = {
    keyvaultName: VAULT,
    tenantID: world.emulator.tenantId,
    objects: c.objectsText ?? objectsYaml(c.objects ?? []),
  };
  if (c.identity === "wi") params.clientID = WI_APP;
  if (c.identity === "ib") Object.assign(params, { clientID: IB_APP, useAzureTokenProxy: "true" });
  if (c.identity === "mi-system" || c.identity === "mi-user") params.useVMManagedIdentity = "true";
  if (c.identity === "mi-user") params.userAssignedIdentityID = UAMI;
  Object.assign(params, c.parameters ?? {});
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) if (v !== undefined) out[k] = await resolve(v, world);
  return out;
}

/** Replaces {{...}} placeholders: version ids, principals, the tenant. */
async function resolve(text: string, world: World): Promise<string> {
  const fixed: Record<string, string> = {
    "sp-client-id": SP.clientId,
    "sp-client-secret": SP.clientSecret,
    "no-access-client-id": NO_ACCESS.clientId,
    "no-access-client-secret": NO_ACCESS.clientSecret,
    tenant: world.emulator.tenantId,
    uami: UAMI,
  };
  let out = text;
  for (const match of text.matchAll(/\{\{([^}]+)\}\}/g)) {
    const name = match[1]!;
    let value = fixed[name];
    const v = /^(secrets|keys|certificates)\/([\w-]+)@(\d+)$/.exec(name);
    if (v) value = (await world.versions(v[1] as "secrets" | "keys" | "certificates", v[2]!))[Number(v[3])];
    if (value === undefined) throw new Error(`unknown placeholder {{${name}}}`);
    out = out.replace(match[0], value);
  }
  return out;
}

/** The audiences the chart's CSIDriver asks kubelet for tokens for. */
const KUBELET_AUDIENCES = ["api://AzureADTokenExchange", "api://AKSIdentityBinding"];

/** kubelet's serviceAccount.tokens attribute: a token of POD's service account per audience. */
function kubeletTokens(world: World, audiences: string[]): string {
  const expirationTimestamp = new Date(Date.now() + 3600_000).toISOString();
  return JSON.stringify(Object.fromEntries(audiences.map((audience) => [audience, { token: world.serviceAccountToken(audience), expirationTimestamp }])));
}

export async function mountRequest(c: ParityCase, world: World): Promise<MountRequestArgs> {
  const attributes: Record<string, string | undefined> = {
    secretProviderClass: "interop",
    "csi.storage.k8s.io/pod.name": POD.name,
    "csi.storage.k8s.io/pod.namespace": POD.namespace,
    "csi.storage.k8s.io/pod.uid": POD.uid,
    "csi.storage.k8s.io/serviceAccount.name": POD.serviceAccount,
    "csi.storage.k8s.io/ephemeral": "true",
    ...(await caseParameters(c, world)),
  };
  const audiences = c.audiences ?? (c.identity === "wi" ? ["api://AzureADTokenExchange"] : c.identity === "ib" ? KUBELET_AUDIENCES : []);
  if (audiences.length > 0) attributes["csi.storage.k8s.io/serviceAccount.tokens"] = kubeletTokens(world, audiences);
  Object.assign(attributes, c.attributes ?? {});
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined) clean[k] = v;

  let secrets: Record<string, string> | null = null;
  if (c.secrets !== undefined) {
    if (c.secrets !== null) {
      secrets = {};
      for (const [k, v] of Object.entries(c.secrets)) secrets[k] = await resolve(v, world);
    }
  } else if ((c.identity ?? "sp") === "sp") {
    secrets = { clientid: SP.clientId, clientsecret: SP.clientSecret };
  }
  return { attributes: clean, secrets, permission: c.permission ?? "420" };
}

async function answer(p: Promise<MountResponse>): Promise<Answer> {
  try {
    const res = await p;
    return { ok: { object_version: res.object_version ?? [], files: (res.files ?? []).map((f) => ({ path: f.path, mode: f.mode, contents: Buffer.from(f.contents) })) } };
  } catch (err) {
    const e = err as ServiceError;
    return { error: { code: status[e.code] ?? String(e.code), message: e.details ?? e.message } };
  }
}

/** Objects of a case as upstream parses them (type and name), for the judge. */
function classObjects(c: ParityCase): Array<{ objectType: string; objectName: string }> {
  return (c.objects ?? []).map((o) => ({ objectType: String(o.objectType ?? "").trim(), objectName: String(o.objectName ?? "").trim() }));
}

function sameFiles(a: MountResponse, b: MountResponse, rename: Record<string, string> = {}): string | undefined {
  const want = a.files.map((f) => ({ ...f, path: rename[f.path] ?? f.path }));
  if (want.length !== b.files.length) return `${want.length} files upstream, ${b.files.length} here`;
  for (const [i, f] of want.entries()) {
    const g = b.files[i]!;
    if (f.path !== g.path) return `file ${i}: "${f.path}" upstream, "${g.path}" here`;
    if (f.mode !== g.mode) return `"${f.path}": mode 0${f.mode.toString(8)} upstream, 0${g.mode.toString(8)} here`;
    if (!Buffer.from(f.contents).equals(Buffer.from(g.contents))) return `"${f.path}": contents differ (${f.contents.length} bytes upstream, ${g.contents.length} here)`;
  }
  const va = JSON.stringify(a.object_version);
  const vb = JSON.stringify(b.object_version);
  if (va !== vb) return `object versions differ: ${va} upstream, ${vb} here`;
  return undefined;
}

/** An extension beyond upstream: ours gives what the case says; upstream's provider fails or mounts it without the feature. */
async function judgeExtension(expect: Extract<Expectation, { outcome: "extension" }>, base: Omit<PairOutcome, "outcome">, world: World): Promise<PairOutcome> {
  const { upstream, ours } = base;
  if (expect.upstream === "fails" && !("error" in upstream)) return { ...base, outcome: "different", difference: "upstream mounts it" };
  if (expect.upstream === "mounts" && "error" in upstream) return { ...base, outcome: "different", difference: `upstream fails: ${upstream.error.message}` };
  if (expect.here instanceof RegExp) {
    if (!("error" in ours)) return { ...base, outcome: "different", difference: "ours mounts it" };
    return expect.here.test(ours.error.message) ? { ...base, outcome: "extension" } : { ...base, outcome: "different", difference: `ours refuses otherwise: ${ours.error.message}` };
  }
  if ("error" in ours) return { ...base, outcome: "different", difference: `ours refuses: ${ours.error.message}` };
  const paths = ours.ok.files.map((f) => f.path);
  if (JSON.stringify(paths) !== JSON.stringify(expect.here)) return { ...base, outcome: "different", difference: `ours mounts ${JSON.stringify(paths)}` };
  if (expect.versions) {
    const want = await Promise.all(expect.versions.map(async (v) => ({ id: v.id, version: await resolve(v.version, world) })));
    if (JSON.stringify(ours.ok.object_version) !== JSON.stringify(want)) return { ...base, outcome: "different", difference: `object versions ${JSON.stringify(ours.ok.object_version)}` };
  }
  return { ...base, outcome: "extension" };
}

export async function runOnPair(c: ParityCase, world: World, pair: ProviderPair): Promise<PairOutcome> {
  const request = await mountRequest(c, world);
  const [upstream, ours] = await Promise.all([answer(pair.upstream.client.mount(request, 60_000)), answer(pair.ours.client.mount(request, 60_000))]);
  const base = { setting: pair.setting.id, upstream, ours };
  if (c.expect.outcome === "extension") return judgeExtension(c.expect, base, world);
  if ("error" in upstream) {
    if ("error" in ours) return { ...base, outcome: "both-refuse" };
    return { ...base, outcome: "different", difference: "upstream refuses, ours mounts" };
  }
  const problem = upstreamVolumeProblem(upstream.ok, classObjects(c));
  if (problem === undefined) {
    if ("error" in ours) {
      // a bound of ours (the case says so, and the message must name it)
      if (c.expect.outcome === "limit") return { ...base, outcome: "limit" };
      return { ...base, outcome: "different", difference: `upstream mounts a valid volume, ours refuses: ${ours.error.message}` };
    }
    const diff = sameFiles(upstream.ok, ours.ok);
    return diff ? { ...base, outcome: "different", difference: diff } : { ...base, outcome: "same" };
  }
  if ("error" in ours) return { ...base, upstreamProblem: problem, outcome: "refused" };
  const rename = c.expect.outcome === "normalised" ? c.expect.paths : {};
  const diff = sameFiles(upstream.ok, ours.ok, rename);
  if (diff) return { ...base, upstreamProblem: problem, outcome: "different", difference: `upstream's answer is broken (${problem}) and ours differs: ${diff}` };
  return { ...base, upstreamProblem: problem, outcome: "normalised" };
}
