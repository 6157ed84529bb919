// AKS identity binding: the names the provider (which asks the cluster's token
// proxy) and the emulator (which plays that proxy) must agree on. A pod's
// service-account token for IDENTITY_BINDING_AUDIENCE goes to the token proxy,
// a TLS endpoint behind the API server's address that answers only for a
// server name derived from the cluster's id; the id is in a name of the API
// server's serving certificate, hcp-kubernetes.<id>.svc.cluster.local.
import { createHash } from "node:crypto";

/** The audience of the service-account token the token proxy accepts. */
export const IDENTITY_BINDING_AUDIENCE = "api://AKSIdentityBinding";

/** The API server's in-cluster name: where the token proxy is by default, and whose certificate names the cluster. */
export const API_SERVER_HOST = "kubernetes.default.svc.cluster.local";

const CLUSTER_NAME_PREFIX = "hcp-kubernetes.";
const CLUSTER_NAME_SUFFIX = ".svc.cluster.local";
const SERVER_NAME_SALT = "identity-binding";

/** The certificate name that carries a cluster's id. */
export function clusterCertificateName(clusterId: string): string {
  return `${CLUSTER_NAME_PREFIX}${clusterId}${CLUSTER_NAME_SUFFIX}`;
}

/** The cluster id in a certificate's DNS names, if one of them is hcp-kubernetes.<id>.svc.cluster.local. */
export function clusterIdFromNames(dnsNames: readonly string[]): string | undefined {
  for (const name of dnsNames) {
    if (!name.startsWith(CLUSTER_NAME_PREFIX) || !name.endsWith(CLUSTER_NAME_SUFFIX)) continue;
    const id = name.slice(CLUSTER_NAME_PREFIX.length, name.length - CLUSTER_NAME_SUFFIX.length);
    if (id !== "") return id;
  }
  return undefined;
}

/** The token proxy's TLS server name: "a" + base32hex(sha256(salt + id)) + ".ests.aks", lower case, no padding. */
export function tokenProxyServerName(clusterId: string): string {
  const digest = createHash("sha256").update(SERVER_NAME_SALT + clusterId).digest();
  return `a${base32Hex(digest)}.ests.aks`.toLowerCase();
}

const BASE32_HEX = "0123456789ABCDEFGHIJKLMNOPQRSTUV";

/** RFC 4648 base32 with the extended hex alphabet, without padding. */
export function base32Hex(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_HEX[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32_HEX[(buffer << (5 - bits)) & 31];
  return out;
}
