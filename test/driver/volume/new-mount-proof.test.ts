// How a publish proves the tmpfs at the target is the one it just mounted:
// by the id and device the kernel's mount API reported for the new mount, or,
// where the kernel could not say, by the mount table. A mount whose identity
// does not match what the target opens onto is refused and left alone (the
// driver cannot prove it its own), and nothing is written. The driver runs in this process (standalone mode, real
// tmpfs, a fake provider on a real socket) with the real mounter wrapped.
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startDriver, type RunningDriver } from "../../../src/driver/driver.ts";
import { listMounts, TmpfsMounter, type Mounter } from "../../../src/driver/volume/mounter.ts";
import type { NewMount } from "../../../src/driver/volume/mount-syscalls.ts";
import { parseDriverOptions } from "../../../src/driver/options.ts";
import { createLogger } from "../../../src/shared/logger.ts";
import { csiClient, type CsiClient } from "../../support/csi-client.ts";
import { removeTestTree, requireRoot, standaloneDriverFlags } from "../../support/driver-process.ts";
import { defaultMount, startFakeProvider, type FakeProvider } from "../../support/fake-provider.ts";

/** The real mounter, with what it reports about the new mount rewritten by `report`. */
class ReportingMounter implements Mounter {
  readonly real = new TmpfsMounter({ via: "syscalls" });
  reported: (NewMount | undefined)[] = [];
  report: (made: NewMount | undefined) => NewMount | undefined = (made) => made;
  async mountTmpfs(dir: { readonly fd: number }, source: string, sizeBytes: number): Promise<NewMount | undefined> {
    const made = await this.real.mountTmpfs(dir, source, sizeBytes);
    this.reported.push(made);
    return this.report(made);
  }
  unmount(dir: { readonly fd: number }): Promise<void> {
    return this.real.unmount(dir);
  }
  close(): void {
    this.real.close();
  }
}

describe("the new tmpfs is proven the driver's before anything is written", () => {
  let base: string;
  let provider: FakeProvider;
  let driver: RunningDriver;
  let csi: CsiClient;
  const mounter = new ReportingMounter();
  const target = () => join(base, "pods", "proof-pod", "volumes", "kubernetes.io~csi", "secrets", "mount");
  const publish = () =>
    csi.call("Node", "NodePublishVolume", {
      volume_id: "csi-proof",
      target_path: target(),
      volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
      readonly: true,
      volume_context: {
        secretProviderClass: "proof",
        "csi.storage.k8s.io/pod.name": "proof-pod",
        "csi.storage.k8s.io/pod.namespace": "proof",
        "csi.storage.k8s.io/pod.uid": "proof-pod",
      },
    });
  const unpublish = () => csi.call("Node", "NodeUnpublishVolume", { volume_id: "csi-proof", target_path: target() });
  const mountsAtTarget = async () => (await listMounts()).filter((m) => m.mountPoint === target());

  beforeAll(async () => {
    requireRoot();
    base = await mkdtemp(join(tmpdir(), "proof-"));
    await mkdir(join(base, "spc"));
    await mkdir(join(base, "providers"));
    await mkdir(join(target(), ".."), { recursive: true });
    await writeFile(
      join(base, "spc", "proof.yaml"),
      "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: proof, namespace: proof}\nspec: {provider: fake, parameters: {objects: a}}\n",
    );
    provider = await startFakeProvider(join(base, "providers", "fake.sock"), defaultMount);
    const quiet = new Writable({ write: (_c, _e, done) => done() });
    const options = parseDriverOptions([`--endpoint=unix://${join(base, "csi.sock")}`, ...standaloneDriverFlags(base, "proof-node")]);
    driver = await startDriver(options, { mounter, logger: createLogger({ name: "proof-driver", level: "warn", destination: quiet }) });
    csi = csiClient(join(base, "csi.sock"));
  });

  afterEach(() => {
    mounter.report = (made) => made;
    mounter.reported = [];
  });

  afterAll(async () => {
    csi?.close();
    await driver?.stop();
    await provider?.stop();
    await removeTestTree(base);
  });

  it("with the id and device the kernel reported for the new mount: mounted and written", async () => {
    await publish();
    expect(mounter.reported).toHaveLength(1);
    expect(mounter.reported[0]).toEqual({ id: expect.any(Number), dev: expect.stringMatching(/^\d+:\d+$/) });
    const [mount] = await mountsAtTarget();
    expect(mount).toMatchObject({ id: mounter.reported[0]!.id, dev: mounter.reported[0]!.dev, fsType: "tmpfs" });
    expect(await readFile(join(target(), "a"), "utf8")).toBe("alpha");
    await unpublish();
    expect(await mountsAtTarget()).toEqual([]);
  });

  it("a reported mount the target does not open onto: refused and left alone, nothing written, no record", async () => {
    for (const wrong of [(m: NewMount) => ({ ...m, id: m.id + 1 }), (m: NewMount) => ({ ...m, dev: "0:1" })]) {
      mounter.report = (made) => wrong(made!);
      const err = (await publish().then(
        () => undefined,
        (e: unknown) => e,
      )) as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.INTERNAL);
      expect(err.details).toContain(`failed to mount tmpfs at ${target()}: the new tmpfs is not the top mount at ${target()}`);
      const mounts = await mountsAtTarget();
      expect(mounts).toHaveLength(1);
      expect(readdirSync(target())).toEqual([]);
      expect(driver.ctx.volumes.get(target())).toBeUndefined();
      execFileSync("umount", [target()]);
    }
  });

  it("where the kernel could not say which mount it made, the mount table proves it", async () => {
    mounter.report = () => undefined;
    await publish();
    expect(await readFile(join(target(), "a"), "utf8")).toBe("alpha");
    await unpublish();
    expect(await mountsAtTarget()).toEqual([]);
  });
});
