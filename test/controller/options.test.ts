// The controller's flags: upstream's names, our defaults, and a clear error
// when the pod's identity is missing.
import { describe, expect, it } from "vitest";
import { checkControllerOptions, parseControllerOptions } from "../../src/controller/options.ts";

const env = { SYNC_CONTROLLER_POD_NAME: "ssc-0", SYNC_CONTROLLER_POD_UID: "uid-0", SYNC_CONTROLLER_POD_NAMESPACE: "kube-system" };

describe("controller options", () => {
  it("defaults to upstream's addresses and our 2m rotation", () => {
    const o = parseControllerOptions([], env);
    expect(o).toMatchObject({
      providerDir: "/provider",
      audiences: [],
      metricsAddr: ":8085",
      healthAddr: ":8081",
      leaderElect: false,
      leaderElectionNamespace: "kube-system",
      leaderElectionId: "secrets-store-sync-controller-leader",
      rotationIntervalMs: 120_000,
      pod: { name: "ssc-0", uid: "uid-0", namespace: "kube-system" },
    });
  });

  it("takes upstream's flags as its chart passes them, klog's -v included", () => {
    const o = parseControllerOptions(
      ["--provider-volume=/p", "--token-request-audience=api://AzureADTokenExchange, api://other", "--health-probe-bind-address=:9081", "--metrics-bind-address=:9085", "--leader-elect", "-v=5", "--rotation-poll-interval=0"],
      env,
    );
    expect(o).toMatchObject({ providerDir: "/p", audiences: ["api://AzureADTokenExchange", "api://other"], healthAddr: ":9081", metricsAddr: ":9085", leaderElect: true, rotationIntervalMs: 0 });
  });

  it("refuses a rotation interval under a second, and a missing pod identity with the fix", () => {
    expect(() => parseControllerOptions(["--rotation-poll-interval=10ms"], env)).toThrow("must be 0 (off) or at least 1s");
    expect(() => checkControllerOptions(parseControllerOptions([], {}))).toThrow("SYNC_CONTROLLER_POD_NAME and SYNC_CONTROLLER_POD_UID must be set");
    expect(() => checkControllerOptions(parseControllerOptions(["--leader-elect"], { ...env, SYNC_CONTROLLER_POD_NAMESPACE: "" }))).toThrow("--leader-elect needs the Lease's namespace");
  });
});
