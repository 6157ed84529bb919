// Talks to secrets providers over the v1alpha1 provider API. A provider named
// "azure" is found as azure.sock in the provider directories (additional paths
// first, as upstream searches). One gRPC client per socket is kept and reused.
// The providers whose socket was seen are the node's installed providers: the
// only provider names that may become a metric label.
import { statSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../logger.ts";
import { providerService } from "../grpc/proto.ts";
import { ErrorType, OperationError as DriverError } from "./errors.ts";
import { assertSafeFilePaths } from "./file-paths.ts";
import { errorTypeOfProviderCode, oneLine } from "./provider-errors.ts";
import type { ObjectVersion, SecretProviderClass } from "../kube/kube-types.ts";

export const PROVIDER_API_VERSION = "v1alpha1";
const PROVIDER_NAME = /^[a-zA-Z0-9_-]{1,30}$/;

/** A SecretProviderClass's spec.provider names the socket <name>.sock: refuses names that cannot. */
export function checkProviderName(provider: string): void {
  if (!PROVIDER_NAME.test(provider)) {
    throw new DriverError(grpc.status.INVALID_ARGUMENT, ErrorType.ProviderNotFound, `invalid provider name "${oneLine(provider, 64)}": it must match [a-zA-Z0-9_-]{1,30}`);
  }
}
/** The provider a SecretProviderClass names, after checking the parts a provider call needs. */
export function providerOf(spc: SecretProviderClass): string {
  const ref = `${spc.metadata.namespace}/${spc.metadata.name}`;
  const provider = spc.spec?.provider?.trim();
  if (!provider) throw new DriverError(grpc.status.INVALID_ARGUMENT, ErrorType.FailedToMount, `provider not set in ${ref}`);
  if (!spc.spec.parameters || Object.keys(spc.spec.parameters).length === 0) {
    throw new DriverError(grpc.status.INVALID_ARGUMENT, ErrorType.FailedToMount, `parameters not set in ${ref}`);
  }
  return provider;
}

const LARGE_RESPONSE_BYTES = 1024 * 1024;

export interface MountRequest {
  attributes: string;
  secrets: string;
  target_path: string;
  permission: string;
  current_object_version: ObjectVersion[];
}

/** A file of a provider's answer, validated (relative clean path, mode 0-0777). */
export interface ProviderFile {
  path: string;
  mode: number;
  contents: Buffer;
}

export interface MountResult {
  objectVersions: ObjectVersion[];
  /** Empty when the provider wrote the files itself (legacy providers). */
  files: ProviderFile[];
}

interface WireMountResponse {
  object_version?: ObjectVersion[];
  error?: { code?: string } | null;
  files?: Array<{ path: string; mode: number; contents: Buffer }>;
}

interface WireVersionResponse {
  version: string;
  runtime_name: string;
  runtime_version: string;
}

type UnaryCall<Req, Res> = (req: Req, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => void;

export class ProviderClient {
  readonly provider: string;
  readonly socketPath: string;
  private readonly client: grpc.Client;
  private versionChecked: Promise<void> | undefined;
  private readonly logger: Logger;
  private readonly maxRecvMsgSize: number;

  constructor(provider: string, socketPath: string, maxRecvMsgSize: number, logger: Logger) {
    this.provider = provider;
    this.socketPath = socketPath;
    this.logger = logger;
    this.maxRecvMsgSize = maxRecvMsgSize;
    const Ctor = providerService();
    this.client = new Ctor(`unix:${socketPath}`, grpc.credentials.createInsecure(), {
      // Providers such as upstream's e2e provider reject any other :authority.
      "grpc.default_authority": "localhost",
      "grpc.max_receive_message_length": maxRecvMsgSize,
      // No channelz: nothing reads it, and its bookkeeping is work on every call.
      "grpc.enable_channelz": 0,
    });
  }

  private call<Req, Res>(method: "Version" | "Mount", request: Req, deadline: Date): Promise<Res> {
    const fn = (this.client as unknown as Record<string, UnaryCall<Req, Res>>)[method]!.bind(this.client);
    return new Promise<Res>((resolve, reject) =>
      fn(request, new grpc.Metadata(), { deadline }, (err, res) => (err ? reject(err) : resolve(res as Res))),
    );
  }

  async version(deadline: Date): Promise<WireVersionResponse> {
    return this.call<{ version: string }, WireVersionResponse>("Version", { version: PROVIDER_API_VERSION }, deadline);
  }

  /**
   * Checks once per client that the provider speaks v1alpha1; a provider that
   * does not implement Version at all is accepted, as upstream never asks.
   */
  private ensureVersion(deadline: Date): Promise<void> {
    this.versionChecked ??= this.version(deadline).then(
      (res) => {
        if (res.version && res.version !== PROVIDER_API_VERSION) {
          throw new DriverError(
            grpc.status.FAILED_PRECONDITION,
            ErrorType.GRPCProviderError,
            `provider "${this.provider}" speaks provider API ${res.version}, this driver speaks ${PROVIDER_API_VERSION}`,
          );
        }
        this.logger.info({ provider: this.provider, runtimeName: res.runtime_name, runtimeVersion: res.runtime_version }, "provider version checked");
      },
      (err: grpc.ServiceError) => {
        if (err.code === grpc.status.UNIMPLEMENTED) return;
        throw err;
      },
    );
    return this.versionChecked.catch((err: unknown) => {
      this.versionChecked = undefined;
      throw err;
    });
  }

  /** Calls Mount and validates the answer before anything is written. */
  async mount(request: MountRequest, deadline: Date): Promise<MountResult> {
    let response: WireMountResponse;
    try {
      await this.ensureVersion(deadline);
      response = await this.call<MountRequest, WireMountResponse>("Mount", request, deadline);
    } catch (err) {
      throw this.translate(err, deadline, request);
    }
    if (response.error?.code) {
      const code = response.error.code;
      throw new DriverError(grpc.status.UNKNOWN, errorTypeOfProviderCode(code), `mount request failed with provider error code ${oneLine(code, 128)}`);
    }
    const objectVersions = (response.object_version ?? []).map((v) => ({ id: v.id, version: v.version }));
    if (objectVersions.length === 0) {
      throw new DriverError(
        grpc.status.FAILED_PRECONDITION,
        ErrorType.GRPCProviderError,
        `provider "${this.provider}" returned no object versions (missing object versions); check that the SecretProviderClass lists at least one object`,
      );
    }
    const files = (response.files ?? []).map((f) => ({ path: f.path, mode: f.mode, contents: Buffer.from(f.contents ?? []) }));
    try {
      assertSafeFilePaths(files.map((f) => f.path));
    } catch (err) {
      throw new DriverError(grpc.status.FAILED_PRECONDITION, ErrorType.FileWriteError, `provider "${this.provider}": ${(err as Error).message}`);
    }
    for (const f of files) {
      if (!Number.isInteger(f.mode) || f.mode < 0 || f.mode > 0o777) {
        throw new DriverError(
          grpc.status.FAILED_PRECONDITION,
          ErrorType.FileWriteError,
          `provider "${this.provider}": file "${f.path}" has invalid mode ${f.mode} (expected 0-511)`,
        );
      }
    }
    const size = files.reduce((n, f) => n + f.contents.length, 0);
    if (size > LARGE_RESPONSE_BYTES) {
      this.logger.info({ provider: this.provider, bytes: size }, "provider response above 1MiB, secret sync may fail");
    }
    return { objectVersions, files };
  }

  private translate(err: unknown, deadline: Date, request?: MountRequest): Error {
    if (err instanceof DriverError) return err;
    const e = err as grpc.ServiceError;
    const details = oneLine(e.details ?? e.message ?? "");
    if (e.code === grpc.status.DEADLINE_EXCEEDED) {
      return new DriverError(
        grpc.status.DEADLINE_EXCEEDED,
        ErrorType.GRPCProviderError,
        `provider "${this.provider}" did not answer before the deadline (${deadline.toISOString()})`,
      );
    }
    if (e.code === grpc.status.RESOURCE_EXHAUSTED && /message larger than max/i.test(details)) return this.tooLarge(details, request);
    if (e.code === grpc.status.UNAVAILABLE && /ECONNREFUSED|ENOENT/.test(details)) {
      return new DriverError(
        grpc.status.UNAVAILABLE,
        ErrorType.GRPCProviderError,
        `provider "${this.provider}" is not running on this node: nothing accepts connections on ${this.socketPath}; ` +
          `check the ${this.provider} provider's pod on this node (${details})`,
      );
    }
    if (e.code === grpc.status.UNAVAILABLE && /No connection established/i.test(details)) {
      // Something listens (the connection was accepted) but closed it, or
      // answered other than HTTP/2, before gRPC could start.
      return new DriverError(
        grpc.status.UNAVAILABLE,
        ErrorType.GRPCProviderError,
        `provider "${this.provider}" did not answer: a process accepts connections on ${this.socketPath} but closes them ` +
          `(or answers something other than gRPC) before any call can be made; check the ${this.provider} provider's pod on this node (${details})`,
      );
    }
    const code = typeof e.code === "number" ? e.code : grpc.status.UNKNOWN;
    return new DriverError(code, ErrorType.GRPCProviderError, `provider "${this.provider}": ${details}`);
  }

  /**
   * A message over a size limit. gRPC words it the same whichever side
   * refused it ("larger than max (X vs Y)"), so the sizes tell: X the size of
   * our request is the provider refusing the request (the driver's
   * --max-call-recv-msg-size cannot help, whatever Y is); otherwise Y our own
   * limit is an answer too large for the driver.
   */
  private tooLarge(details: string, request: MountRequest | undefined): DriverError {
    const sizes = /\((\d+) vs\.? (\d+)\)/.exec(details);
    const size = sizes ? Number(sizes[1]) : undefined;
    const limit = sizes ? Number(sizes[2]) : undefined;
    if (/sent message|send message/i.test(details)) {
      return new DriverError(
        grpc.status.RESOURCE_EXHAUSTED,
        ErrorType.GRPCProviderError,
        `provider "${this.provider}" could not send its answer, which is above its own message size limit: ${details}`,
      );
    }
    const requestBytes = request ? providerService().service.Mount!.requestSerialize(request).length : undefined;
    if (size !== undefined && size === requestBytes) {
      return new DriverError(
        grpc.status.INVALID_ARGUMENT,
        ErrorType.GRPCProviderError,
        `provider "${this.provider}" refused the Mount request: it is ${size} bytes, more than the ${limit} bytes the provider accepts; ` +
          "the SecretProviderClass parameters and the nodePublishSecretRef Secret are too large (the driver's --max-call-recv-msg-size limits answers, not requests)",
      );
    }
    if (limit === this.maxRecvMsgSize) {
      return new DriverError(
        grpc.status.RESOURCE_EXHAUSTED,
        ErrorType.GRPCProviderError,
        `provider "${this.provider}" response is too large: ${details}; raise --max-call-recv-msg-size`,
      );
    }
    return new DriverError(grpc.status.RESOURCE_EXHAUSTED, ErrorType.GRPCProviderError, `provider "${this.provider}": ${details}`);
  }

  close(): void {
    this.client.close();
  }
}

/** At most this many provider names are known as installed (a node runs a handful of providers). */
export const MAX_INSTALLED_PROVIDERS = 16;

export class ProviderClients {
  private readonly dirs: string[];
  private readonly maxRecvMsgSize: number;
  private readonly logger: Logger;
  private readonly clients = new Map<string, ProviderClient>();
  /** Providers whose socket was seen in a provider directory. */
  private readonly installed = new Set<string>();

  /** dirs: the additional provider paths first, then --provider-volume. */
  constructor(dirs: string[], maxRecvMsgSize: number, logger: Logger) {
    this.dirs = dirs;
    this.maxRecvMsgSize = maxRecvMsgSize;
    this.logger = logger;
  }

  async get(provider: string): Promise<ProviderClient> {
    checkProviderName(provider);
    const socketPath = this.findSocket(provider);
    const key = `${provider}\0${socketPath}`;
    let client = this.clients.get(key);
    if (!client) {
      client = new ProviderClient(provider, socketPath, this.maxRecvMsgSize, this.logger);
      this.clients.set(key, client);
    }
    return client;
  }

  /**
   * Whether the provider is installed on this node: its socket <name>.sock
   * is, or was, in a provider directory. Only root on the node puts sockets
   * there, so a tenant's made-up name never counts; at most
   * MAX_INSTALLED_PROVIDERS names are ever learned.
   */
  isInstalled(provider: string): boolean {
    if (this.installed.has(provider)) return true;
    if (!PROVIDER_NAME.test(provider)) return false;
    for (const dir of this.dirs) {
      try {
        if (statSync(join(dir, `${provider}.sock`)).isSocket()) return this.learn(provider);
      } catch {
        // not in this directory
      }
    }
    return false;
  }

  private learn(provider: string): boolean {
    if (this.installed.size >= MAX_INSTALLED_PROVIDERS) return false;
    this.installed.add(provider);
    return true;
  }

  /**
   * Where the provider's socket is now (a provider restarting may move it).
   * A synchronous stat: a microsecond call on the node's own directory, where
   * through the thread pool each publish waited 1-2 ms on a busy node for a
   * pool thread to be scheduled, before its provider call could start.
   */
  private findSocket(provider: string): string {
    for (const dir of this.dirs) {
      const path = join(dir, `${provider}.sock`);
      try {
        if (statSync(path).isSocket()) {
          this.learn(provider);
          return path;
        }
      } catch {
        // not in this directory
      }
    }
    throw new DriverError(
      grpc.status.UNAVAILABLE,
      ErrorType.ProviderNotFound,
      `provider not found: provider "${provider}": no socket ${provider}.sock in ${this.dirs.join(", ")}; is the ${provider} provider installed and running on this node?`,
    );
  }

  /** The --provider-health-check: Version on every client in use; logs only. */
  async healthCheck(): Promise<void> {
    await Promise.all(
      [...this.clients.values()].map(async (client) => {
        try {
          const res = await client.version(new Date(Date.now() + 5000));
          this.logger.debug({ provider: client.provider, runtimeVersion: res.runtime_version }, "provider healthcheck successful");
        } catch (err) {
          this.logger.error({ provider: client.provider, error: (err as grpc.ServiceError).details ?? String(err) }, "provider healthcheck failed");
        }
      }),
    );
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
