// The bearer-token check of the event webhook, with tokens signed here by a
// key the "tenant" publishes through an injected OpenID configuration and
// JWKS (the cluster tests check it against the emulated Entra ID).
import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { describe, expect, it } from "vitest";
import { EntraTokenValidator, EVENT_GRID_APP_ID, SECURE_WEBHOOK_ROLE } from "../../../src/controller/events/entra-token.ts";

const TENANT = "72f988bf-0000-4000-8000-000000000001";
const AUDIENCE = "api://keyvault-events";
const AUTHORITY = "https://login.example";

function keyPair(): { privateKey: KeyObject; jwk: Record<string, unknown> } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { privateKey, jwk: publicKey.export({ format: "jwk" }) };
}

const trusted = keyPair();
const foreign = keyPair();

function token(claims: Record<string, unknown>, options: { key?: KeyObject; kid?: string; alg?: string } = {}): string {
  const nowS = Math.floor(Date.now() / 1000);
  const header = Buffer.from(JSON.stringify({ alg: options.alg ?? "RS256", typ: "JWT", kid: options.kid ?? "k1" })).toString("base64url");
  const payload = Buffer.from(
    JSON.stringify({ iss: `https://sts.windows.net/${TENANT}/`, tid: TENANT, aud: AUDIENCE, appid: EVENT_GRID_APP_ID, roles: [SECURE_WEBHOOK_ROLE], iat: nowS, nbf: nowS, exp: nowS + 3600, ...claims }),
  ).toString("base64url");
  const signature = sign("sha256", Buffer.from(`${header}.${payload}`), options.key ?? trusted.privateKey).toString("base64url");
  return `Bearer ${header}.${payload}.${signature}`;
}

function validator() {
  const fetched: string[] = [];
  const v = new EntraTokenValidator({
    tenantId: TENANT,
    audiences: [AUDIENCE, "00000000-aaaa-4000-8000-000000000000"],
    authorityHost: AUTHORITY,
    fetchJson: (url) => {
      fetched.push(url);
      if (url === `${AUTHORITY}/${TENANT}/.well-known/openid-configuration`) return Promise.resolve({ issuer: `https://sts.windows.net/${TENANT}/`, jwks_uri: `${AUTHORITY}/${TENANT}/discovery/keys` });
      if (url === `${AUTHORITY}/${TENANT}/discovery/keys`) return Promise.resolve({ keys: [{ ...trusted.jwk, kid: "k1", use: "sig" }] });
      return Promise.reject(new Error(`unexpected ${url}`));
    },
  });
  return { v, fetched };
}

describe("Entra ID bearer tokens for the event webhook", () => {
  it("accepts Event Grid's token for the webhook application, by application id URI or id, v1 or v2 issuer", async () => {
    const { v } = validator();
    await expect(v.validate(token({}))).resolves.toMatchObject({ aud: AUDIENCE });
    await expect(v.validate(token({ aud: "00000000-aaaa-4000-8000-000000000000" }))).resolves.toBeDefined();
    await expect(v.validate(token({ iss: `${AUTHORITY}/${TENANT}/v2.0`, appid: undefined, azp: EVENT_GRID_APP_ID }))).resolves.toBeDefined();
  });

  it("refuses every token that is not exactly that, with the reason", async () => {
    const { v } = validator();
    const nowS = Math.floor(Date.now() / 1000);
    const cases: Array<[string | undefined, RegExp]> = [
      [undefined, /no bearer token/],
      ["Basic dXNlcjpwYXNz", /not a bearer JWT/],
      [token({}, { key: foreign.privateKey }), /signature is not valid/],
      [token({}, { kid: "unknown" }), /key the tenant does not publish/],
      [token({}, { alg: "HS256" }), /not RS256/],
      [token({ exp: nowS - 600 }), /expired/],
      [token({ nbf: nowS + 600 }), /not valid yet/],
      [token({ aud: "api://something-else" }), /audience/],
      [token({ iss: "https://sts.windows.net/other-tenant/" }), /issuer/],
      [token({ tid: "other-tenant" }), /another tenant/],
      [token({ roles: [] }), /AzureEventGridSecureWebhookSubscriber/],
      [token({ appid: "11111111-2222-3333-4444-555555555555" }), /not issued to Event Grid/],
    ];
    for (const [header, reason] of cases) await expect(v.validate(header), String(reason)).rejects.toThrow(reason);
  });

  it("does not let unknown key ids make it fetch the keys again and again", async () => {
    const { v, fetched } = validator();
    await v.prime();
    expect(fetched).toHaveLength(2);
    for (let i = 0; i < 20; i++) await expect(v.validate(token({}, { kid: `forged-${i}` }))).rejects.toThrow(/does not publish/);
    // One look for the first unknown kid (a key rollover), then none for five minutes.
    expect(fetched.length).toBeLessThanOrEqual(4);
  });

  it("refuses a tenant id or authority that cannot be right, at start-up", () => {
    expect(() => new EntraTokenValidator({ tenantId: "a/b", audiences: [AUDIENCE] })).toThrow("not a tenant id");
    expect(() => new EntraTokenValidator({ tenantId: TENANT, audiences: [] })).toThrow("at least one audience");
    expect(() => new EntraTokenValidator({ tenantId: TENANT, audiences: [AUDIENCE], authorityHost: "http://login.example" })).toThrow("must use https");
  });
});
