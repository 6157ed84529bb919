// kubelet's plugin registration (pluginregistration v1), served by the driver
// itself when started with --register-with-kubelet, in place of the
// node-driver-registrar sidecar. kubelet finds the socket in
// <kubelet-dir>/plugins_registry/, asks GetInfo for the CSI socket, calls
// NodeGetInfo there and reports the outcome with NotifyRegistrationStatus.
import { lstat } from "node:fs/promises";
import { join } from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { parseEndpoint } from "../../shared/grpc/endpoint.ts";
import { startGrpcServer, type RunningGrpcServer } from "../../shared/grpc/grpc-server.ts";
import type { Logger } from "../../shared/logger.ts";
import { pluginRegistrationService } from "../../shared/grpc/proto.ts";
import { oneLine } from "../../shared/provider-api/provider-errors.ts";

/** Longest rejection reason kept from kubelet (its own reasons are one short line). */
const MAX_REASON = 1024;

/** The CSI versions kubelet may speak to us (kubelet needs one with major version 1). */
const SUPPORTED_VERSIONS = ["1.0.0"];

export type RegistrationState =
  | { phase: "waiting for kubelet" }
  | { phase: "registered" }
  | { phase: "rejected"; error: string };

export interface PluginRegistration {
  /** <kubelet-dir>/plugins_registry/<driver name>-reg.sock */
  socketPath: string;
  state(): RegistrationState;
  /** For /healthz: throws when kubelet rejected the driver or the socket is gone. */
  check(): Promise<void>;
  /** Removes the socket (kubelet then deregisters the driver) and stops serving. */
  stop(): Promise<void>;
}

export interface PluginRegistrationOptions {
  kubeletDir: string;
  drivername: string;
  /** The driver's CSI endpoint; kubelet dials its path, so it must be the path on the node. */
  endpoint: string;
}

export function registrationSocketPath(kubeletDir: string, drivername: string): string {
  return join(kubeletDir, "plugins_registry", `${drivername}-reg.sock`);
}

export async function startPluginRegistration(options: PluginRegistrationOptions, logger: Logger): Promise<PluginRegistration> {
  const endpoint = parseEndpoint(options.endpoint);
  if (endpoint.kind !== "unix") throw new Error(`--register-with-kubelet needs a unix:// --endpoint, not ${options.endpoint}`);
  const socketPath = registrationSocketPath(options.kubeletDir, options.drivername);
  const registryDir = join(options.kubeletDir, "plugins_registry");
  // kubelet creates this directory; creating it ourselves would only hide a wrong --kubelet-dir.
  const dirStat = await lstat(registryDir).catch(() => undefined);
  if (!dirStat?.isDirectory()) {
    throw new Error(`--register-with-kubelet: ${registryDir} is not a directory; is --kubelet-dir (${options.kubeletDir}) kubelet's --root-dir?`);
  }

  let state: RegistrationState = { phase: "waiting for kubelet" };
  const log = logger.child({ socket: socketPath });
  const { service } = pluginRegistrationService();
  const implementation: grpc.UntypedServiceImplementation = {
    GetInfo: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      log.info({ endpoint: endpoint.path }, "kubelet asked for the plugin info");
      callback(null, { type: "CSIPlugin", name: options.drivername, endpoint: endpoint.path, supported_versions: SUPPORTED_VERSIONS });
    },
    NotifyRegistrationStatus: (
      call: grpc.ServerUnaryCall<{ plugin_registered: boolean; error: string }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      const { plugin_registered: registered, error } = call.request;
      if (registered) {
        state = { phase: "registered" };
        log.info("registered with kubelet");
      } else {
        // kubelet's reason reaches /healthz and the log: one line, bounded.
        state = { phase: "rejected", error: oneLine(error || "no reason given", MAX_REASON) };
        log.error({ error: state.error }, "kubelet rejected the plugin registration; the driver is unhealthy until kubelet accepts it");
      }
      callback(null, {});
    },
  };
  const server: RunningGrpcServer = await startGrpcServer({ endpoint: `unix://${socketPath}`, socketMode: 0o600 }, (s) => s.addService(service, implementation));
  log.info({ driver: options.drivername }, "serving kubelet's plugin registration API");

  return {
    socketPath,
    state: () => state,
    async check() {
      if (state.phase === "rejected") throw new Error(`kubelet rejected the plugin registration: ${state.error}`);
      const st = await lstat(socketPath).catch(() => undefined);
      if (!st?.isSocket()) throw new Error(`the registration socket ${socketPath} is gone, so kubelet cannot find the driver`);
    },
    stop: () => server.stop(),
  };
}
