// The HTTPS connections to Key Vault and Entra ID: one keep-alive agent for
// every vault, as the SDK's own default, but bounded. A vault's host is the tenant's choice
// (`keyvaultName`), and each idle TLS connection holds OpenSSL's buffers, so
// the SDK's agent (idle connections kept until the server closes them, one per
// host, hosts without limit) let a tenant naming 2,000 vaults keep 2,000
// connections open. Here at most MAX_IDLE_SOCKETS connections stay idle in all
// (the oldest host's goes first, as Go's http.Transport does with its
// MaxIdleConns) and none longer than IDLE_SOCKET_MS. And at most
// MAX_SOCKETS_PER_HOST are open to one host at once: without that bound the
// agent opened a connection for each request in flight, and a node booting
// with a hundred identities at once sent its Key Vault and Entra ID requests
// over hundreds of new TLS connections whose handshakes took most of the
// provider's CPU (bench/trace.ts --boot=110 --boot-identities); requests
// beyond it wait for a connection of the pool (token requests first take
// turns by namespace, auth/token-gate.ts). A proxy the SDK was told to use
// (HTTPS_PROXY) keeps its own agent.
import { Agent, type AgentOptions } from "node:https";
import type { Socket } from "node:net";
import type { PipelinePolicy } from "@azure/core-rest-pipeline";

/** Idle connections kept in all (Go's default MaxIdleConns is 100). */
export const MAX_IDLE_SOCKETS = 64;
/** An idle connection is closed after this long. */
export const IDLE_SOCKET_MS = 30_000;
/** Connections open to one host at once: above a mount's 10 reads at a time, far below a burst's. */
export const MAX_SOCKETS_PER_HOST = 16;

class BoundedAgent extends Agent {
  /** Called by Node when a socket goes idle; true keeps it. */
  override keepSocketAlive(socket: Socket): boolean {
    // Node's returns whether to keep the socket; its types say void
    if ((super.keepSocketAlive(socket) as unknown) === false) return false;
    let idle = 0;
    for (const sockets of Object.values(this.freeSockets)) idle += sockets?.length ?? 0;
    // `socket` is not in freeSockets yet: make room for it
    for (const sockets of Object.values(this.freeSockets)) {
      if (idle < MAX_IDLE_SOCKETS) break;
      // a destroyed socket stays listed until it has closed
      const oldest = sockets?.find((s) => !s.destroyed);
      if (!oldest) continue;
      oldest.destroy();
      idle--;
    }
    return true;
  }
}

let agent: Agent | undefined;

/** An agent with these bounds; `tls` adds TLS options (a test's own CA). */
export function boundedAgent(tls: Pick<AgentOptions, "ca"> = {}): Agent {
  return new BoundedAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS, scheduling: "lifo", maxSockets: MAX_SOCKETS_PER_HOST, ...tls });
}

/** The agent of every Key Vault and Entra ID request. */
export function vaultAgent(): Agent {
  return (agent ??= boundedAgent());
}

/** A pipeline policy that sends a request through vaultAgent() unless a proxy set its own. */
export const vaultAgentPolicy: PipelinePolicy = {
  name: "sscsiVaultAgent",
  sendRequest(request, next) {
    request.agent ??= vaultAgent();
    return next(request);
  },
};
