// The vaults' kept challenges (the policy alone, a recorded `next` standing in
// for the rest of the pipeline): a vault's 401 to a request without a token is
// given to the next such request to that vault without sending it; other
// vaults, requests with a token and other methods still go; a 401 to a
// request with a token, age and the bound drop what was kept.
import { createHttpHeaders, createPipelineRequest, type PipelineRequest, type PipelineResponse } from "@azure/core-rest-pipeline";
import { describe, expect, it } from "vitest";
import { MAX_AGE_MS, VaultChallenges } from "../../../src/provider/keyvault/vault-challenges.ts";

const CHALLENGE = 'Bearer authorization="https://login.microsoftonline.com/00000000-0000-4000-8000-00000000aaaa", resource="https://vault.azure.net"';
const BODY = '{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}';

function request(url: string, options: { token?: string; method?: "GET" | "POST" } = {}): PipelineRequest {
  const r = createPipelineRequest({ url, method: options.method ?? "GET" });
  if (options.token) r.headers.set("authorization", `Bearer ${options.token}`);
  return r;
}

/** A vault that challenges every request without a token and answers every other with 200 (or `status`). */
function vault(status = 200, wwwAuthenticate = CHALLENGE) {
  const sent: PipelineRequest[] = [];
  const next = (r: PipelineRequest): Promise<PipelineResponse> => {
    sent.push(r);
    if (!r.headers.has("authorization") || status === 401) {
      const headers = createHttpHeaders({ "www-authenticate": wwwAuthenticate, "content-type": "application/json; charset=utf-8", "x-ms-request-id": "r1" });
      return Promise.resolve({ request: r, status: 401, headers, bodyAsText: BODY });
    }
    return Promise.resolve({ request: r, status, headers: createHttpHeaders(), bodyAsText: "{}" });
  };
  return { sent, next };
}

function challenges(now = () => 1_000, maxEntries = 4) {
  return new VaultChallenges({ maxEntries, now });
}

/** Whether a request without a token to `url` is answered without being sent (a recorder that learns nothing stands behind). */
async function answeredHere(kept: VaultChallenges, url: string): Promise<boolean> {
  let sent = false;
  await kept.policy.sendRequest(request(url), (r) => {
    sent = true;
    return Promise.resolve({ request: r, status: 200, headers: createHttpHeaders(), bodyAsText: "{}" });
  });
  return !sent;
}

