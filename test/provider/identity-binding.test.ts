// AKS identity binding (useAzureTokenProxy) through the provider program's
// socket: the pod's token for api://AKSIdentityBinding goes to the emulator's
// token proxy (kubernetes.default.svc.cluster.local, reached through the DNS
// hook) over TLS with the cluster CA and the proxy's server name, which the
// provider derives from the API server certificate's hcp-kubernetes.<id>
// name or takes from --sni-name. The proxy answers only for its own server
// name and only for a service account its identity binding names.
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EMULATOR_SERVICE_ACCOUNT_ISSUER, IDENTITY_BINDING_AUDIENCE, type Emulator } from "../../src/emulator/index.ts";
import { objectsYaml } from "./client.ts";
import { freePort, startProvider, startTestEmulator, type RunningProvider } from "./env.ts";
import { podAttributes } from "./seed.ts";

const IB_APP = "77777777-7777-4777-8777-777777777777";
const VAULT = "kv-bound";
const POD = { name: "bound-0", namespace: "ns-ib", serviceAccount: "sa-ib" };
const OTHER_POD = { name: "other-0", namespace: "ns-ib", serviceAccount: "not-bound" };

let emulator: Emulator;
let address: string;
/** Derives the server name from the API server's certificate. */
let derived: RunningProvider;
/** --sni-name of a cluster that is not this one. */
let wrongName: RunningProvider;
/** The right --sni-name, but a --token-proxy-url nobody listens on. */
let unreachable: RunningProvider;
/** No --sni-name, and no cluster CA to read the API server's certificate with. */
let noCa: RunningProvider;

