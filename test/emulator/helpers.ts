// Shared setup for the emulator tests: the DNS hook (so real vault host names
// reach the emulator), SDK options that trust the emulator's CA, credentials
// pointed at the emulated Entra ID, and an HTTP client wrapper that records
// what the unmodified SDK sends and receives on the wire.
import "../../src/emulator/dns-hook.ts";
import { ClientSecretCredential } from "@azure/identity";
import { createDefaultHttpClient, type HttpClient, type PipelineRequest, type PipelineResponse } from "@azure/core-rest-pipeline";
import type { Emulator } from "../../src/emulator/index.ts";

export const APP_OFFICER = { name: "officer", clientId: "0f6b0f2a-1111-4c1e-9c1e-000000000001", secret: "officer-secret" };
export const APP_READER = { name: "reader", clientId: "0f6b0f2a-1111-4c1e-9c1e-000000000002", secret: "reader-secret" };

/** Client options for Key Vault clients: trust the emulator CA, optionally few retries. */
export function clientOptions(emulator: Emulator, extra: { maxRetries?: number; httpClient?: HttpClient } = {}) {
  return {
    tlsOptions: { ca: emulator.caCertPem },
    retryOptions: extra.maxRetries !== undefined ? { maxRetries: extra.maxRetries, retryDelayInMs: 100 } : undefined,
    httpClient: extra.httpClient,
  };
}

export function secretCredential(emulator: Emulator, app: { clientId: string; secret: string }, tenantId = emulator.tenantId): ClientSecretCredential {
  return new ClientSecretCredential(tenantId, app.clientId, app.secret, {
    authorityHost: emulator.authorityHost,
    disableInstanceDiscovery: true,
    tlsOptions: { ca: emulator.caCertPem },
  });
}

export interface WireExchange {
  method: string;
  url: string;
  authorization: boolean;
  status: number;
  headers: Record<string, string>;
}

/** The SDK's own HTTP client, recording each request/response pair. */
export function recordingHttpClient(): { httpClient: HttpClient; exchanges: WireExchange[] } {
  const inner = createDefaultHttpClient();
  const exchanges: WireExchange[] = [];
  const httpClient: HttpClient = {
    async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
      const response = await inner.sendRequest(request);
      exchanges.push({
        method: request.method,
        url: request.url,
        authorization: request.headers.has("authorization"),
        status: response.status,
        headers: response.headers.toJSON(),
      });
      return response;
    },
  };
  return { httpClient, exchanges };
}

/** Polls until `check` passes or the time is up. */
export async function eventually(check: () => void, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
