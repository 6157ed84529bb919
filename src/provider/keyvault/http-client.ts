// The one HTTP client of the provider's Key Vault clients and credentials: the
// SDK's own, with a pool of kept-alive connections shared by every identity and
// bounded per host. Without the bound, the SDK's pool opens a connection for
// each request in flight: a node booting with a hundred identities at once
// sent its Key Vault and Entra ID requests over hundreds of new TLS
// connections, and their handshakes took most of the provider's CPU
// (bench/trace.ts --boot=110 --boot-identities). Requests beyond the bound wait
// for a connection of the pool, as upstream's Go client lets idle ones be reused.
import { Agent } from "node:https";
import type { HttpClient, PipelineRequest } from "@azure/core-rest-pipeline";

/** Connections per host (vault, Entra ID): above a mount's 10 reads at once, far below a burst's. */
export const MAX_CONNECTIONS_PER_HOST = 16;

export function sharedHttpClient(inner: HttpClient, agent = new Agent({ keepAlive: true, maxSockets: MAX_CONNECTIONS_PER_HOST, maxFreeSockets: MAX_CONNECTIONS_PER_HOST })): HttpClient {
  return {
    sendRequest(request: PipelineRequest) {
      // A proxy's agent (the SDK's proxyPolicy) or TLS settings of a request keep theirs.
      if (request.agent === undefined && request.tlsSettings === undefined && request.url.startsWith("https:")) request.agent = agent;
      return inner.sendRequest(request);
    },
  };
}
