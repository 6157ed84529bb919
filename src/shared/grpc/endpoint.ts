// Listen addresses in the upstream form: unix://<path> or tcp://<host:port>.

export type Endpoint = { kind: "unix"; path: string } | { kind: "tcp"; address: string };

/**
 * Parses an endpoint. As upstream does on Linux, the part after "unix://" is
 * made absolute, so unix://tmp/csi.sock and unix:///tmp/csi.sock both mean
 * /tmp/csi.sock.
 */
export function parseEndpoint(endpoint: string): Endpoint {
  const lower = endpoint.toLowerCase();
  if (lower.startsWith("unix://")) {
    const rest = endpoint.slice("unix://".length);
    if (rest === "") throw new Error(`invalid endpoint: ${endpoint}`);
    return { kind: "unix", path: "/" + rest.replace(/^\/+/, "") };
  }
  if (lower.startsWith("tcp://")) {
    const address = endpoint.slice("tcp://".length);
    if (address === "") throw new Error(`invalid endpoint: ${endpoint}`);
    return { kind: "tcp", address };
  }
  throw new Error(`invalid endpoint: ${endpoint}`);
}

/** Parses a "[host]:port" listen address such as ":8095" for HTTP servers. */
export function parseListenAddress(address: string): { host: string | undefined; port: number } {
  const idx = address.lastIndexOf(":");
  if (idx < 0) throw new Error(`invalid listen address "${address}": expected [host]:port`);
  const host = address.slice(0, idx).replace(/^\[|\]$/g, "");
  const port = Number(address.slice(idx + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid listen address "${address}": bad port`);
  return { host: host === "" ? undefined : host, port };
}
