// Assembles the driver: CSI services on the endpoint, metrics and health HTTP
// servers, provider clients, Kubernetes access. Used by main.ts and by tests
// that run the driver in-process.
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../shared/logger.ts";
import { startGrpcServer, type RunningGrpcServer } from "../shared/grpc/grpc-server.ts";
import { startHttpServer, type RunningHttpServer } from "../shared/http/http-server.ts";
import { csiServices } from "../shared/grpc/proto.ts";
import type { DriverContext } from "./context.ts";
import { controllerService } from "./csi/controller-server.ts";
import { identityService } from "./csi/identity-server.ts";
import { KubeClient } from "./kube/kube-client.ts";
import { loadKubeConnection } from "../shared/kube/kube-connection.ts";
import { DriverMetrics } from "./metrics.ts";
import { MountedVolumes } from "./volume/mounted-volumes.ts";
import { TmpfsMounter, type Mounter } from "./volume/mounter.ts";
import { nodeService } from "./csi/node-server.ts";
import type { DriverOptions } from "./options.ts";
import { startPluginRegistration, type PluginRegistration } from "./csi/plugin-registration.ts";
import { ProviderClients } from "../shared/provider-api/provider-client.ts";
import { StandaloneKube } from "./kube/standalone-kube.ts";
import { RefreshRequests } from "./rotation/refresh-requests.ts";
import { RefreshSignals } from "./rotation/refresh-signals.ts";
import { RotationReconciler } from "./rotation/rotation-reconciler.ts";
import { TargetLocks } from "./volume/target-locks.ts";
import { SecretSyncer } from "./sync/secret-sync.ts";
import { recoverMountedVolumes } from "./volume/volume-recovery.ts";
import { PodStatusWrites } from "./kube/pod-status-writes.ts";

export interface RunningDriver {
  ctx: DriverContext;
  reconciler?: RotationReconciler;
  refreshSignals?: RefreshSignals;
  grpc: RunningGrpcServer;
  metrics?: RunningHttpServer;
  health?: RunningHttpServer;
  registration?: PluginRegistration;
  stop(): Promise<void>;
}

export interface DriverDependencies {
  logger: Logger;
  mounter?: Mounter;
  metrics?: DriverMetrics;
}

/** Calls Probe on our own socket, as the livenessprobe sidecar would. */
function probeSelf(address: string): () => Promise<void> {
  const { Identity } = csiServices();
  const client = new Identity(address, grpc.credentials.createInsecure());
  return () =>
    new Promise<void>((resolve, reject) => {
      (client as unknown as { Probe: (req: object, opts: grpc.CallOptions, cb: (err: Error | null) => void) => void }).Probe(
        {},
        { deadline: new Date(Date.now() + 3000) },
        (err) => (err ? reject(err) : resolve()),
      );
    });
}

/** How long a stopping driver waits for status objects still being written. */
const STATUS_DRAIN_MS = 2_000;

