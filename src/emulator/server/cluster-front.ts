// The cluster address an AKS pod sees at kubernetes.default.svc.cluster.local,
// as far as identity binding needs it: one TLS port that serves the API
// server and the identity-binding token proxy, told apart by the TLS server
// name (SNI). The cluster's proxy server name gets the proxy's certificate;
// the API server's names, and any other *.ests.aks name, get the API server's
// serving certificate, whose hcp-kubernetes.<id>.svc.cluster.local name is
// what clients derive the proxy's server name from. Every other name keeps the
// emulator's own certificate.
import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { createSecureContext, type SecureContext, type TLSSocket } from "node:tls";
import { API_SERVER_HOST, clusterCertificateName, tokenProxyServerName } from "../../shared/identity-binding.ts";
import { issueServerCertificate, type CertificateAuthority, type ServerCredentials } from "../crypto/certificate-authority.ts";
import { generatePrivateKey } from "../crypto/json-web-key.ts";
import type { RequestCounters } from "../request-counters.ts";

/** The API server's names in its serving certificate (the in-cluster service names). */
export const API_SERVER_NAMES = ["kubernetes", "kubernetes.default", "kubernetes.default.svc", API_SERVER_HOST];

export interface ClusterIdentity {
  /** The id in the API server certificate's hcp-kubernetes.<id>.svc.cluster.local name. */
  clusterId: string;
  /** The only TLS server name the token proxy answers for. */
  serverName: string;
  /** Where the API server and the token proxy are (https://kubernetes.default.svc.cluster.local). */
  url: string;
}

export type FrontRoute = "tokenProxy" | "apiServer" | "other";

interface FrontContexts {
  apiServer: SecureContext;
  tokenProxy: SecureContext;
  other: SecureContext;
}

export class ClusterFront {
  readonly identity: ClusterIdentity;
  readonly #contexts: FrontContexts;
  readonly #counters: RequestCounters;

  private constructor(identity: ClusterIdentity, contexts: FrontContexts, counters: RequestCounters) {
    this.identity = identity;
    this.#contexts = contexts;
    this.#counters = counters;
  }

  static async create(ca: CertificateAuthority, emulatorTls: ServerCredentials, counters: RequestCounters, options: { clusterId?: string; portSuffix: () => string }): Promise<ClusterFront> {
    // AKS cluster ids are 24 hex digits
    const clusterId = options.clusterId ?? randomBytes(12).toString("hex");
    const serverName = tokenProxyServerName(clusterId);
    const privateKey = await generatePrivateKey({ kty: "RSA", keySize: 2048 });
    const apiServer = await issueServerCertificate(ca, [...API_SERVER_NAMES, clusterCertificateName(clusterId)], { commonName: "apiserver", privateKey });
    const tokenProxy = await issueServerCertificate(ca, [serverName], { commonName: "identity-binding-token-proxy", privateKey });
    const context = (tls: ServerCredentials) => createSecureContext({ key: tls.keyPem, cert: tls.certificatePem });
    const identity: ClusterIdentity = {
      clusterId,
      serverName,
      get url() {
        return `https://${API_SERVER_HOST}${options.portSuffix()}`;
      },
    };
    return new ClusterFront(identity, { apiServer: context(apiServer), tokenProxy: context(tokenProxy), other: context(emulatorTls) }, counters);
  }

  /** The HTTPS server's SNICallback: the certificate for the name the client asked for. */
  readonly selectContext = (servername: string, done: (err: Error | null, context?: SecureContext) => void): void => {
    const name = servername.toLowerCase();
    if (name === this.identity.serverName) return done(null, this.#contexts.tokenProxy);
    if (name.endsWith(".ests.aks")) {
      // another cluster's proxy name (a wrong --sni-name): not served here
      this.#counters.increment("tokenProxyUnknownServerName");
      return done(null, this.#contexts.apiServer);
    }
    if (API_SERVER_NAMES.includes(name)) return done(null, this.#contexts.apiServer);
    done(null, this.#contexts.other);
  };

  /** Which service a request reached: decided by the connection's server name, then the Host header. */
  route(req: IncomingMessage, hostname: string): FrontRoute {
    const servername = (req.socket as TLSSocket).servername;
    if (typeof servername === "string" && servername.toLowerCase() === this.identity.serverName) return "tokenProxy";
    if (API_SERVER_NAMES.includes(hostname) || (typeof servername === "string" && servername.toLowerCase().endsWith(".ests.aks"))) return "apiServer";
    return "other";
  }
}
