// The HTTPS connections to Key Vault: one keep-alive agent for every vault,
// as the SDK's own default, but bounded. A vault's host is the tenant's choice
// (`keyvaultName`), and each idle TLS connection holds OpenSSL's buffers, so
// the SDK's agent (idle connections kept until the server closes them, one per
// host, hosts without limit) let a tenant naming 2,000 vaults keep 2,000
// connections open. Here at most MAX_IDLE_SOCKETS connections stay idle in all
// (the oldest host's goes first, as Go's http.Transport does with its
// MaxIdleConns) and none longer than IDLE_SOCKET_MS. A proxy the SDK was told
// to use (HTTPS_PROXY) keeps its own agent.
import { Agent } from "node:https";
import type { Socket } from "node:net";
import type { PipelinePolicy } from "@azure/core-rest-pipeline";

/** Idle connections kept in all (Go's default MaxIdleConns is 100). */
export const MAX_IDLE_SOCKETS = 64;
/** An idle connection is closed after this long. */
export const IDLE_SOCKET_MS = 30_000;

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

let agent: BoundedAgent | undefined;

/** The agent of every Key Vault request. */
export function vaultAgent(): Agent {
  return (agent ??= new BoundedAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS, scheduling: "lifo" }));
}

/** A pipeline policy that sends a request through vaultAgent() unless a proxy set its own. */
export const vaultAgentPolicy: PipelinePolicy = {
  name: "sscsiVaultAgent",
  sendRequest(request, next) {
    request.agent ??= vaultAgent();
    return next(request);
  },
};
