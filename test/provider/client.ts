// A provider API client over the unix socket, as the driver calls it.
import * as grpc from "@grpc/grpc-js";
import { providerService } from "../../src/shared/grpc/proto.ts";

export interface MountResponse {
  object_version: Array<{ id: string; version: string }>;
  files: Array<{ path: string; mode: number; contents: Buffer }>;
}

export interface MountArgs {
  attributes: Record<string, string>;
  secrets?: Record<string, string> | null;
  permission?: string;
}

type Client = grpc.Client & {
  Mount(req: unknown, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: MountResponse) => void): void;
  Version(req: unknown, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Record<string, string>) => void): void;
};

export class ProviderClient {
  private readonly client: Client;
  constructor(address: string) {
    const Ctor = providerService();
    this.client = new Ctor(address, grpc.credentials.createInsecure(), { "grpc.default_authority": "localhost" }) as unknown as Client;
  }

  mount(args: MountArgs, timeoutMs = 120_000): Promise<MountResponse> {
    return new Promise((resolve, reject) => {
      this.client.Mount(
        {
          attributes: JSON.stringify(args.attributes),
          secrets: JSON.stringify(args.secrets ?? null),
          target_path: "/var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/v/mount",
          permission: args.permission ?? "420",
          current_object_version: [],
        },
        { deadline: Date.now() + timeoutMs },
        (err, res) => (err ? reject(err) : resolve(res!)),
      );
    });
  }

  /** Resolves with the gRPC error of a failing mount (fails the test if it succeeds). */
  async mountError(args: MountArgs, timeoutMs?: number): Promise<grpc.ServiceError> {
    try {
      await this.mount(args, timeoutMs);
    } catch (err) {
      return err as grpc.ServiceError;
    }
    throw new Error("mount unexpectedly succeeded");
  }

  version(): Promise<Record<string, string>> {
    return new Promise((resolve, reject) => {
      this.client.Version({ version: "v1alpha1" }, { deadline: Date.now() + 5000 }, (err, res) => (err ? reject(err) : resolve(res!)));
    });
  }

  close(): void {
    this.client.close();
  }
}

/** `objects` YAML in the usual SecretProviderClass form. */
export function objectsYaml(items: Array<Record<string, string | number>>): string {
  const lines = ["array:"];
  for (const item of items) {
    lines.push("  - |");
    for (const [k, v] of Object.entries(item)) lines.push(`    ${k}: ${typeof v === "number" ? String(v) : JSON.stringify(v)}`);
  }
  return lines.join("\n") + "\n";
}

/** A service-account JWT-shaped token (unsigned; the emulator checks what it checks). */
export function serviceAccountToken(namespace: string, name: string, extra: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${enc({ alg: "RS256", kid: "test" })}.${enc({
    aud: ["api://AzureADTokenExchange"],
    iss: "https://kubernetes.default.svc.cluster.local",
    sub: `system:serviceaccount:${namespace}:${name}`,
    iat: now,
    nbf: now,
    exp: now + 3600,
    ...extra,
  })}.${Buffer.from("signature").toString("base64url")}`;
}

export function tokensAttribute(token: string): string {
  return JSON.stringify({ "api://AzureADTokenExchange": { token, expirationTimestamp: new Date(Date.now() + 3600_000).toISOString() } });
}
