// How many HTTPS connections the provider keeps to Key Vault and Entra ID
// (vault-http-client.ts holds them). A vault's host is the tenant's choice
// (`keyvaultName`), and each idle TLS connection holds OpenSSL's buffers, so
// an unbounded pool let a tenant naming 2,000 vaults keep 2,000 connections
// open: at most MAX_IDLE_SOCKETS stay idle in all (the oldest goes first, as
// Go's http.Transport does with its MaxIdleConns) and none longer than
// IDLE_SOCKET_MS. And at most MAX_SOCKETS_PER_HOST are open to one host at
// once: without that bound a node booting with a hundred identities at once
// sent its requests over hundreds of new TLS connections whose handshakes
// took most of the provider's CPU (bench/trace.ts --boot=110
// --boot-identities); requests beyond it wait for a connection of the pool
// (token requests first take turns by namespace, auth/token-gate.ts).
// A module of its own, without the SDK, so start-up code can read it.

/** Idle connections kept in all (Go's default MaxIdleConns is 100). */
export const MAX_IDLE_SOCKETS = 64;
/** An idle connection is closed after this long. */
export const IDLE_SOCKET_MS = 30_000;
/** Connections open to one host at once: above a mount's 10 reads at a time, far below a burst's. */
export const MAX_SOCKETS_PER_HOST = 16;
