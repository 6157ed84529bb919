// values.schema.json: wrong values are refused before anything renders, and
// the message names the value and what is wrong with it.
import { describe, expect, it } from "vitest";
import { renderError } from "./chart.ts";

const GOOD_DIGEST = "sha256:" + "0f".repeat(32);

const REJECTED: [string, Record<string, unknown>, string][] = [
  ["Windows switched on", { windows: { enabled: true } }, "at '/windows/enabled': value must be false"],
  ["a misspelt top-level key", { enableSecretRotaton: true }, "additional properties 'enableSecretRotaton' not allowed"],
  ["a misspelt nested key", { provider: { metricsAdress: "9100" } }, "at '/provider': additional properties 'metricsAdress' not allowed"],
  ["a duration without unit", { rotationPollInterval: "120" }, "at '/rotationPollInterval': '120' does not match pattern"],
  ["a duration in words", { rotationPollInterval: "2 minutes" }, "at '/rotationPollInterval': '2 minutes' does not match pattern"],
  ["a duration given as a number", { rotationPollInterval: 120 }, "at '/rotationPollInterval': got number, want string"],
  ["a bad health-check interval", { providerHealthCheckInterval: "soon" }, "at '/providerHealthCheckInterval': 'soon' does not match pattern"],
  ["a bad provider health timeout", { provider: { healthzTimeout: "5" } }, "at '/provider/healthzTimeout': '5' does not match pattern"],
  ["a boolean given as text", { enableSecretRotation: "yes" }, "at '/enableSecretRotation': got string, want boolean"],
  ["constructPEMChain given as text", { constructPEMChain: "false" }, "at '/constructPEMChain': got string, want boolean"],
  ["a short digest", { linux: { image: { repository: "r.example.com/driver", digest: "sha256:abc" } } }, "at '/linux/image/digest': 'sha256:abc' does not match pattern"],
  ["a digest of another algorithm", { provider: { image: { repository: "r.example.com/p", digest: "md5:" + "a".repeat(32) } } }, "at '/provider/image/digest'"],
  ["a tag with a colon", { linux: { image: { repository: "r.example.com/driver", tag: "v1:2" } } }, "at '/linux/image/tag': 'v1:2' does not match pattern"],
  ["a tag in the repository", { linux: { image: { repository: "r.example.com/driver:v1" } } }, "at '/linux/image/repository': 'r.example.com/driver:v1' does not match pattern"],
  ["an upper-case repository path", { linux: { registrarImage: { repository: "registry.k8s.io/SIG/registrar" } } }, "at '/linux/registrarImage/repository'"],
  ["an unknown pull policy", { linux: { image: { repository: "r.example.com/d", pullPolicy: "Sometimes" } } }, "at '/linux/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'"],
  ["an empty repository", { provider: { image: { repository: "" } } }, "at '/provider/image/repository': '' does not match pattern"],
  ["a token lifetime under ten minutes", { tokenRequests: [{ audience: "api://AzureADTokenExchange", expirationSeconds: 60 }] }, "at '/tokenRequests/0/expirationSeconds': minimum: got 60, want 600"],
  ["a token request without audience", { tokenRequests: [{ expirationSeconds: 3600 }] }, "at '/tokenRequests/0': missing property 'audience'"],
  ["a port out of range", { provider: { metricsAddr: 70000 } }, "at '/provider/metricsAddr': maximum: got 70,000, want 65,535"],
  ["a port that is not a number", { provider: { metricsAddr: "metrics" } }, "at '/provider/metricsAddr': 'metrics' does not match pattern"],
  ["a metrics address without port", { linux: { metricsAddr: "8095" } }, "at '/linux/metricsAddr': '8095' does not match pattern"],
  ["a relative kubelet dir", { linux: { kubeletRootDir: "var/lib/kubelet" } }, "at '/linux/kubeletRootDir': 'var/lib/kubelet' does not match pattern '^/'"],
  ["a relative provider dir", { linux: { additionalProvidersDirs: ["providers"] } }, "at '/linux/additionalProvidersDirs/0'"],
  ["a tmpfs size in words", { tmpfsSize: "a lot" }, "at '/tmpfsSize': 'a lot' does not match pattern"],
  ["a tiny gRPC message limit", { maxCallRecvMsgSize: 10 }, "at '/maxCallRecvMsgSize': minimum: got 10, want 1,024"],
  ["an unknown log level", { logLevel: "verbose" }, "at '/logLevel': value must be one of"],
  ["a negative verbosity", { logVerbosity: -1 }, "at '/logVerbosity': minimum: got -1, want 0"],
  ["an unknown Azure cloud", { provider: { cloudName: "AzureMoonCloud" } }, "at '/provider/cloudName': value must be one of"],
  ["a token proxy URL over plain HTTP", { provider: { identityBinding: { tokenProxyURL: "http://kubernetes.default.svc" } } }, "at '/provider/identityBinding/tokenProxyURL': 'http://kubernetes.default.svc' does not match pattern"],
  ["a token proxy URL with a query", { provider: { identityBinding: { tokenProxyURL: "https://proxy.example.com/?a=b" } } }, "at '/provider/identityBinding/tokenProxyURL'"],
  ["a server name with a port", { provider: { identityBinding: { sniName: "proxy.ests.aks:443" } } }, "at '/provider/identityBinding/sniName': 'proxy.ests.aks:443' does not match pattern"],
  ["an unknown update strategy", { linux: { updateStrategy: { type: "Recreate" } } }, "at '/linux/updateStrategy/type': value must be one of 'RollingUpdate', 'OnDelete'"],
  ["a misspelt controller key", { syncController: { enable: true } }, "at '/syncController': additional properties 'enable' not allowed"],
  ["three controller replicas", { syncController: { replicas: 3 } }, "at '/syncController/replicas': maximum: got 3, want 2"],
  ["a rotation interval in words", { syncController: { rotationPollInterval: "often" } }, "at '/syncController/rotationPollInterval'"],
  ["an audience with a comma", { syncController: { tokenRequestAudience: [{ audience: "a,b" }] } }, "at '/syncController/tokenRequestAudience/0/audience': 'a,b' does not match pattern"],
  ["a root controller", { syncController: { runAsUser: 0 } }, "at '/syncController/runAsUser': minimum: got 0, want 1"],
  [
    "service-account-token among the allowed types",
    { syncController: { validatingAdmissionPolicies: { allowedSecretTypes: ["Opaque", "kubernetes.io/service-account-token"] } } },
    "at '/syncController/validatingAdmissionPolicies/allowedSecretTypes'",
  ],
  ["a non-string pod annotation", { linux: { podAnnotations: { "example.com/n": 1 } } }, "at '/linux/podAnnotations/example.com~1n': got number, want string"],
];

