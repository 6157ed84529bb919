import { describe, expect, it } from "vitest";
import { parseDriverOptions, parseQuantity } from "../../src/driver/options.ts";
import { FlagError } from "../../src/shared/cli/flags.ts";

describe("driver flags", () => {
  it("has upstream's defaults", () => {
    const o = parseDriverOptions([]);
    expect(o.endpoint).toBe("unix://tmp/csi.sock");
    expect(o.drivername).toBe("secrets-store.csi.k8s.io");
    expect(o.providerDirs).toEqual(["/etc/kubernetes/secrets-store-csi-providers", "/var/run/secrets-store-csi-providers"]);
    expect(o.metricsAddr).toBe(":8095");
    expect(o.healthAddr).toBe(":9808");
    expect(o.enableSecretRotation).toBe(false);
    expect(o.rotationPollIntervalMs).toBe(120_000);
    expect(o.maxCallRecvMsgSize).toBe(4194304);
    expect(o.providerHealthCheck).toBe(false);
    expect(o.providerHealthCheckIntervalMs).toBe(120_000);
    expect(o.kubeletDir).toBe("/var/lib/kubelet");
  });

  it("takes kubelet's root dir without a trailing slash and refuses a relative one", () => {
    expect(parseDriverOptions(["--kubelet-dir=/var/data/kubelet/"]).kubeletDir).toBe("/var/data/kubelet");
    expect(() => parseDriverOptions(["--kubelet-dir=var/lib/kubelet"])).toThrow(/kubelet-dir.*absolute/);
  });

  it("accepts Go flag syntax as the upstream manifests write it", () => {
    const o = parseDriverOptions([
      "--endpoint=unix:///csi/csi.sock",
      "-nodeid",
      "node-1",
      "--enable-secret-rotation=true",
      "--rotation-poll-interval=30s",
      "--provider-health-check",
      "-v=5",
      "--additional-provider-volume-paths=/a,/b",
      "--provider-volume=/p",
    ]);
    expect(o.endpoint).toBe("unix:///csi/csi.sock");
    expect(o.nodeId).toBe("node-1");
    expect(o.enableSecretRotation).toBe(true);
    expect(o.rotationPollIntervalMs).toBe(30_000);
    expect(o.providerHealthCheck).toBe(true);
    expect(o.providerDirs).toEqual(["/a", "/b", "/p"]);
  });

  it.each([
    [["--no-such-flag"], "unknown flag --no-such-flag; run with --help to list the flags"],
    [["--rotation-poll-interval=2 minutes"], 'invalid duration value "2 minutes" for flag --rotation-poll-interval (examples: 30s, 2m, 1h)'],
    [["--enable-secret-rotation=yes"], 'invalid boolean value "yes" for flag --enable-secret-rotation'],
    [["--max-call-recv-msg-size=big"], 'invalid integer value "big" for flag --max-call-recv-msg-size'],
    [["--endpoint=/tmp/csi.sock"], 'invalid value "/tmp/csi.sock" for flag --endpoint: invalid endpoint: /tmp/csi.sock'],
    [["--metrics-backend=statsd"], 'invalid value "statsd" for flag --metrics-backend: unsupported metrics backend statsd'],
    [["--tmpfs-size=lots"], 'invalid value "lots" for flag --tmpfs-size: invalid size "lots" (examples: 16Mi, 1Gi)'],
    [["--rotation-poll-interval=10ms"], 'invalid value "10ms" for flag --rotation-poll-interval: must be at least 1s'],
  ])("rejects %j", (argv, message) => {
    expect(() => parseDriverOptions(argv)).toThrow(FlagError);
    expect(() => parseDriverOptions(argv)).toThrow(message);
  });

  it("parses sizes", () => {
    expect(parseQuantity("64Mi")).toBe(64 * 1024 * 1024);
    expect(parseQuantity("1G")).toBe(1e9);
    expect(parseQuantity("4096")).toBe(4096);
  });
});
