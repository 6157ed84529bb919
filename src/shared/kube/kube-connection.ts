// How the driver reaches the Kubernetes API server: the in-cluster service
// account, or a kubeconfig file (--kubeconfig, then $KUBECONFIG).
//
// The common cases are read here directly: the in-cluster token and CA, and
// kubeconfig users with a token, a token file, a client certificate or basic
// auth. Loading @kubernetes/client-node's KubeConfig costs the driver about
// 30 MiB of memory and a quarter of a second at start-up on every node, so it
// is loaded only for what this file does not read itself (exec credential
// plugins, auth providers, proxies), and then it supplies the TLS and
// authentication options of each request.
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { Agent, type RequestOptions } from "node:https";
import { dirname, resolve } from "node:path";
import { loadYaml } from "../load-yaml.ts";

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
/** Bound service-account tokens rotate; read the file again at most this often (as client-go does). */
const TOKEN_REREAD_MS = 60_000;

export interface KubeConnection {
  /** https://host:port, without a trailing slash. */
  server: string;
  /** Fills in TLS and authentication for one request. */
  apply(options: RequestOptions): Promise<void>;
}

export class KubeConfigError extends Error {}

/** Loads --kubeconfig, then $KUBECONFIG, then the in-cluster service account. */
export async function loadKubeConnection(path: string | undefined): Promise<KubeConnection> {
  const file = path ?? process.env.KUBECONFIG;
  // The YAML parser is loaded only for a kubeconfig file, never in a cluster.
  return file ? fromKubeconfigFile(file, (await loadYaml()).parse) : inCluster();
}

/** The token, re-read from its file when it may have rotated. */
class TokenFile {
  private token = "";
  private readAt = 0;
  private readonly path: string;
  constructor(path: string) {
    this.path = path;
  }

  async get(): Promise<string> {
    if (Date.now() - this.readAt > TOKEN_REREAD_MS) {
      this.token = (await readFile(this.path, "utf8")).trim();
      this.readAt = Date.now();
    }
    return this.token;
  }
}

function inCluster(): KubeConnection {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new KubeConfigError("no kubeconfig given (--kubeconfig, $KUBECONFIG) and not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset)");
  }
  const agent = new Agent({ keepAlive: true, ca: readFileSync(`${SERVICE_ACCOUNT_DIR}/ca.crt`) });
  const token = new TokenFile(`${SERVICE_ACCOUNT_DIR}/token`);
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    async apply(options) {
      options.agent = agent;
      options.headers = { ...options.headers, authorization: `Bearer ${await token.get()}` };
    },
  };
}

interface NamedEntry {
  name: string;
  [key: string]: unknown;
}

interface KubeconfigCluster {
  server?: string;
  "certificate-authority"?: string;
  "certificate-authority-data"?: string;
  "insecure-skip-tls-verify"?: boolean;
  "tls-server-name"?: string;
  "proxy-url"?: string;
}

interface KubeconfigUser {
  token?: string;
  tokenFile?: string;
  "client-certificate"?: string;
  "client-certificate-data"?: string;
  "client-key"?: string;
  "client-key-data"?: string;
  username?: string;
  password?: string;
  [key: string]: unknown;
}

/** Fields of a kubeconfig user this file reads itself; anything else goes to client-node. */
const USER_FIELDS = new Set(["token", "tokenFile", "client-certificate", "client-certificate-data", "client-key", "client-key-data", "username", "password"]);

function fromKubeconfigFile(path: string, parseYaml: (text: string) => unknown): KubeConnection {
  let doc: { "current-context"?: string; contexts?: NamedEntry[]; clusters?: NamedEntry[]; users?: NamedEntry[] };
  try {
    doc = (parseYaml(readFileSync(path, "utf8")) ?? {}) as typeof doc;
  } catch (err) {
    throw new KubeConfigError(`cannot read kubeconfig ${path}: ${(err as Error).message}`);
  }
  const base = dirname(resolve(path));
  const find = <T>(list: NamedEntry[] | undefined, name: string | undefined, field: string): T | undefined =>
    list?.find((e) => e.name === name)?.[field] as T | undefined;
  const context = find<{ cluster?: string; user?: string }>(doc.contexts, doc["current-context"], "context");
  const cluster = find<KubeconfigCluster>(doc.clusters, context?.cluster, "cluster");
  if (!context || !cluster?.server) throw new KubeConfigError(`kubeconfig ${path} has no current context with a cluster server`);
  const user = find<KubeconfigUser>(doc.users, context.user, "user") ?? {};
  const server = cluster.server.replace(/\/+$/, "");

  if (cluster["proxy-url"] || Object.keys(user).some((k) => !USER_FIELDS.has(k))) return viaClientNode(path, server);

  const fileOrData = (file: string | undefined, data: string | undefined): Buffer | undefined =>
    data ? Buffer.from(data, "base64") : file ? readFileSync(resolve(base, file)) : undefined;
  const agent = new Agent({
    keepAlive: true,
    ca: fileOrData(cluster["certificate-authority"], cluster["certificate-authority-data"]),
    cert: fileOrData(user["client-certificate"], user["client-certificate-data"]),
    key: fileOrData(user["client-key"], user["client-key-data"]),
    rejectUnauthorized: cluster["insecure-skip-tls-verify"] !== true,
    servername: cluster["tls-server-name"],
  });
  const tokenFile = user.tokenFile ? new TokenFile(resolve(base, user.tokenFile)) : undefined;
  const basic = user.username !== undefined ? `Basic ${Buffer.from(`${user.username}:${user.password ?? ""}`).toString("base64")}` : undefined;
  return {
    server,
    async apply(options) {
      options.agent = agent;
      const token = user.token ?? (await tokenFile?.get());
      const authorization = token ? `Bearer ${token}` : basic;
      if (authorization) options.headers = { ...options.headers, authorization };
    },
  };
}

/** Exec plugins, auth providers, proxies: client-node's KubeConfig, loaded on first use. */
function viaClientNode(path: string, server: string): KubeConnection {
  let config: Promise<{ applyToHTTPSOptions(options: RequestOptions): Promise<void> }> | undefined;
  return {
    server,
    async apply(options) {
      config ??= import("@kubernetes/client-node").then(({ KubeConfig }) => {
        const kc = new KubeConfig();
        kc.loadFromFile(path);
        return kc;
      });
      await (await config).applyToHTTPSOptions(options);
    },
  };
}