beforeAll(async () => {
  ({ emulator, address } = await startTestEmulator({
    vaults: [{ name: VAULT, secrets: [{ name: "db-password", value: "bound to the cluster" }] }],
    applications: [
      {
        name: "identity-binding",
        clientId: IB_APP,
        federatedCredentials: [
          { issuer: EMULATOR_SERVICE_ACCOUNT_ISSUER, subject: `system:serviceaccount:${POD.namespace}:${POD.serviceAccount}`, audiences: [IDENTITY_BINDING_AUDIENCE] },
        ],
        roleAssignments: [{ vault: VAULT, permissions: ["secrets"] }],
      },
    ],
  }));
  const ca = `--token-proxy-ca-file=${emulator.caCertPath}`;
  // the API server's port, as a pod's environment names it
  const env = { KUBERNETES_SERVICE_PORT: "443" };
  [derived, wrongName, unreachable, noCa] = await Promise.all([
    startProvider(emulator, address, [ca], env),
    startProvider(emulator, address, [ca, "--sni-name=a0123456789abcdefghijklmnopqrstuv.ests.aks"], env),
    startProvider(emulator, address, [ca, `--sni-name=${emulator.identityBinding.serverName}`, `--token-proxy-url=https://127.0.0.1:${await freePort()}`], env),
    startProvider(emulator, address, ["--token-proxy-ca-file=/nonexistent/ca.crt"], env),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all([derived, wrongName, unreachable, noCa].map((p) => p?.stop()));
  await emulator?.close();
});

const tokens = (audiences: Record<string, string>) =>
  JSON.stringify(Object.fromEntries(Object.entries(audiences).map(([audience, token]) => [audience, { token, expirationTimestamp: new Date(Date.now() + 3600_000).toISOString() }])));
/** What kubelet sends with the chart's CSIDriver: a token per audience (the same claims in the same second give the same token). */
const kubeletTokens = (pod = POD, expiresInSeconds = 3600) =>
  tokens({
    "api://AzureADTokenExchange": emulator.issueServiceAccountToken({ namespace: pod.namespace, serviceAccount: pod.serviceAccount, expiresInSeconds }),
    [IDENTITY_BINDING_AUDIENCE]: emulator.issueServiceAccountToken({ namespace: pod.namespace, serviceAccount: pod.serviceAccount, audience: IDENTITY_BINDING_AUDIENCE, expiresInSeconds }),
  });
const attrs = (extra: Record<string, string>, pod = POD) =>
  podAttributes(
    {
      keyvaultName: VAULT,
      tenantID: emulator.tenantId,
      objects: objectsYaml([{ objectName: "db-password", objectType: "secret" }]),
      useAzureTokenProxy: "true",
      clientID: IB_APP,
      "csi.storage.k8s.io/serviceAccount.tokens": kubeletTokens(pod),
      ...extra,
    },
    pod,
  );
const counter = (name: string) => emulator.counters()[name] ?? 0;
const P = "failed to mount objects, error: ";

describe("identity binding (useAzureTokenProxy)", () => {
  it("mounts through the token proxy, whose server name the provider derived from the API server's hcp-kubernetes.<id> certificate name", async () => {
    const viaProxy = counter(`identityBindingToken:${IB_APP}`);
    const proxyRequests = counter("tokenProxyRequest");
    const res = await derived.client.mount({ attributes: attrs({}) });
    expect(res.files.map((f) => [f.path, Buffer.from(f.contents).toString()])).toEqual([["db-password", "bound to the cluster"]]);
    // the token came from the proxy (answering only under its server name), not from Entra ID directly
    expect(counter(`identityBindingToken:${IB_APP}`) - viaProxy).toBe(1);
    expect(counter("tokenProxyRequest") - proxyRequests).toBeGreaterThanOrEqual(1);
    expect(counter("tokenProxyUnknownServerName")).toBe(0);
    // the name is the one the emulated cluster's id gives, found in its API server certificate
    const log = derived
      .output()
      .split("\n")
      .find((l) => l.includes("server name, derived from the API server"));
    expect(JSON.parse(log ?? "{}").serverName).toBe(emulator.identityBinding.serverName);
    expect(emulator.identityBinding.serverName).toMatch(/^a[0-9a-v]{52}\.ests\.aks$/);
  });

  it("reuses the token for the same service-account token, and proves a new one once", async () => {
    const before = counter(`identityBindingToken:${IB_APP}`);
    // a lifetime no other test uses: a token no mount has proven yet
    const first = kubeletTokens(POD, 1800);
    await derived.client.mount({ attributes: attrs({ "csi.storage.k8s.io/serviceAccount.tokens": first }) });
    await derived.client.mount({ attributes: attrs({ "csi.storage.k8s.io/serviceAccount.tokens": first }) });
    expect(counter(`identityBindingToken:${IB_APP}`) - before).toBe(1);
  });

  it("a service account the identity binding does not name is refused by the proxy", async () => {
    const err = await derived.client.mountError({ attributes: attrs({}, OTHER_POD) });
    expect(err.code).toBe(status.PERMISSION_DENIED);
    expect(err.details).toMatch(
      /^failed to mount objects, error: failed to get objectType:secret, objectName:db-password, objectVersion:: key vault "kv-bound" \(https:\/\/kv-bound\.vault\.azure\.net\/\): failed to get an access token for identity binding \(clientID 7{8}-7{4}-4777-8777-7{12}, system:serviceaccount:ns-ib:not-bound\): .*AADSTS70021.*; check clientID, that the managed identity has an identity binding to this cluster/,
    );
    expect(err.details.split("\n")).toHaveLength(1);
  });

  it("a wrong --sni-name: the proxy does not answer under it, and the error says to check --sni-name", async () => {
    const unknownNames = counter("tokenProxyUnknownServerName");
    const viaProxy = counter(`identityBindingToken:${IB_APP}`);
    const err = await wrongName.client.mountError({ attributes: attrs({}) });
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe(
      `${P}failed to get objectType:secret, objectName:db-password, objectVersion:: key vault "kv-bound" (https://kv-bound.vault.azure.net/): failed to get an access token for identity binding (clientID ${IB_APP}, system:serviceaccount:ns-ib:sa-ib): the token proxy https://kubernetes.default.svc.cluster.local does not serve server name "a0123456789abcdefghijklmnopqrstuv.ests.aks" (--sni-name): its certificate is for other names; check --sni-name`,
    );
    expect(counter("tokenProxyUnknownServerName") - unknownNames).toBeGreaterThanOrEqual(1);
    expect(counter(`identityBindingToken:${IB_APP}`) - viaProxy).toBe(0);
  });

  it("an unreachable token proxy is UNAVAILABLE (kubelet retries) and names --token-proxy-url", async () => {
    const err = await unreachable.client.mountError({ attributes: attrs({}) });
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details).toMatch(/failed to get an access token for identity binding \(clientID [-0-9a-f]+, system:serviceaccount:ns-ib:sa-ib\): the token proxy https:\/\/127\.0\.0\.1:\d+ is unreachable: .*ECONNREFUSED.* \(check --token-proxy-url\)$/);
  });

  it("a server name that cannot be derived (no cluster CA) says to set --sni-name", async () => {
    const err = await noCa.client.mountError({ attributes: attrs({}) });
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(
      /failed to get an access token for identity binding \(.*\): cannot derive the token proxy's server name from the API server's certificate \(kubernetes\.default\.svc\.cluster\.local:443\): cannot read the cluster CA \/nonexistent\/ca\.crt \(ENOENT\); set --sni-name to the token proxy's server name, or mount the cluster CA there \(--token-proxy-ca-file\)$/,
    );
  });
});

describe("identity binding: what the class and kubelet must give (refused before any request)", () => {
  const expectInvalid = async (attributes: Record<string, string>, message: string) => {
    const proxyRequests = counter("tokenProxyRequest");
    const err = await derived.client.mountError({ attributes });
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe(`${P}${message}`);
    expect(counter("tokenProxyRequest")).toBe(proxyRequests);
  };

  it("no clientID", async () => {
    const attributes = attrs({});
    delete attributes.clientID;
    await expectInvalid(
      attributes,
      "failed to build auth config for mode AzureTokenProxy: clientID is required for identity binding (set clientID to the client id of the managed identity the identity binding is for)",
    );
  });

  it("no service-account tokens at all (a CSIDriver without tokenRequests)", async () => {
    const attributes = attrs({});
    delete attributes["csi.storage.k8s.io/serviceAccount.tokens"];
    await expectInvalid(
      attributes,
      "failed to build auth config for mode AzureTokenProxy: service account tokens are required for identity binding (the CSIDriver object needs tokenRequests with audience api://AKSIdentityBinding)",
    );
  });

  it("no token for api://AKSIdentityBinding (only workload identity's audience requested)", async () => {
    const onlyWorkloadIdentity = tokens({ "api://AzureADTokenExchange": emulator.issueServiceAccountToken({ namespace: POD.namespace, serviceAccount: POD.serviceAccount }) });
    await expectInvalid(
      attrs({ "csi.storage.k8s.io/serviceAccount.tokens": onlyWorkloadIdentity }),
      "failed to build auth config for mode AzureTokenProxy: failed to parse service account token for identity binding, error: token for audience api://AKSIdentityBinding not found (the CSIDriver object needs tokenRequests with audience api://AKSIdentityBinding)",
    );
  });

  it("two identity modes at once", async () => {
    await expectInvalid(attrs({ useVMManagedIdentity: "true" }), "only one identity mode can be enabled at a time: usePodIdentity, useVMManagedIdentity, or useAzureTokenProxy");
    await expectInvalid(attrs({ usePodIdentity: "true" }), "only one identity mode can be enabled at a time: usePodIdentity, useVMManagedIdentity, or useAzureTokenProxy");
  });
});
