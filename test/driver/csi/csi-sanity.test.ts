// kubernetes-csi's conformance suite (csi-sanity) against the driver program on
// a real unix socket. Every Identity and Node spec that applies to a node-only
// plugin must pass; the only skips are Controller specs and the one Node spec
// that provisions a volume through CreateVolume.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, startDriverProcess, type DriverProcess } from "../../support/driver-process.ts";

function csiSanityBinary(): string {
  // Builds csi-sanity with `go install` on first use; cached afterwards. Fails
  // loudly (Go missing) rather than skipping.
  const out = execFileSync("bash", [join(REPO, "test/harness/install-tools.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  return join(out.trim().split("\n").pop()!, "csi-sanity");
}

describe("csi-sanity", () => {
  let dir: string;
  let driver: DriverProcess;
  let binary: string;

  beforeAll(async () => {
    binary = csiSanityBinary();
    dir = mkdtempSync(join(tmpdir(), "csi-sanity-"));
    // csi-sanity creates its mount and staging dirs, kubelet-style, inside a pod's directory.
    mkdirSync(join(dir, "pods", "sanity-pod"), { recursive: true });
    driver = await startDriverProcess(join(dir, "csi.sock"), ["--nodeid=sanity-node", `--kubelet-dir=${dir}`, "--metrics-addr=", "--health-addr="], {
      KUBECONFIG: join(dir, "no-kubeconfig"),
    });
  }, 900_000);

  afterAll(async () => {
    await driver?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("passes every Identity and Node spec that applies to a node-only driver", () => {
    const result = spawnSync(
      binary,
      [
        `--csi.endpoint=unix://${driver.socketPath}`,
        `--csi.mountdir=${join(dir, "pods", "sanity-pod", "mount")}`,
        `--csi.stagingdir=${join(dir, "pods", "sanity-pod", "staging")}`,
        "--ginkgo.no-color",
        "--ginkgo.v",
        // Controller specs, and the one Node spec that needs CreateVolume.
        "--ginkgo.skip=Controller Service|should remove target path",
      ],
      { encoding: "utf8", timeout: 120_000 },
    );
    const output = `${result.stdout}\n${result.stderr}`;
    const ran = /Ran (\d+) of (\d+) Specs/.exec(output);
    const tally = /(\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped/.exec(output);
    expect(ran, output).not.toBeNull();
    expect(tally, output).not.toBeNull();
    const [, passed, failed, pending, skipped] = tally!.map(Number);
    console.log(`csi-sanity: ran ${ran![1]} of ${ran![2]} specs: ${passed} passed, ${failed} failed, ${pending} pending, ${skipped} skipped`);
    expect(failed, output).toBe(0);
    expect(result.status, output).toBe(0);
    // The Identity (3) and Node (7) specs for a node-only driver, at least.
    expect(passed).toBeGreaterThanOrEqual(10);
  });
});