describe("vault challenges", () => {
  it("answers the next unauthenticated GET to the same vault with the vault's own 401, without sending it", async () => {
    const kept = challenges();
    const kv = vault();
    const first = await kept.policy.sendRequest(request("https://kv1.vault.azure.net/secrets/a?api-version=7.6"), kv.next);
    expect(first.status).toBe(401);
    expect(kv.sent).toHaveLength(1);

    const second = request("https://KV1.vault.azure.net:443/secrets/b?api-version=7.6");
    const answered = await kept.policy.sendRequest(second, kv.next);
    expect(kv.sent).toHaveLength(1);
    expect(answered.request).toBe(second);
    expect(answered.status).toBe(401);
    expect(answered.headers.get("www-authenticate")).toBe(CHALLENGE);
    expect(answered.headers.get("content-type")).toBe("application/json; charset=utf-8");
    // the vault's request id belongs to its own answer, not to this one
    expect(answered.headers.get("x-ms-request-id")).toBeUndefined();
    expect(answered.bodyAsText).toBe(BODY);
  });

  it("sends what it cannot answer: another vault, a request with a token, a POST", async () => {
    const kept = challenges();
    const kv = vault();
    await kept.policy.sendRequest(request("https://kv1.vault.azure.net/secrets/a"), kv.next);
    await kept.policy.sendRequest(request("https://kv2.vault.azure.net/secrets/a"), kv.next);
    expect((await kept.policy.sendRequest(request("https://kv1.vault.azure.net/secrets/a", { token: "t" }), kv.next)).status).toBe(200);
    await kept.policy.sendRequest(request("https://kv1.vault.azure.net/secrets/a", { method: "POST" }), kv.next);
    expect(kv.sent.map((r) => `${r.method} ${new URL(r.url).host} ${r.headers.has("authorization")}`)).toEqual([
      "GET kv1.vault.azure.net false",
      "GET kv2.vault.azure.net false",
      "GET kv1.vault.azure.net true",
      "POST kv1.vault.azure.net false",
    ]);
  });

  it("keeps only a challenge that names a resource or scope, from a request without a token", async () => {
    const kept = challenges();
    const cae = vault(200, 'Bearer realm="", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnt9fQ=="');
    await kept.policy.sendRequest(request("https://kv1.vault.azure.net/secrets/a"), cae.next);
    expect(await answeredHere(kept, "https://kv1.vault.azure.net/secrets/b")).toBe(false);

    const ok = vault();
    const post = request("https://kv1.vault.azure.net/secrets/a", { method: "POST" });
    await kept.policy.sendRequest(post, ok.next);
    expect(await answeredHere(kept, "https://kv1.vault.azure.net/secrets/b")).toBe(false);
  });

  it("forgets a vault's challenge when a request with a token gets a 401 (the vault may have moved)", async () => {
    const kept = challenges();
    await kept.policy.sendRequest(request("https://kv1.vault.azure.net/secrets/a"), vault().next);
    expect(await answeredHere(kept, "https://kv1.vault.azure.net/secrets/b")).toBe(true);
    const refusing = vault(401);
    await kept.policy.sendRequest(request("https://kv1.vault.azure.net/secrets/a", { token: "t" }), refusing.next);
    // the next client asks the vault again
    expect(await answeredHere(kept, "https://kv1.vault.azure.net/secrets/b")).toBe(false);
  });

  it("uses a challenge for at most MAX_AGE_MS after the vault sent it, and forget() drops one at once", async () => {
    let now = 1_000;
    const kept = challenges(() => now);
    const kv = vault();
    await kept.policy.sendRequest(request("https://kv1.vault.azure.net/secrets/a"), kv.next);
    now += MAX_AGE_MS - 1;
    await kept.policy.sendRequest(request("https://kv1.vault.azure.net/secrets/b"), kv.next);
    expect(kv.sent).toHaveLength(1);
    now += 1;
    await kept.policy.sendRequest(request("https://kv1.vault.azure.net/secrets/c"), kv.next);
    expect(kv.sent).toHaveLength(2);

    expect(kept.forget("https://kv1.vault.azure.net/")).toBe(true);
    expect(kept.forget("https://kv1.vault.azure.net/")).toBe(false);
    expect(kept.forget("not a url")).toBe(false);
  });

  it("keeps at most maxEntries vaults, the least recently used dropped first", async () => {
    const kept = challenges(() => 1_000, 2);
    const kv = vault();
    for (const name of ["kv1", "kv2", "kv3"]) await kept.policy.sendRequest(request(`https://${name}.vault.azure.net/secrets/a`), kv.next);
    const answered = [];
    for (const name of ["kv3", "kv2", "kv1"]) answered.push(await answeredHere(kept, `https://${name}.vault.azure.net/secrets/b`));
    expect(answered).toEqual([true, true, false]);
  });

  it("requests that start while the vault's answer is on its way wait for it instead of asking too", async () => {
    const kept = challenges();
    const kv = vault();
    let release = (): void => undefined;
    const held = new Promise<void>((r) => (release = r));
    const slow = (r: PipelineRequest) => held.then(() => kv.next(r));
    const all = Promise.all(["a", "b", "c", "d"].map((name) => kept.policy.sendRequest(request(`https://kv1.vault.azure.net/secrets/${name}`), slow)));
    await new Promise((r) => setImmediate(r));
    release();
    const answers = await all;
    expect(kv.sent).toHaveLength(1);
    expect(answers.map((a) => [a.status, a.headers.get("www-authenticate")])).toEqual(Array.from({ length: 4 }, () => [401, CHALLENGE]));
  });

  it("when that answer brings no challenge (a failure), the waiting requests go on their own, at once and not one by one", async () => {
    const kept = challenges();
    let calls = 0;
    let failFirst = (): void => undefined;
    const first = new Promise<void>((r) => (failFirst = r));
    const next = (r: PipelineRequest): Promise<PipelineResponse> => {
      calls++;
      if (calls === 1) return first.then(() => Promise.reject(new Error("connect ECONNREFUSED")));
      // the others are held until all three are sent: they must not wait for each other
      return new Promise((resolve) => {
        const check = (): void => (calls === 4 ? resolve({ request: r, status: 200, headers: createHttpHeaders(), bodyAsText: "{}" }) : void setImmediate(check));
        check();
      });
    };
    const first4 = ["a", "b", "c", "d"].map((name) => kept.policy.sendRequest(request(`https://kv1.vault.azure.net/secrets/${name}`), next));
    await new Promise((r) => setImmediate(r));
    failFirst();
    await expect(first4[0]).rejects.toThrow("ECONNREFUSED");
    expect((await Promise.all(first4.slice(1))).map((a) => a.status)).toEqual([200, 200, 200]);
    expect(calls).toBe(4);
  });

  it("a waiting request that is cancelled stops waiting", async () => {
    const kept = challenges();
    const never = (): Promise<PipelineResponse> => new Promise(() => undefined);
    void kept.policy.sendRequest(request("https://kv1.vault.azure.net/secrets/a"), never);
    const controller = new AbortController();
    const waiting = request("https://kv1.vault.azure.net/secrets/b");
    waiting.abortSignal = controller.signal;
    const sent: PipelineRequest[] = [];
    const result = kept.policy.sendRequest(waiting, (r) => {
      sent.push(r);
      return Promise.reject(Object.assign(new Error("The operation was aborted."), { name: "AbortError" }));
    });
    controller.abort();
    await expect(result).rejects.toThrow("aborted");
    expect(sent).toEqual([waiting]);
  });
});
