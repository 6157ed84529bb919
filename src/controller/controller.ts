// Assembles the SecretSync controller: Kubernetes access, the watches of
// SecretSyncs and SecretProviderClasses, the rotation schedule, the work
// queue and its reconciler, the provider clients, leader election, and the
// metrics and health servers; with events on, the Key Vault event receivers
// (webhook, pull) and the watch of SecretProviderClassPodStatuses through
// which nodes are asked to refresh; with restart on rotation, the watch of
// workloads and the restarter. Used by main.ts and by tests that run it
// in-process.
import type { Logger } from "../shared/logger.ts";
import { startHttpServer, type RunningHttpServer } from "../shared/http/http-server.ts";
import { loadKubeConnection } from "../shared/kube/kube-connection.ts";
import { loadYaml } from "../shared/load-yaml.ts";
import { KubeRest } from "../shared/kube/kube-rest.ts";
import { SPC_GROUP, SPC_PLURAL, SPC_VERSION, SPCPS_PLURAL, type SecretProviderClass } from "../shared/kube/kube-types.ts";
import { ProviderClients } from "../shared/provider-api/provider-client.ts";
import { keyOf, type SecretSync } from "./api/secret-sync.ts";
import { EventRecorder } from "./kube/event-recorder.ts";
import { Informer } from "./kube/informer.ts";
import { LeaderElector } from "./kube/leader-election.ts";
import { SecretSyncStatusWriter, secretSyncsPath } from "./kube/secret-sync-status.ts";
import { SecretWriter } from "./kube/secret-writer.ts";
import { ControllerMetrics } from "./metrics.ts";
import type { ControllerOptions } from "./options.ts";
import { ServiceAccountTokens } from "./provider/service-account-tokens.ts";
import { SharedMounts } from "./provider/shared-mounts.ts";
import { Reconciler } from "./reconcile/reconciler.ts";
import { RotationSchedule } from "./reconcile/rotation.ts";
import { SyncHashes } from "./reconcile/sync-hash.ts";
import { WorkQueue } from "./reconcile/work-queue.ts";
import { ClassObjectIndex } from "./events/class-objects.ts";
import { EntraTokenValidator } from "./events/entra-token.ts";
import { EventProcessor } from "./events/event-processor.ts";
import { ExpiryNotices } from "./events/expiry.ts";
import { QuerySecrets } from "./events/query-secrets.ts";
import { SecretSyncRefresh } from "./events/secret-sync-refresh.ts";
import { VolumeSignals } from "./events/volume-signals.ts";
import { startWebhookServer, type RunningWebhook } from "./events/webhook-server.ts";
import { PodStatusIndex, trimPodStatus, type PodStatus } from "./kube/pod-status-index.ts";
import { Restarter } from "./rollout/restarter.ts";
import { SecretContents } from "./rollout/secret-content.ts";
import { WorkloadIndex } from "./rollout/workloads.ts";

export interface ControllerDependencies {
  logger: Logger;
  metrics?: ControllerMetrics;
  /** Called once if this replica led and lost its Lease (main.ts exits, so the pod restarts as a stand-by). */
  onLeadershipLost?: () => void;
  /** Called when the leader cannot do its work (the event webhook cannot listen): main.ts exits. */
  onFatal?: (err: Error) => void;
}

export interface RunningController {
  metrics: ControllerMetrics;
  metricsServer?: RunningHttpServer;
  healthServer?: RunningHttpServer;
  /** The event webhook's port once this replica leads (with a webhook configured). */
  webhookPort(): number | undefined;
  isLeader(): boolean;
  stop(): Promise<void>;
}

/** Rotation ticks run late by up to this fraction of the interval. */
const ROTATION_JITTER = 0.1;
/** Back-off of a failing SecretSync when rotation is off. */
const MAX_BACKOFF_WITHOUT_ROTATION_MS = 5 * 60_000;
/** Shutdown waits this long for reconciles in progress. */
const SHUTDOWN_GRACE_MS = 20_000;
/** Events handled at the same time, and at most waiting. */
const EVENT_CONCURRENCY = 8;
const MAX_PENDING_EVENTS = 1000;
/** Shortest time between two access re-checks of one vault. */
const ACCESS_CHECK_INTERVAL_MS = 60_000;

const generationOf = (obj: { metadata: { generation?: number } }) => obj.metadata.generation ?? 0;

