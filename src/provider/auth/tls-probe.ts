// MSAL reports any failure to reach Entra ID as a bare "network_error" and
// drops the cause, so an untrusted certificate looks like an outage and would
// be retried until the deadline. After such an error one TLS handshake with
// the authority host (the same trust store: system CAs plus
// NODE_EXTRA_CA_CERTS) tells whether the certificate is the problem.
import { connect } from "node:tls";
import { tlsTrustError, type ProviderError } from "../errors.ts";

const PROBE_TIMEOUT_MS = 3000;

/** True for MSAL's cause-less network failure. */
export function isMsalNetworkError(err: unknown): boolean {
  const e = err as { errorCode?: unknown; message?: unknown; cause?: { errorCode?: unknown } };
  return e?.errorCode === "network_error" || e?.cause?.errorCode === "network_error" || (typeof e?.message === "string" && e.message.startsWith("network_error"));
}

/** The TLS trust problem of `url`'s host, or undefined when the handshake succeeds or fails otherwise. */
export function probeTlsTrust(url: string): Promise<ProviderError | undefined> {
  let host: string;
  let port: number;
  try {
    const parsed = new URL(url);
    host = parsed.hostname;
    port = Number(parsed.port || 443);
  } catch {
    return Promise.resolve(undefined);
  }
  return new Promise((resolve) => {
    const socket = connect({ host, port, servername: host, timeout: PROBE_TIMEOUT_MS });
    const done = (result: ProviderError | undefined) => {
      socket.destroy();
      resolve(result);
    };
    socket.once("secureConnect", () => done(undefined));
    socket.once("timeout", () => done(undefined));
    socket.once("error", (err) => done(tlsTrustError(err, port === 443 ? host : `${host}:${port}`)));
  });
}
