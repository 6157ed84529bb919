// The Azure SDK's Key Vault clients of one identity and one vault, kept so a
// mount does not answer a new authentication challenge each time. The vault
// name is the SecretProviderClass's choice (made-up names included), so the
// clients live in one bounded cache for the whole provider
// (--max-cached-vaults identity/vault pairs, least recently used dropped
// first, and any unused for --identity-idle-timeout), and each of the three
// clients of a pair is made only when an object of its type is read: a class
// of secrets costs one client, not three.
import type { TokenCredential } from "@azure/core-auth";
import type { CertificateClient } from "@azure/keyvault-certificates";
import type { KeyClient } from "@azure/keyvault-keys";
import type { SecretClient } from "@azure/keyvault-secrets";
import type { HttpClient, Pipeline, PipelinePolicy } from "@azure/core-rest-pipeline";
import { LruCache } from "../../shared/lru.ts";
import type { AzureSdk } from "./azure-sdk.ts";
import type { ObjectType } from "../objects/objects.ts";

/** The first request of a fresh client goes alone (it answers the challenge); the others wait for it. */
export interface Gate {
  open: boolean;
  pending: Promise<void> | undefined;
}

export interface ClientOptions {
  retryOptions: { maxRetries: number };
  additionalPolicies: Array<{ policy: PipelinePolicy; position: "perCall" | "perRetry" }>;
  userAgentOptions: { userAgentPrefix: string };
  httpClient: HttpClient;
}

/** The clients of one identity and vault, each made on first use. */
export class VaultClients {
  /** The credential the clients were made with: an identity cached anew gets new clients. */
  readonly credential: TokenCredential;
  readonly gates: Record<ObjectType, Gate> = { secret: newGate(), key: newGate(), cert: newGate() };
  private readonly sdk: AzureSdk;
  private readonly url: string;
  private readonly options: ClientOptions;
  private secretClient: SecretClient | undefined;
  private keyClient: KeyClient | undefined;
  private certificateClient: CertificateClient | undefined;

  constructor(sdk: AzureSdk, url: string, credential: TokenCredential, options: ClientOptions) {
    this.sdk = sdk;
    this.url = url;
    this.credential = credential;
    this.options = options;
  }

  get secrets(): SecretClient {
    return (this.secretClient ??= withoutTracingPolicy(new this.sdk.SecretClient(this.url, this.credential, this.options)));
  }

  get keys(): KeyClient {
    return (this.keyClient ??= withoutTracingPolicy(new this.sdk.KeyClient(this.url, this.credential, this.options)));
  }

  get certificates(): CertificateClient {
    return (this.certificateClient ??= withoutTracingPolicy(new this.sdk.CertificateClient(this.url, this.credential, this.options)));
  }
}

/** What the Key Vault clients keep their generated client's pipeline in (they change its policies there themselves). */
interface WithPipeline {
  client?: { pipeline?: Pipeline };
}

/**
 * Takes the SDK's tracing policy out of a client's pipeline. The provider
 * registers no tracer, so every span it starts is one nobody records, but
 * the policy still parses and sanitizes each request's URL for the span's
 * attributes first: 3-4% of a new identity's Mount (docs/performance.md).
 * The clients make their pipeline in the constructor and change it there
 * (they swap the bearer-token policy for Key Vault's); this removes one more
 * policy the same way. Were the pipeline not found (another SDK version),
 * the client keeps it, and vault-clients.test.ts says so.
 */
export function withoutTracingPolicy<T extends object>(client: T): T {
  (client as WithPipeline).client?.pipeline?.removePolicy({ name: TRACING_POLICY });
  return client;
}

/** The name @azure/core-rest-pipeline gives its tracing policy (tracingPolicyName). */
export const TRACING_POLICY = "tracingPolicy";

function newGate(): Gate {
  return { open: false, pending: undefined };
}

export interface VaultClientCacheOptions {
  /** Identity/vault pairs kept at most (--max-cached-vaults). */
  maxEntries: number;
  /** A pair unused for this long is dropped (--identity-idle-timeout). */
  idleMs: number;
  /** Told the number of cached pairs after each change, for the cached_vault_clients gauge. */
  onSize?: (size: number) => void;
}

/** The bounded cache of VaultClients, keyed by identity and vault URL. */
export class VaultClientCache {
  private readonly cache: LruCache<string, VaultClients>;
  private readonly onSize: ((size: number) => void) | undefined;

  constructor(options: VaultClientCacheOptions) {
    this.onSize = options.onSize;
    this.cache = new LruCache({ maxEntries: options.maxEntries, idleMs: options.idleMs, onEvict: () => this.onSize?.(this.cache.size) });
  }

  get size(): number {
    return this.cache.size;
  }

  /** The pair's clients; made (without any request yet) when missing or made for an earlier credential of the identity. */
  get(identityKey: string, url: string, credential: TokenCredential, create: () => VaultClients): VaultClients {
    const key = `${identityKey}\n${url}`;
    const found = this.cache.get(key);
    if (found && found.credential === credential) return found;
    const made = create();
    this.cache.set(key, made);
    this.onSize?.(this.cache.size);
    return made;
  }
}