export async function startController(options: ControllerOptions, deps: ControllerDependencies): Promise<RunningController> {
  const { logger } = deps;
  const metrics = deps.metrics ?? new ControllerMetrics();
  const rest = new KubeRest(await loadKubeConnection(options.kubeconfig));
  const stopping = new AbortController();
  const interval = options.rotationIntervalMs;

  const providers = new ProviderClients([options.providerDir], options.maxCallRecvMsgSize, logger);
  const tokens = new ServiceAccountTokens(rest, {
    audiences: options.audiences,
    maxEntries: options.maxServiceAccountTokens,
    onRequest: () => metrics.tokenRequests.inc(),
  });
  const mounts = new SharedMounts(
    providers,
    tokens,
    {
      pod: { name: options.pod.name, uid: options.pod.uid },
      maxEntries: options.maxProviderAnswers,
      idleMs: Math.max(2 * interval, 10 * 60_000),
      onCall: (outcome) => metrics.providerCalls.inc({ outcome }),
      onShared: () => metrics.providerAnswersShared.inc(),
    },
    stopping.signal,
  );
  // One remembered hash per SecretSync; far more than a cluster holds.
  const hashes = new SyncHashes({ maxEntries: 100_000 });
  const events = new EventRecorder(rest, logger, { instance: options.pod.name, repeatAfterMs: 10 * 60_000, maxRemembered: 10_000 });

  // An event-driven sync may use an answer fetched since the group's last
  // tick; with rotation off there are no ticks, so it asks for a new one.
  const eventFreshness = () => (interval > 0 ? 0 : Date.now());

  let queue: WorkQueue | undefined;
  const enqueue = (key: string, freshAfter: number) => queue?.add(key, freshAfter);
  const rotation = new RotationSchedule({
    intervalMs: interval,
    jitter: ROTATION_JITTER,
    onTick: (members, at) => {
      for (const key of members) enqueue(key, at);
    },
  });
  const track = (ss: SecretSync) =>
    rotation.track(keyOf(ss), { namespace: ss.metadata.namespace ?? "", className: ss.spec.secretProviderClassName, serviceAccount: ss.spec.serviceAccountName });

  const secretSyncs: Informer<SecretSync> = new Informer<SecretSync>(rest, logger, {
    path: secretSyncsPath,
    resource: "secretsyncs",
    handlers: {
      onAdd: (ss) => {
        track(ss);
        enqueue(keyOf(ss), eventFreshness());
      },
      onUpdate: (old, ss) => {
        track(ss);
        // Status writes (ours) change neither; a new uid is a new object.
        if (old.metadata.uid === ss.metadata.uid && generationOf(old) === generationOf(ss)) return;
        const forced = (old.spec.forceSynchronization ?? "") !== (ss.spec.forceSynchronization ?? "");
        enqueue(keyOf(ss), forced ? Date.now() : eventFreshness());
      },
      onDelete: (ss) => {
        const key = keyOf(ss);
        queue?.remove(key);
        rotation.untrack(key);
        reconciler.forget(key);
        if (ss.metadata.uid) hashes.forget(ss.metadata.uid);
        if (ss.metadata.uid) contents?.forget(ss.metadata.uid);
      },
    },
  });
  const eventsOn = options.events.webhook !== undefined || options.events.pull !== undefined;
  // Without events nothing reads the index: a parser that finds no objects
  // keeps the YAML package out of the start-up.
  const classObjects = new ClassObjectIndex(eventsOn ? (await loadYaml()).parse : () => undefined);
  let restarter: Restarter | undefined;
  const podStatusIndex = new PodStatusIndex({ onTransition: (t) => restarter?.classChanged(t.namespace, t.className, t.before, t.after) });
  const podStatuses =
    eventsOn || options.restart.enabled
      ? new Informer<PodStatus>(rest, logger, {
          path: `/apis/${SPC_GROUP}/${SPC_VERSION}/${SPCPS_PLURAL}`,
          resource: SPCPS_PLURAL,
          transform: trimPodStatus,
          handlers: { onAdd: (ps) => podStatusIndex.add(ps), onUpdate: (old, ps) => podStatusIndex.update(old, ps), onDelete: (ps) => podStatusIndex.remove(ps) },
        })
      : undefined;
  const workloads = options.restart.enabled ? new WorkloadIndex(rest, logger, { onForget: (uid) => restarter?.forget(uid) }) : undefined;
  if (workloads) {
    restarter = new Restarter(
      { rest, workloads, secretProviderClass: (namespace, name) => classes.get(namespace, name), events, metrics, logger },
      { minIntervalMs: options.restart.minIntervalMs },
    );
  }
  const contents = restarter ? new SecretContents({ maxEntries: 100_000 }) : undefined;

  const classChanged = (spc: SecretProviderClass, uid: string | undefined) => {
    const namespace = spc.metadata.namespace ?? "";
    mounts.forgetClass(namespace, uid);
    const now = Date.now();
    for (const key of rotation.byClass(namespace, spc.metadata.name)) enqueue(key, now);
  };
  const classes = new Informer<SecretProviderClass>(rest, logger, {
    path: `/apis/${SPC_GROUP}/${SPC_VERSION}/${SPC_PLURAL}`,
    resource: "secretproviderclasses",
    handlers: {
      onAdd: (spc) => {
        classObjects.set(spc);
        classChanged(spc, spc.metadata.uid);
      },
      onUpdate: (old, spc) => {
        if (old.metadata.uid === spc.metadata.uid && generationOf(old) === generationOf(spc)) return;
        classObjects.set(spc);
        classChanged(spc, old.metadata.uid);
      },
      onDelete: (spc) => {
        classObjects.delete(spc.metadata.namespace ?? "", spc.metadata.name);
        classChanged(spc, spc.metadata.uid);
      },
    },
  });

  const reconciler = new Reconciler({
    secretSyncs,
    classes,
    mounts,
    hashes,
    writer: new SecretWriter(rest),
    status: new SecretSyncStatusWriter(rest),
    events,
    metrics,
    logger,
    maxBackoffMs: interval > 0 ? interval : MAX_BACKOFF_WITHOUT_ROTATION_MS,
    onSynced: contents
      ? (ss, spc, data, outcome) => {
          const firstSeen = restarter?.secretRecorded(ss.metadata.namespace ?? "", ss.metadata.name) ?? false;
          void contents.observe(ss, data, mounts.objectsOf(ss, spc), outcome === "updated", firstSeen).then((change) => {
            if (change) restarter?.secretChanged(change.namespace, change.secret, change.hash, change.versions, change.known);
          });
        }
      : undefined,
  });

  // Key Vault events: what they reach, and the two ways in.
  const secretSyncRefresh = new SecretSyncRefresh({
    keysOfClass: (ref) => rotation.byClass(ref.namespace, ref.name),
    secretSync: (key) => secretSyncs.getByKey(key),
    secretProviderClass: (ref) => classes.get(ref.namespace, ref.name),
    holdsVersion: (ss, spc, version) => mounts.holdsVersion(ss, spc, version),
    syncNow: (key, notBefore) => (queue ? queue.addAndWait(key, notBefore) : Promise.resolve(false)),
  });
  const expiry = new ExpiryNotices({
    events,
    podStatuses: podStatusIndex,
    secretSyncsOfClass: (ref) => secretSyncRefresh.secretSyncsOfClass(ref),
    maxObjects: Math.min(options.events.maxTracked, 10_000),
  });
  metrics.expirySource = expiry;
  const processor = new EventProcessor(
    { index: classObjects, secretSyncs: secretSyncRefresh, volumes: new VolumeSignals(rest, podStatusIndex), expiry, metrics, logger },
    { maxTracked: options.events.maxTracked, maxPending: MAX_PENDING_EVENTS, concurrency: EVENT_CONCURRENCY, accessCheckIntervalMs: ACCESS_CHECK_INTERVAL_MS },
  );
  metrics.eventMemorySource = () => {
    const { ids, versions, objects, vaults, inFlight } = processor.tracked;
    return { ids, versions, objects, vaults, in_flight: inFlight, expiring: expiry.size };
  };
  // Read before leading, so a wrong file or tenant shows at start-up.
  const webhookConfig = options.events.webhook;
  const querySecrets = webhookConfig?.querySecretsFile ? new QuerySecrets(webhookConfig.querySecretsFile) : undefined;
  const entra = webhookConfig?.entra ? new EntraTokenValidator(webhookConfig.entra) : undefined;
  if (entra) {
    entra.prime().catch((err: unknown) => logger.warn({ error: (err as Error).message }, "cannot read the Entra ID signing keys yet; bearer tokens are refused until they are"));
  }
  let webhook: RunningWebhook | undefined;
  const startEvents = async () => {
    if (webhookConfig) {
      webhook = await startWebhookServer(
        { listen: webhookConfig.listen, certFile: webhookConfig.certFile, keyFile: webhookConfig.keyFile, querySecrets, queryParameter: webhookConfig.queryParameter, entra },
        processor,
        metrics,
        logger,
      );
    }
    if (options.events.pull) {
      // Loaded on demand: @azure/identity is needed only to pull.
      const { PullReceiver } = await import("./events/pull-receiver.ts");
      void new PullReceiver(options.events.pull, processor, metrics, logger).run(stopping.signal);
    }
  };

  let syncing: Promise<void> | undefined;
  const startSyncing = () => {
    syncing ??= (async () => {
      logger.info({ rotationPollInterval: interval, audiences: options.audiences, providerDir: options.providerDir }, "starting the watches");
      void secretSyncs.run(stopping.signal);
      void classes.run(stopping.signal);
      if (podStatuses) void podStatuses.run(stopping.signal);
      workloads?.run(stopping.signal);
      await Promise.all([secretSyncs.waitForSync(), classes.waitForSync(), podStatuses?.waitForSync(), workloads?.waitForSync()]);
      if (stopping.signal.aborted) return;
      queue = new WorkQueue({
        concurrency: options.concurrency,
        process: (key, freshAfter) => reconciler.reconcile(key, freshAfter),
        onError: (key, err) => logger.error({ secretSync: key, error: (err as Error).message }, "reconcile crashed"),
      });
      for (const ss of secretSyncs.values()) queue.add(keyOf(ss), eventFreshness());
      queue.start();
      // Content that moved while this replica was not leading reached no
      // transition: compare what the volumes show with what workloads record.
      if (restarter) for (const seen of podStatusIndex.agreedVersions()) restarter.classSeen(seen.namespace, seen.className, seen.objects);
      logger.info(
        { secretSyncs: secretSyncs.size, secretProviderClasses: classes.size, podStatuses: podStatuses?.size, workloads: workloads?.size },
        "watches synced; reconciling",
      );
      if (eventsOn) {
        try {
          await startEvents();
        } catch (err) {
          // A webhook that cannot listen (a bad certificate, a taken port) is fatal: the pod restarts and says why.
          logger.error({ error: (err as Error).message }, "cannot receive key vault events");
          deps.onFatal?.(err as Error);
        }
      }
    })();
    return syncing;
  };

  const gauges = setInterval(() => {
    metrics.secretSyncs.set(secretSyncs.size);
    metrics.rotationGroups.set(rotation.groupCount);
    metrics.queueDepth.set(queue?.depth ?? 0);
  }, 5_000);
  gauges.unref();

  let elector: LeaderElector | undefined;
  if (options.leaderElect) {
    const identity = `${options.pod.name}_${options.pod.uid}`;
    elector = new LeaderElector(rest, logger, {
      namespace: options.leaderElectionNamespace,
      name: options.leaderElectionId,
      identity,
      ...options.lease,
    });
    const e = elector;
    logger.info({ lease: `${options.leaderElectionNamespace}/${options.leaderElectionId}`, identity }, "waiting to lead");
    void e
      .run(stopping.signal, () => {
        metrics.leader.set(1);
        void startSyncing();
      })
      .then(() => {
        metrics.leader.set(0);
        if (!stopping.signal.aborted) deps.onLeadershipLost?.();
      });
  } else {
    metrics.leader.set(1);
    void startSyncing();
  }

  const synced = () => secretSyncs.hasSynced && classes.hasSynced && (podStatuses?.hasSynced ?? true) && (workloads?.hasSynced ?? true) && queue !== undefined;
  const ready = async (): Promise<void> => {
    if (elector && !elector.isLeader) {
      // A stand-by is ready while it reaches the API server.
      if (Date.now() - elector.lastContactAt > 30_000) throw new Error("the API server has not answered the Lease calls for 30s");
      return;
    }
    if (!synced()) throw new Error("the SecretSync and SecretProviderClass watches have not synced yet");
  };
  const metricsServer = options.metricsAddr ? await startHttpServer(options.metricsAddr, { registry: metrics.registry }) : undefined;
  const healthServer = options.healthAddr
    ? await startHttpServer(options.healthAddr, { health: () => Promise.resolve(), healthPath: "/healthz", checks: { "/readyz": ready } })
    : undefined;
  logger.info(
    { metricsAddr: options.metricsAddr, metricsPort: metricsServer?.port, healthAddr: options.healthAddr, healthPort: healthServer?.port, leaderElect: options.leaderElect },
    "controller started",
  );

  let stopped: Promise<void> | undefined;
  return {
    metrics,
    metricsServer,
    healthServer,
    webhookPort: () => webhook?.port,
    isLeader: () => (elector ? elector.isLeader : true),
    stop() {
      stopped ??= (async () => {
        stopping.abort();
        rotation.stop();
        restarter?.stop();
        await webhook?.close();
        clearInterval(gauges);
        // Let reconciles in progress finish their writes, within the grace period.
        if (queue) await Promise.race([queue.stop(), new Promise((r) => setTimeout(r, SHUTDOWN_GRACE_MS).unref())]);
        await elector?.release();
        metrics.leader.set(0);
        await metricsServer?.close();
        await healthServer?.close();
        providers.close();
      })();
      return stopped;
    },
  };
}