describe("values.schema.json", () => {
  it.each(REJECTED)("rejects %s", (_what, values, message) => {
    const error = renderError(values);
    expect(error, "helm rendered the chart instead of refusing the values").toBeDefined();
    expect(error).toContain("values don't meet the specifications of the schema");
    expect(error).toContain(message);
  });

  it("accepts well-formed values of every kind", () => {
    expect(
      renderError({
        linux: {
          image: { repository: "registry.example.com:5000/team/sscsi/driver", tag: "v1.2.3_build-4", digest: GOOD_DIGEST, pullPolicy: "Always" },
          metricsAddr: "[::]:8095",
          kubeletRootDir: "/var/lib/k0s/kubelet",
          additionalProvidersDirs: [],
          updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "20%" } },
          driver: { resources: { limits: { cpu: 1, memory: "256Mi" }, requests: { cpu: "100m", memory: "128Mi" } } },
        },
        rotationPollInterval: "1h30m0.5s",
        providerHealthCheckInterval: "500ms",
        tmpfsSize: "128Mi",
        tokenRequests: [],
        provider: {
          metricsAddr: 9100,
          healthzTimeout: "2.5s",
          cloudName: "AzureUSGovernmentCloud",
          runAsUser: 65532,
          identityBinding: { tokenProxyURL: "https://kubernetes.default.svc.cluster.local:8443/proxy", sniName: "a0123.ests.aks", mountClusterCA: false },
        },
        logLevel: "trace",
        windows: { enabled: false },
        syncController: {
          enabled: true,
          replicas: 1,
          rotationPollInterval: "0",
          tokenRequestAudience: [{ audience: "api://AzureADTokenExchange" }],
          image: { repository: "", tag: "", digest: "" },
          providerSidecar: { healthzPort: 18990, metricsPort: 18899 },
          validatingAdmissionPolicies: { enabled: true, allowedSecretTypes: ["Opaque"], deniedSecretTypes: ["kubernetes.io/service-account-token"] },
        },
      }),
    ).toBeUndefined();
  });
});
