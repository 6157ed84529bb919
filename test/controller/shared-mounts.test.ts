// Provider calls as the controller makes them, against a provider on a real
// unix socket: the Mount request upstream's controller sends, one call shared
// by the SecretSyncs of a (namespace, class, service account), never across
// identities, a fresh call when a rotation tick asks for one, and a bounded
// cache whatever a tenant creates.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServiceAccountTokens } from "../../src/controller/provider/service-account-tokens.ts";
import { SharedMounts } from "../../src/controller/provider/shared-mounts.ts";
import { SyncFailure } from "../../src/controller/reconcile/sync-failure.ts";
import { createLogger } from "../../src/shared/logger.ts";
import { ProviderClients } from "../../src/shared/provider-api/provider-client.ts";
import { sleep, startFakeProvider, type FakeProvider } from "../support/fake-provider.ts";
import { apiError, recordingRest, secretProviderClass, secretSync } from "./fakes.ts";

const logger = createLogger({ name: "test", level: "silent" });
let dir: string;
let provider: FakeProvider;
let providers: ProviderClients;
const stopping = new AbortController();

function tokens(audiences: string[] = ["api://AzureADTokenExchange"]) {
  let n = 0;
  const recording = recordingRest((spec) => {
    if (spec.path.includes("/serviceaccounts/missing/")) throw apiError(404, 'serviceaccounts "missing" not found');
    n++;
    return { status: { token: `token-${n}`, expirationTimestamp: new Date(Date.now() + 600_000).toISOString() } };
  });
  return { tokens: new ServiceAccountTokens(recording.rest, { audiences, maxEntries: 100 }), calls: recording.calls };
}

function mounts(maxEntries = 100, t = tokens().tokens) {
  let calls = 0;
  let shared = 0;
  const m = new SharedMounts(providers, t, { pod: { name: "controller-0", uid: "pod-uid-0" }, maxEntries, idleMs: 60_000, onCall: () => calls++, onShared: () => shared++ }, stopping.signal);
  return { mounts: m, counts: () => ({ calls, shared }) };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ssc-mounts-"));
  provider = await startFakeProvider(join(dir, "fake.sock"), async () => {
    await sleep(20);
    return { object_version: [{ id: "a", version: "1" }], files: [{ path: "a", mode: 0o644, contents: `value-${provider.requests.length}` }] };
  });
  providers = new ProviderClients([dir], 4 * 1024 * 1024, logger);
});

