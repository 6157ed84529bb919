// Races on one target, as kubelet makes them when it retries after its own
// deadline or tears a pod down while the mount is still under way: 200 rounds
// of publish‖publish and 200 of publish‖unpublish through the driver's real
// socket onto real tmpfs. The driver runs in this process (standalone mode) so
// its record of mounted volumes can be checked after every round.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDriver, type RunningDriver } from "../../../src/driver/driver.ts";
import { listMounts } from "../../../src/driver/volume/mounter.ts";
import { parseDriverOptions } from "../../../src/driver/options.ts";
import { createLogger } from "../../../src/shared/logger.ts";
import { csiClient, type CsiClient } from "../../support/csi-client.ts";
import { removeTestTree, requireRoot, standaloneDriverFlags, startDriverProcess } from "../../support/driver-process.ts";
import { defaultMount, sleep, startFakeProvider, type FakeProvider } from "../../support/fake-provider.ts";

const ROUNDS = 200;
const SOURCE = "secrets-store.csi.k8s.io";

type Outcome = { ok: true; at: number } | { ok: false; code: grpc.status; details: string; at: number };

describe("one operation per target: races", () => {
  let base: string;
  let provider: FakeProvider;
  let driver: RunningDriver;
  let csi: CsiClient;
  let order = 0;
  const driverArgs = () => [`--endpoint=unix://${join(base, "csi.sock")}`, ...standaloneDriverFlags(base, "race-node")];

  const target = () => join(base, "pods", "race-pod", "volumes", "kubernetes.io~csi", "secrets", "mount");
  const request = (path: string) => ({
    volume_id: "csi-race",
    target_path: path,
    volume_capability: { mount: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } },
    readonly: true,
    volume_context: {
      secretProviderClass: "race",
      "csi.storage.k8s.io/pod.name": "race-pod",
      "csi.storage.k8s.io/pod.namespace": "race",
      "csi.storage.k8s.io/pod.uid": "race-pod",
    },
  });

  /** Resolves with the outcome and the order in which the answer arrived. */
  const settle = (call: Promise<unknown>): Promise<Outcome> =>
    call.then(
      () => ({ ok: true, at: ++order }) as Outcome,
      (err: grpc.ServiceError) => ({ ok: false, code: err.code, details: err.details, at: ++order }) as Outcome,
    );
  const publish = () => settle(csi.call("Node", "NodePublishVolume", request(target())));
  const unpublish = () => settle(csi.call("Node", "NodeUnpublishVolume", { volume_id: "csi-race", target_path: target() }));

  /** Only OK or ABORTED are acceptable answers in a race. */
  function expectOkOrAborted(o: Outcome, what: string): void {
    if (!o.ok) expect(o.code, `${what}: ${o.details}`).toBe(grpc.status.ABORTED);
  }

  async function driverMounts() {
    return (await listMounts()).filter((m) => m.mountPoint === target());
  }

  /** At most one tmpfs, the driver's, and a record exactly when mounted; readable when mounted. */
  async function expectConsistent(round: number): Promise<boolean> {
    const mounts = await driverMounts();
    expect(mounts.length, `round ${round}: tmpfs count`).toBeLessThanOrEqual(1);
    const mounted = mounts.length === 1;
    if (mounted) {
      expect(mounts[0]!.source).toBe(SOURCE);
      expect(await readFile(join(target(), "a"), "utf8"), `round ${round}: readable`).toBe("alpha");
    }
    expect(driver.ctx.volumes.get(target()) !== undefined, `round ${round}: a record exactly when mounted`).toBe(mounted);
    expect(driver.ctx.locks.size, `round ${round}: no lease left behind`).toBe(0);
    return mounted;
  }

  beforeAll(async () => {
    requireRoot();
    base = await mkdtemp(join(tmpdir(), "races-"));
    await mkdir(join(base, "spc"));
    await mkdir(join(base, "providers"));
    await mkdir(join(target(), ".."), { recursive: true });
    await writeFile(
      join(base, "spc", "race.yaml"),
      "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: race, namespace: race}\nspec: {provider: fake, parameters: {objects: a}}\n",
    );
    // A provider that answers after 0-20 ms, so the races fall at every step.
    provider = await startFakeProvider(join(base, "providers", "fake.sock"), async (req) => {
      await sleep(Math.random() * 20);
      return defaultMount(req, new grpc.Metadata());
    });
    const quiet = new Writable({ write: (_c, _e, done) => done() });
    driver = await startDriver(parseDriverOptions(driverArgs()), { logger: createLogger({ name: "race-driver", level: "warn", destination: quiet }) });
    csi = csiClient(join(base, "csi.sock"));
  });

  afterAll(async () => {
    csi?.close();
    await driver?.stop();
    await provider?.stop();
    await removeTestTree(base);
  });

  it(`publish‖publish, ${ROUNDS} rounds: one tmpfs, an OK publish is readable, the other OK or ABORTED`, async () => {
    let aborted = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // Mostly overlapping; now and then the second comes after the first has finished.
      const [first, second] = await Promise.all([publish(), sleep(Math.random() * (round % 10 === 0 ? 60 : 10)).then(publish)]);
      expectOkOrAborted(first!, "first publish");
      expectOkOrAborted(second!, "second publish");
      expect(first!.ok || second!.ok, `round ${round}: one publish ran`).toBe(true);
      if (!first!.ok || !second!.ok) aborted++;
      expect(await expectConsistent(round)).toBe(true);
      // The teardown that follows a pod; OK unpublish leaves nothing.
      const down = await unpublish();
      expect(down.ok).toBe(true);
      expect(await expectConsistent(round)).toBe(false);
      expect(existsSync(target())).toBe(false);
    }
    console.log(`publish‖publish: ${ROUNDS} rounds, ${aborted} answered ABORTED`);
  });

  it(`publish‖unpublish, ${ROUNDS} rounds: OK unpublish after publish leaves nothing, OK publish after unpublish is readable`, async () => {
    const tally = { publishFirst: 0, unpublishFirst: 0, aborted: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      // Half the rounds start from a live volume (republish racing the teardown).
      if (round % 2 === 1) expect((await publish()).ok).toBe(true);
      // Either call may start first, at any step of the other.
      const [p, u] = await Promise.all([sleep(Math.random() * 25).then(publish), sleep(Math.random() * 25).then(unpublish)]);
      expectOkOrAborted(p!, "publish");
      expectOkOrAborted(u!, "unpublish");
      expect(p!.ok || u!.ok, `round ${round}: one call ran`).toBe(true);
      const mounted = await expectConsistent(round);
      if (p!.ok && u!.ok) {
        // Calls on one target never overlap, so the one answered last ran last.
        const publishLast = p!.at > u!.at;
        expect(mounted, `round ${round}: state follows the call that ran last`).toBe(publishLast);
        if (publishLast) tally.unpublishFirst++;
        else tally.publishFirst++;
      } else {
        tally.aborted++;
        expect(mounted, `round ${round}: state follows the call that was not aborted`).toBe(p!.ok);
      }
      expect((await unpublish()).ok).toBe(true);
      expect(await expectConsistent(round)).toBe(false);
    }
    console.log(`publish‖unpublish: ${ROUNDS} rounds: ${tally.publishFirst} publish then unpublish, ${tally.unpublishFirst} unpublish then publish, ${tally.aborted} with one ABORTED`);
  });

  it("after a driver restart, the driver still knows its tmpfs by its source name and unpublishes it", async () => {
    // A separate driver process, restarted between publish and unpublish.
    const restartBase = await mkdtemp(join(tmpdir(), "restart-"));
    const socket = join(restartBase, "csi.sock");
    const args = driverArgs().map((a) => a.replace(`--endpoint=unix://${join(base, "csi.sock")}`, "").replace(`--kubelet-dir=${base}`, `--kubelet-dir=${restartBase}`)).filter(Boolean);
    const path = join(restartBase, "pods", "p", "volumes", "kubernetes.io~csi", "v", "mount");
    await mkdir(join(path, ".."), { recursive: true });
    let proc = await startDriverProcess(socket, args);
    let client = csiClient(socket);
    try {
      await client.call("Node", "NodePublishVolume", { ...request(path) });
      client.close();
      await proc.stop();
      proc = await startDriverProcess(socket, args);
      client = csiClient(socket);
      await client.call("Node", "NodeUnpublishVolume", { volume_id: "csi-race", target_path: path });
      expect((await listMounts()).some((m) => m.mountPoint === path)).toBe(false);
      expect(existsSync(path)).toBe(false);
    } finally {
      client.close();
      await proc.stop();
      await removeTestTree(restartBase);
    }
  });
});