export async function startDriver(options: DriverOptions, deps: DriverDependencies): Promise<RunningDriver> {
  const logger = deps.logger;
  let kube: KubeClient | Error;
  const standalone = options.secretProviderClassDir !== undefined;
  try {
    kube = standalone
      ? new StandaloneKube(options.secretProviderClassDir!, logger, options.nodeId)
      : new KubeClient(await loadKubeConnection(options.kubeconfig), logger, { nodeName: options.nodeId });
  } catch (err) {
    // The driver still serves Identity; publishes fail with Unavailable.
    kube = err as Error;
    logger.error({ error: kube.message }, "no Kubernetes configuration; mounts will fail until the driver is restarted with one");
  }
  const ctx: DriverContext = {
    options,
    logger,
    metrics: deps.metrics ?? new DriverMetrics(),
    mounter: deps.mounter ?? new TmpfsMounter(),
    providers: new ProviderClients(options.providerDirs, options.maxCallRecvMsgSize, logger),
    volumes: new MountedVolumes(),
    locks: new TargetLocks(),
    kube,
  };
  ctx.metrics.knowProviders((provider) => ctx.providers.isInstalled(provider));
  if (!(kube instanceof Error)) ctx.podStatuses = new PodStatusWrites(kube, ctx.volumes, logger);

  const { Identity, Node, Controller } = csiServices();
  const server = await startGrpcServer({ endpoint: options.endpoint }, (s) => {
    s.addService(Identity.service, identityService(ctx));
    s.addService(Node.service, nodeService(ctx));
    s.addService(Controller.service, controllerService(ctx));
  });
  logger.info({ endpoint: options.endpoint, driver: options.drivername, node: options.nodeId }, "CSI driver listening");

  let registration: PluginRegistration | undefined;
  if (options.registerWithKubelet) {
    try {
      registration = await startPluginRegistration(options, logger);
    } catch (err) {
      await server.stop();
      throw err;
    }
  }

  const metrics = options.metricsAddr ? await startHttpServer(options.metricsAddr, { registry: ctx.metrics.registry }) : undefined;
  const probe = probeSelf(server.address);
  const healthCheck = async (): Promise<void> => {
    await probe();
    await registration?.check();
  };
  const health = options.healthAddr ? await startHttpServer(options.healthAddr, { health: healthCheck }) : undefined;
  // The bound ports, for a --metrics-addr or --health-addr with port 0.
  if (metrics || health) logger.info({ metricsAddr: options.metricsAddr, metricsPort: metrics?.port, healthAddr: options.healthAddr, healthPort: health?.port }, "HTTP servers listening");

  const timers: NodeJS.Timeout[] = [];
  if (options.providerHealthCheck) {
    timers.push(setInterval(() => void ctx.providers.healthCheck(), options.providerHealthCheckIntervalMs).unref());
  }

  let reconciler: RotationReconciler | undefined;
  let refreshRequests: RefreshRequests | undefined;
  let refreshSignals: RefreshSignals | undefined;
  if (options.enableSecretRotation) {
    const r = new RotationReconciler(ctx);
    reconciler = r;
    ctx.jitter = () => r.jitterFor();
    ctx.refreshNow = (volume, deadline, held) => r.refreshNow(volume, deadline, held);
    r.start();
    if (!(kube instanceof Error) && !standalone) {
      refreshRequests = new RefreshRequests(ctx, kube, (podUid) => {
        for (const v of ctx.volumes.all()) {
          if (v.pod.uid === podUid) {
            v.refreshRequested = true;
            void r.refreshNow(v);
          }
        }
      });
      void refreshRequests.start();
      // Requests from the controller (Key Vault events), on this node's status objects.
      refreshSignals = new RefreshSignals(ctx, kube, (volume) => r.refreshNow(volume));
      void refreshSignals.start();
    }
  }
  if (options.enableSecretSync && !(kube instanceof Error) && !standalone) {
    const syncer = new SecretSyncer(ctx);
    ctx.syncSecrets = async (volume, spc) => {
      const result = await syncer.syncVolume(volume, spc);
      if (result.failed.length > 0) volume.syncPending = true;
    };
  }
  if (!(kube instanceof Error) && !standalone) {
    // Know the volumes mounted before a restart as the driver's own (so
    // unpublish cleans them up), and resume rotation and sync for them;
    // retried until the API server answers.
    const recover = async (attempt: number): Promise<void> => {
      try {
        await recoverMountedVolumes(ctx, () => ctx.jitter?.() ?? 0);
      } catch (err) {
        logger.warn({ error: (err as Error).message, attempt }, "could not recover mounted volumes yet; retrying");
        timers.push(setTimeout(() => void recover(attempt + 1), Math.min(60_000, 1000 * 2 ** attempt)).unref());
      }
    };
    void recover(0);
  }
  // The mount helper starts once the driver serves, not in the first publish:
  // a node booting publishes all its pods' volumes right after registration.
  const startMounter = setImmediate(() => ctx.mounter.start?.());

  return {
    ctx,
    reconciler,
    refreshSignals,
    grpc: server,
    metrics,
    health,
    registration,
    async stop() {
      // Deregister first, so kubelet stops sending calls to a driver that is going away.
      await registration?.stop();
      clearImmediate(startMounter);
      for (const t of timers) clearInterval(t);
      reconciler?.stop();
      refreshRequests?.stop();
      refreshSignals?.stop();
      await server.stop();
      // What was published has its status object, unless the API server is away.
      await ctx.podStatuses?.drain(STATUS_DRAIN_MS);
      await metrics?.close();
      await health?.close();
      ctx.providers.close();
      ctx.mounter.close();
    },
  };
}
