// The token proxy's TLS server name when --sni-name is not set, derived as
// upstream's provider does: one TLS handshake with the API server at
// kubernetes.default.svc.cluster.local:$KUBERNETES_SERVICE_PORT that trusts
// only the cluster CA, then the cluster id in the hcp-kubernetes.<id> name of
// the certificate it presents (an AKS API server has one; others do not).
import { readFile } from "node:fs/promises";
import { connect } from "node:tls";
import { status } from "@grpc/grpc-js";
import { API_SERVER_HOST, clusterIdFromNames, tokenProxyServerName } from "../../shared/identity-binding.ts";
import { TokenProxyError } from "./token-proxy-error.ts";

const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface ApiServerAddress {
  host: string;
  port: number;
}

/** Where upstream reads the API server's certificate: the in-cluster name on the port the pod's environment names. */
export function apiServerAddress(env: NodeJS.ProcessEnv = process.env): ApiServerAddress {
  const port = Number(env.KUBERNETES_SERVICE_PORT);
  return { host: API_SERVER_HOST, port: Number.isInteger(port) && port > 0 && port <= 65535 ? port : 443 };
}

const SET_SNI_NAME = "set --sni-name to the token proxy's server name";

/** The DNS names of a certificate's subjectaltname ("DNS:a, IP Address:1.2.3.4, DNS:b"). */
export function dnsNamesOf(subjectAltName: string | undefined): string[] {
  return (subjectAltName ?? "")
    .split(/,\s*/)
    .filter((entry) => entry.startsWith("DNS:"))
    .map((entry) => entry.slice(4).toLowerCase());
}

/**
 * The server name derived from the API server's certificate. Fails with a
 * TokenProxyError that says to set --sni-name: Unavailable when the API
 * server cannot be reached (a retry may work), InvalidArgument otherwise.
 */
export async function deriveServerName(caFile: string, apiServer: ApiServerAddress, signal?: AbortSignal): Promise<string> {
  const where = `${apiServer.host}:${apiServer.port}`;
  const cannot = `cannot derive the token proxy's server name from the API server's certificate (${where})`;
  let ca: Buffer;
  try {
    ca = await readFile(caFile);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new TokenProxyError(status.INVALID_ARGUMENT, "InvalidArgument", `${cannot}: cannot read the cluster CA ${caFile} (${code}); ${SET_SNI_NAME}, or mount the cluster CA there (--token-proxy-ca-file)`);
  }
  const names = await new Promise<string[]>((resolve, reject) => {
    const socket = connect({ host: apiServer.host, port: apiServer.port, servername: apiServer.host, ca, minVersion: "TLSv1.2", timeout: HANDSHAKE_TIMEOUT_MS });
    const onAbort = () => socket.destroy(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
    signal?.addEventListener("abort", onAbort, { once: true });
    const settle = (result: () => void) => {
      signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      result();
    };
    socket.once("secureConnect", () => {
      const names = dnsNamesOf(socket.getPeerCertificate().subjectaltname);
      settle(() => resolve(names));
    });
    socket.once("timeout", () => settle(() => reject(Object.assign(new Error(`no TLS handshake within ${HANDSHAKE_TIMEOUT_MS / 1000}s`), { code: "ETIMEDOUT" }))));
    socket.once("error", (err) => settle(() => reject(err)));
  }).catch((err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    if (e.name === "AbortError" || e.name === "TimeoutError") throw err;
    const detail = (e.message ?? String(err)).split("\n")[0];
    if (isNetworkCode(e.code)) throw new TokenProxyError(status.UNAVAILABLE, "NetworkError", `${cannot}: the API server is unreachable: ${detail}; ${SET_SNI_NAME} to skip this`);
    throw new TokenProxyError(status.INVALID_ARGUMENT, "InvalidArgument", `${cannot}: ${detail}; ${SET_SNI_NAME}`);
  });
  const clusterId = clusterIdFromNames(names);
  if (!clusterId) {
    throw new TokenProxyError(
      status.INVALID_ARGUMENT,
      "InvalidArgument",
      `${cannot}: it has no name hcp-kubernetes.<cluster id>.svc.cluster.local (not an AKS cluster?); ${SET_SNI_NAME}`,
    );
  }
  return tokenProxyServerName(clusterId);
}

const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EPIPE", "ECONNABORTED"]);

/** Errors a retry may get past: the peer could not be reached or went away. */
export function isNetworkCode(code: string | undefined): boolean {
  return code !== undefined && NETWORK_CODES.has(code);
}
