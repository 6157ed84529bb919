// The emulated cluster front of AKS identity binding, over raw TLS: the API
// server's certificate carries hcp-kubernetes.<cluster id>, the token proxy
// answers only under the server name derived from that id, and it exchanges
// only service-account tokens for api://AKSIdentityBinding that an identity
// binding names; Entra ID itself never takes such a token.
import { request } from "node:https";
import { connect, type PeerCertificate } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EMULATOR_SERVICE_ACCOUNT_ISSUER, IDENTITY_BINDING_AUDIENCE, startEmulator, type Emulator } from "../../src/emulator/index.ts";

const BOUND_APP = "5c1e0000-0000-4000-8000-0000000000b1";
const SUBJECT = { namespace: "prod", serviceAccount: "web" };
const API_SERVER = "kubernetes.default.svc.cluster.local";

let emulator: Emulator;

beforeAll(async () => {
  emulator = await startEmulator({ clusterId: "abc123" });
  await emulator.seed({
    vaults: [{ name: "kv1", secrets: [{ name: "s", value: "v" }] }],
    applications: [
      {
        name: "bound",
        clientId: BOUND_APP,
        clientSecret: "bound-secret",
        federatedCredentials: [
          { issuer: EMULATOR_SERVICE_ACCOUNT_ISSUER, subject: `system:serviceaccount:${SUBJECT.namespace}:${SUBJECT.serviceAccount}`, audiences: [IDENTITY_BINDING_AUDIENCE] },
        ],
        roleAssignments: [{ vault: "kv1", permissions: ["secrets"] }],
      },
    ],
  });
});

afterAll(async () => {
  await emulator?.close();
});

/** The certificate presented for `servername`, checked against the emulator's CA but not against the name. */
function presented(servername: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port: emulator.port, servername, ca: emulator.caCertPem, checkServerIdentity: () => undefined });
    socket.once("secureConnect", () => {
      resolve(socket.getPeerCertificate());
      socket.destroy();
    });
    socket.once("error", reject);
  });
}

/** A token request under `servername`, its certificate checked against that name. */
function tokenRequest(servername: string, form: Record<string, string>, host = "login.microsoftonline.com"): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: emulator.port,
        servername,
        ca: emulator.caCertPem,
        method: "POST",
        path: `/${emulator.tenantId}/oauth2/v2.0/token`,
        headers: { host, "content-type": "application/x-www-form-urlencoded" },
      },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
      },
    );
    req.on("error", reject);
    req.end(new URLSearchParams(form).toString());
  });
}

const assertionForm = (assertion: string) => ({
  grant_type: "client_credentials",
  client_id: BOUND_APP,
  scope: "https://vault.azure.net/.default",
  client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
  client_assertion: assertion,
});
const boundToken = (subject = SUBJECT, audience = IDENTITY_BINDING_AUDIENCE) => emulator.issueServiceAccountToken({ ...subject, audience });
const counter = (name: string) => emulator.counters()[name] ?? 0;

describe("identity binding's cluster front", () => {
  it("derives the proxy's server name from its cluster id", () => {
    // computed with Go's sha256 and base32.HexEncoding, as upstream's provider does
    expect(emulator.identityBinding.serverName).toBe("avogudkohgdatdl5h3uisa3it85na3oqte6ir8heubtqsv4hgo1qg.ests.aks");
    expect(emulator.identityBinding.clusterId).toBe("abc123");
  });

  it("presents the API server's certificate, with the cluster's hcp-kubernetes name, for the API server's names", async () => {
    const cert = await presented(API_SERVER);
    expect(cert.subjectaltname).toContain(`DNS:${API_SERVER}`);
    expect(cert.subjectaltname).toContain("DNS:hcp-kubernetes.abc123.svc.cluster.local");
    expect(cert.subjectaltname).not.toContain("ests.aks");
  });

  it("presents the proxy's certificate only for the proxy's server name", async () => {
    expect((await presented(emulator.identityBinding.serverName)).subjectaltname).toBe(`DNS:${emulator.identityBinding.serverName}`);
    const before = counter("tokenProxyUnknownServerName");
    // another cluster's name gets the API server's certificate, which a client refuses for that name
    expect((await presented("a0000000000000000000000000000000000000000000000000000.ests.aks")).subjectaltname).toContain("hcp-kubernetes.abc123");
    expect(counter("tokenProxyUnknownServerName") - before).toBe(1);
    await expect(tokenRequest("a0000000000000000000000000000000000000000000000000000.ests.aks", assertionForm(boundToken()))).rejects.toMatchObject({ code: "ERR_TLS_CERT_ALTNAME_INVALID" });
  });

  it("exchanges a bound service-account token through the proxy", async () => {
    const before = counter(`identityBindingToken:${BOUND_APP}`);
    const res = await tokenRequest(emulator.identityBinding.serverName, assertionForm(boundToken()), API_SERVER);
    expect(res.status).toBe(200);
    expect(typeof res.body.access_token).toBe("string");
    expect(counter(`identityBindingToken:${BOUND_APP}`) - before).toBe(1);
  });

  it("the proxy refuses tokens of other service accounts or audiences, and client secrets", async () => {
    const other = await tokenRequest(emulator.identityBinding.serverName, assertionForm(boundToken({ namespace: "prod", serviceAccount: "batch" })));
    expect([other.status, String(other.body.error_description)]).toEqual([401, expect.stringContaining("AADSTS70021")]);
    const workloadIdentityToken = await tokenRequest(emulator.identityBinding.serverName, assertionForm(boundToken(SUBJECT, "api://AzureADTokenExchange")));
    expect([workloadIdentityToken.status, String(workloadIdentityToken.body.error_description)]).toEqual([401, expect.stringContaining("AADSTS700212")]);
    const secret = await tokenRequest(emulator.identityBinding.serverName, {
      grant_type: "client_credentials",
      client_id: BOUND_APP,
      client_secret: "bound-secret",
      scope: "https://vault.azure.net/.default",
    });
    expect([secret.status, String(secret.body.error_description)]).toEqual([400, expect.stringContaining("needs a 'client_assertion'")]);
  });

  it("Entra ID itself does not take a token for api://AKSIdentityBinding", async () => {
    const res = await tokenRequest("login.microsoftonline.com", assertionForm(boundToken()));
    expect([res.status, String(res.body.error_description)]).toEqual([401, expect.stringContaining("AADSTS700212")]);
  });

  it("the API server's names serve no token endpoint", async () => {
    const before = counter("apiServerRequest");
    const res = await tokenRequest(API_SERVER, assertionForm(boundToken()), API_SERVER);
    expect(res.status).toBe(404);
    expect(res.body.kind).toBe("Status");
    expect(counter("apiServerRequest") - before).toBe(1);
  });
});