afterAll(async () => {
  stopping.abort();
  providers.close();
  await provider.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("the provider call", () => {
  it("is the Mount request upstream's controller sends: class parameters, the controller's pod, the SecretSync's namespace and service account, tokens per audience", async () => {
    const { mounts: m } = mounts(100, tokens(["api://AzureADTokenExchange", "api://other"]).tokens);
    const before = provider.requests.length;
    await m.files(secretSync("s", { serviceAccountName: "app" }), secretProviderClass("req"), Date.now());
    const request = provider.requests[before]!;
    expect(request.secrets).toBe("{}");
    expect(request.target_path).toBe("/mnt/secrets-store");
    expect(request.permission).toBe("420");
    expect(request.current_object_version).toEqual([]);
    const attributes = JSON.parse(request.attributes) as Record<string, string>;
    expect(Object.keys(attributes)).toEqual(Object.keys(attributes).sort());
    expect(attributes).toMatchObject({
      objects: "a",
      "csi.storage.k8s.io/pod.name": "controller-0",
      "csi.storage.k8s.io/pod.uid": "pod-uid-0",
      "csi.storage.k8s.io/pod.namespace": "team-a",
      "csi.storage.k8s.io/serviceAccount.name": "app",
    });
    const issued = JSON.parse(attributes["csi.storage.k8s.io/serviceAccount.tokens"]!) as Record<string, { token: string; expirationTimestamp: string }>;
    expect(Object.keys(issued)).toEqual(["api://AzureADTokenExchange", "api://other"]);
    expect(issued["api://other"]!.token).toMatch(/^token-\d+$/);
  });

  it("asks one TokenRequest per audience, 600 s, and reuses it until 80 % of its life", async () => {
    const { tokens: t, calls } = tokens(["aud-1"]);
    await t.tokensAttribute("team-a", "app");
    await t.tokensAttribute("team-a", "app");
    expect(calls).toHaveLength(1);
    expect(calls[0]!.method).toBe("POST");
    expect(calls[0]!.path).toBe("/api/v1/namespaces/team-a/serviceaccounts/app/token");
    expect(calls[0]!.body).toEqual({ apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences: ["aud-1"], expirationSeconds: 600 } });
    await t.tokensAttribute("team-a", "other");
    expect(calls).toHaveLength(2);
    // No audience configured: no token at all, and no TokenRequest.
    const none = recordingRest(() => ({}));
    expect(await new ServiceAccountTokens(none.rest, { audiences: [], maxEntries: 1 }).tokensAttribute("n", "s")).toBeUndefined();
    expect(none.calls).toEqual([]);
  });

  it("says which service account is missing and how to fix it", async () => {
    const { tokens: t } = tokens(["aud-1"]);
    const err = (await t.tokensAttribute("team-a", "missing").catch((e: unknown) => e)) as SyncFailure;
    expect(err.reason).toBe("ControllerSyncError");
    expect(err.message).toBe("serviceaccount team-a/missing does not exist: create it or fix spec.serviceAccountName");
  });

  it("serves every SecretSync of one class and service account with one call", async () => {
    const { mounts: m, counts } = mounts();
    const spc = secretProviderClass("shared");
    const now = Date.now();
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => m.files(secretSync(`s${i}`), spc, now)));
    expect(counts()).toEqual({ calls: 1, shared: 19 });
    expect(new Set(answers.map((a) => a.files.get("a")!.toString())).size).toBe(1);
    // Later syncs without a newer tick reuse it; a tick asks for a new call.
    await m.files(secretSync("late"), spc, now);
    expect(counts().calls).toBe(1);
    await m.files(secretSync("late"), spc, Date.now() + 1);
    expect(counts().calls).toBe(2);
  });

  it("never shares an answer across service accounts, namespaces or class versions", async () => {
    const { mounts: m, counts } = mounts();
    const spc = secretProviderClass("identities");
    await m.files(secretSync("a", { serviceAccountName: "one" }), spc, 0);
    await m.files(secretSync("b", { serviceAccountName: "two" }), spc, 0);
    await m.files(secretSync("c", { serviceAccountName: "one", namespace: "team-b" }), { ...spc, metadata: { ...spc.metadata, namespace: "team-b" } }, 0);
    await m.files(secretSync("d", { serviceAccountName: "one" }), { ...spc, metadata: { ...spc.metadata, generation: 2 } }, 0);
    expect(counts()).toEqual({ calls: 4, shared: 0 });
  });

  it("keeps at most maxEntries answers however many classes a hostile tenant creates", async () => {
    const { mounts: m } = mounts(5);
    for (let i = 0; i < 40; i++) await m.files(secretSync(`s${i}`), secretProviderClass(`hostile-${i}`), 0);
    expect(m.size).toBe(5);
    m.forgetClass("team-a", "uid-spc-hostile-39");
    expect(m.size).toBe(4);
  });

  it("reports a provider that is not there as the class's problem, naming it", async () => {
    const { mounts: m } = mounts();
    const err = (await m.files(secretSync("s"), secretProviderClass("nope", "team-a", "u-nope", "vault"), 0).catch((e: unknown) => e)) as SyncFailure;
    expect(err.reason).toBe("SecretProviderClassMisconfigured");
    expect(err.message).toMatch(/^secretproviderclass team-a\/nope: provider not found: provider "vault": no socket vault\.sock in /);
  });

  it("passes a provider's error on as ProviderError, in one line", async () => {
    const saved = provider.behaviour;
    provider.behaviour = () => Promise.reject(Object.assign(new Error("vault said no"), { code: 7, details: "keyvault kv-x: secret db-pass\nforbidden" }));
    try {
      const { mounts: m } = mounts();
      const err = (await m.files(secretSync("s"), secretProviderClass("failing"), 0).catch((e: unknown) => e)) as SyncFailure;
      expect(err.reason).toBe("ProviderError");
      expect(err.message).toBe('provider "fake" failed for secretproviderclass team-a/failing and serviceaccount team-a/app: provider "fake": keyvault kv-x: secret db-pass forbidden');
    } finally {
      provider.behaviour = saved;
    }
  });
});

describe("service-account tokens", () => {
  it("are kept for a bounded number of service accounts", async () => {
    const recording = recordingRest(() => ({ status: { token: "t", expirationTimestamp: new Date(Date.now() + 600_000).toISOString() } }));
    const t = new ServiceAccountTokens(recording.rest, { audiences: ["a"], maxEntries: 4 });
    for (let i = 0; i < 50; i++) await t.tokensAttribute("hostile", `sa-${i}`);
    expect(t.size).toBe(4);
  });
});
