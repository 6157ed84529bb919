// The status objects written after a publish has answered: the latest status
// wanted wins, one write at a time per volume, retried while the volume is
// the driver's, and a stopping driver waits for them. The API server is a
// stand-in here (this module's unit test); the cluster test of
// NodePublishVolume shows the same against a real one that refuses writes.
import { PassThrough } from "node:stream";
import { describe, expect, it, vi } from "vitest";
import { PodStatusWrites } from "../../../src/driver/kube/pod-status-writes.ts";
import { buildPodStatus } from "../../../src/driver/kube/pod-status.ts";
import { MountedVolumes, newVolumeRecord, type MountedVolume } from "../../../src/driver/volume/mounted-volumes.ts";
import { createLogger } from "../../../src/shared/logger.ts";
import type { SecretProviderClassPodStatus } from "../../../src/shared/kube/kube-types.ts";

interface Call {
  status: SecretProviderClassPodStatus;
  expectExisting: boolean;
  settle: (error?: Error) => void;
}

/** An API server whose every write waits until the test settles it. */
function heldApi() {
  const calls: Call[] = [];
  const waiting: Array<() => void> = [];
  return {
    calls,
    upsertPodStatus(status: SecretProviderClassPodStatus, options: { expectExisting?: boolean } = {}): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        calls.push({ status, expectExisting: options.expectExisting ?? false, settle: (error) => (error ? reject(error) : resolve()) });
        waiting.splice(0).forEach((wake) => wake());
      });
    },
    /** Resolves once the API server has seen `count` writes. */
    async writes(count: number): Promise<Call> {
      while (calls.length < count) await new Promise<void>((wake) => waiting.push(wake));
      return calls[count - 1]!;
    },
  };
}

function setUp() {
  const api = heldApi();
  const volumes = new MountedVolumes();
  const out = new PassThrough();
  let logged = "";
  out.on("data", (d: Buffer) => (logged += d.toString()));
  const writes = new PodStatusWrites(api, volumes, createLogger({ name: "test", destination: out }), { firstBackoffMs: 1 });
  const volume: MountedVolume = newVolumeRecord({
    targetPath: "/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~csi/v/mount",
    volumeId: "v",
    mount: { id: 1, dev: "0:99", source: "secrets-store.csi.k8s.io", birthtimeNs: 1n },
    pod: { name: "app", namespace: "ns", uid: "uid-1" },
    spcName: "spc",
    provider: "azure",
    volumeContext: {},
    secrets: {},
    objectVersions: [],
  });
  volumes.set(volume);
  const status = (version: string) =>
    buildPodStatus({ pod: volume.pod, spcName: "spc", nodeName: "node-1", targetPath: volume.targetPath, objectVersions: [{ id: "secret/a", version }] });
  return { api, volumes, writes, volume, status, logged: () => logged };
}

describe("PodStatusWrites", () => {
  it("creates the status object in the background and forgets the volume once written", async () => {
    const { api, writes, volume, status } = setUp();
    writes.write(volume, status("v1"));
    expect(writes.isPending(volume)).toBe(true);
    const first = await api.writes(1);
    expect(first.status.status?.objects).toEqual([{ id: "secret/a", version: "v1" }]);
    expect(first.expectExisting).toBe(false);
    first.settle();
    await writes.drain(10_000);
    expect(writes.isPending(volume)).toBe(false);
    expect(api.calls).toHaveLength(1);
  });

  it("a newer status wanted during a write is written after it, as a replacement, and the one in between is skipped", async () => {
    const { api, writes, volume, status } = setUp();
    writes.write(volume, status("v1"));
    const first = await api.writes(1);
    writes.write(volume, status("v2"), true);
    writes.write(volume, status("v3"), true);
    first.settle();
    const second = await api.writes(2);
    expect(second.status.status?.objects).toEqual([{ id: "secret/a", version: "v3" }]);
    expect(second.expectExisting).toBe(true);
    second.settle();
    await writes.drain(10_000);
    expect(api.calls).toHaveLength(2);
  });

  it("a status wanted just as the last write lands is written too, whichever turn it comes in", async () => {
    for (let turns = 0; turns <= 8; turns++) {
      const { api, writes, volume, status } = setUp();
      writes.write(volume, status("v1"));
      const first = await api.writes(1);
      first.settle();
      for (let i = 0; i < turns; i++) await Promise.resolve();
      writes.write(volume, status("v2"), true);
      const second = await api.writes(2);
      expect(second.status.status?.objects, `after ${turns} turns`).toEqual([{ id: "secret/a", version: "v2" }]);
      second.settle();
      await writes.drain(10_000);
    }
  });

  it("retries a refused write, logging each refusal without the status's contents, until it lands", async () => {
    const { api, writes, volume, status, logged } = setUp();
    writes.write(volume, status("v1"));
    (await api.writes(1)).settle(new Error("admission webhook denied the request"));
    const retry = await api.writes(2);
    // After a failure the object may exist (a write that timed out may have landed): read first.
    expect(retry.expectExisting).toBe(true);
    expect(retry.status.status?.objects).toEqual([{ id: "secret/a", version: "v1" }]);
    retry.settle();
    await writes.drain(10_000);
    expect(writes.isPending(volume)).toBe(false);
    const lines = logged().trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "warn", podStatus: "ns/app-ns-spc", attempt: 1, error: "admission webhook denied the request" });
  });

  it("stops retrying once the volume is unpublished", async () => {
    const { api, volumes, writes, volume, status } = setUp();
    writes.write(volume, status("v1"));
    const first = await api.writes(1);
    volumes.delete(volume.targetPath);
    first.settle(new Error("the server is currently unable to handle the request"));
    // No drain here: the loop ends by itself at its next turn.
    await vi.waitFor(() => expect(writes.isPending(volume)).toBe(false));
    expect(api.calls).toHaveLength(1);
  });

  it("a stopping driver waits for a pending write, then stops retrying", async () => {
    const { api, writes, volume, status } = setUp();
    writes.write(volume, status("v1"));
    const first = await api.writes(1);
    let drained = false;
    const draining = writes.drain(60_000).then(() => (drained = true));
    await Promise.resolve();
    expect(drained).toBe(false);
    first.settle(new Error("connection refused"));
    await draining;
    expect(api.calls).toHaveLength(1);
  });
});
