// A real Kubernetes control plane for integration tests: etcd, kube-apiserver
// and (on demand) kube-controller-manager, all on loopback ports, with a CA of
// our own for serving and client certificates, service-account signing keys,
// RBAC authorization and a JSON-lines audit log. There is no scheduler and no
// kubelet: pods stay Pending, which is all the driver's API code needs (the
// node tier adds both: test/harness/node.ts).
import { execFile } from "node:child_process";
import { generateKeyPair, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { access, constants, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import * as http from "node:http";
import * as https from "node:https";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import forge from "node-forge";
import YAML from "yaml";
import { freePort, freePorts, isPortClash, launch, stopProcess, waitReady, type Proc } from "./processes.ts";

export interface Cluster {
  /** Admin kubeconfig (client certificate in group system:masters). */
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** JSON-lines audit log of every request (Metadata level). */
  auditLogPath: string;
  binDir: string;
  /** The cluster CA certificate (signs every client certificate; kubelets trust it for the API server's calls). */
  caPath: string;
  /** Writes a kubeconfig whose user is the given name/groups via a client certificate (for least-privilege tests). */
  kubeconfigFor(user: string, groups?: string[]): Promise<string>;
  /** Starts kube-controller-manager (garbage collector, service accounts, deployments, ...); idempotent. */
  startControllerManager(): Promise<void>;
  /** Starts kube-scheduler (needs a kubelet from the node tier to have anywhere to schedule); idempotent. */
  startScheduler(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  /** Directory for data, certificates and logs. Kept after stop(); a temporary directory (removed on stop) otherwise. */
  dataDir?: string;
}

const harnessDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(harnessDir, "..", "..");
export const crdDir = join(repoRoot, "deploy", "crds");
const installScript = join(harnessDir, "install-tools.sh");

const SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local";
const ADMIN_USER = "sscsi-admin";

/**
 * Controllers the tests rely on. Of the node controllers only the lifecycle one
 * runs: it lifts the not-ready taint once the node tier's kubelet is Ready; pod GC
 * stays off.
 */
const CONTROLLERS = [
  "garbage-collector-controller",
  "namespace-controller",
  "serviceaccount-controller",
  "serviceaccount-token-controller",
  "root-ca-certificate-publisher-controller",
  "clusterrole-aggregation-controller",
  "deployment-controller",
  "replicaset-controller",
  "statefulset-controller",
  "daemonset-controller",
  "job-controller",
  "node-lifecycle-controller",
];

// ---------------------------------------------------------------------------
// Binaries

/** Runs install-tools.sh (a no-op taking milliseconds once the cache is warm) and returns the bin directory. */
export async function ensureBinaries(): Promise<string> {
  const env = { ...process.env };
  // Go's default install location is often missing from PATH in non-login shells.
  if (existsSync("/usr/local/go/bin/go")) env.PATH = `${env.PATH ?? ""}:/usr/local/go/bin`;
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)("bash", [installScript], {
      env,
      maxBuffer: 64 * 1024 * 1024,
    }));
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    const stderr = (e.stderr ?? "").trim().split("\n").slice(-30).join("\n");
    throw new Error(`test harness: ${installScript} failed; the Kubernetes test binaries are not available.\n${stderr || e.message}`);
  }
  const binDir = stdout.trim().split("\n").pop() ?? "";
  for (const name of ["etcd", "kube-apiserver", "kube-controller-manager"]) {
    try {
      await access(join(binDir, name), constants.X_OK);
    } catch {
      throw new Error(`test harness: ${name} is missing from ${binDir} after running ${installScript}`);
    }
  }
  return binDir;
}

// ---------------------------------------------------------------------------
// Certificates (keys from node:crypto, X.509 from node-forge)

interface KeyPair {
  privateKeyPem: string;
  publicKeyPem: string;
}

async function rsaKeyPair(): Promise<KeyPair> {
  const { privateKey, publicKey } = await promisify(generateKeyPair)("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

interface CertAuthority {
  certPem: string;
  keyPem: string;
}

interface CertRequest {
  commonName: string;
  organizations?: string[];
  isCA?: boolean;
  serverNames?: { dns: string[]; ips: string[] };
  client?: boolean;
}

function signCertificate(keys: KeyPair, req: CertRequest, issuer?: CertAuthority): string {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicKeyPem);
  // A positive serial: clear the top bit of the first byte.
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  cert.serialNumber = serial.toString("hex");
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now + 10 * 365 * 24 * 60 * 60 * 1000);
  const subject: forge.pki.CertificateField[] = [{ name: "commonName", value: req.commonName }];
  for (const org of req.organizations ?? []) subject.push({ name: "organizationName", value: org });
  cert.setSubject(subject);
  const issuerCert = issuer ? forge.pki.certificateFromPem(issuer.certPem) : undefined;
  cert.setIssuer(issuerCert ? issuerCert.subject.attributes : subject);
  const extensions: object[] = [];
  if (req.isCA) {
    extensions.push({ name: "basicConstraints", cA: true, critical: true });
    extensions.push({ name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true });
  } else {
    extensions.push({ name: "basicConstraints", cA: false });
    extensions.push({ name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true });
    extensions.push({ name: "extKeyUsage", serverAuth: Boolean(req.serverNames), clientAuth: Boolean(req.client) });
  }
  if (req.serverNames) {
    extensions.push({
      name: "subjectAltName",
      altNames: [
        ...req.serverNames.dns.map((value) => ({ type: 2, value })),
        ...req.serverNames.ips.map((ip) => ({ type: 7, ip })),
      ],
    });
  }
  extensions.push({ name: "subjectKeyIdentifier" });
  cert.setExtensions(extensions);
  const signingKey = forge.pki.privateKeyFromPem(issuer ? issuer.keyPem : keys.privateKeyPem);
  cert.sign(signingKey, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

interface Pki {
  dir: string;
  ca: CertAuthority;
  caPath: string;
  servingCertPath: string;
  servingKeyPath: string;
  serviceAccountKeyPath: string;
  serviceAccountPubPath: string;
  /** The API server's client certificate for kubelets (logs, exec). */
  kubeletClientCertPath: string;
  kubeletClientKeyPath: string;
}

async function createPki(dir: string): Promise<Pki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const [caKeys, servingKeys, saKeys, kubeletClientKeys] = await Promise.all([rsaKeyPair(), rsaKeyPair(), rsaKeyPair(), rsaKeyPair()]);
  const ca: CertAuthority = {
    keyPem: caKeys.privateKeyPem,
    certPem: signCertificate(caKeys, { commonName: "secrets-store-csi-test-ca", isCA: true }),
  };
  const servingCert = signCertificate(
    servingKeys,
    {
      commonName: "kube-apiserver",
      serverNames: {
        dns: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
        ips: ["127.0.0.1", "10.96.0.1"],
      },
    },
    ca,
  );
  const kubeletClientCert = signCertificate(
    kubeletClientKeys,
    { commonName: "kube-apiserver-kubelet-client", organizations: ["system:masters"], client: true },
    ca,
  );
  const pki: Pki = {
    dir,
    ca,
    caPath: join(dir, "ca.crt"),
    servingCertPath: join(dir, "apiserver.crt"),
    servingKeyPath: join(dir, "apiserver.key"),
    serviceAccountKeyPath: join(dir, "sa.key"),
    serviceAccountPubPath: join(dir, "sa.pub"),
    kubeletClientCertPath: join(dir, "apiserver-kubelet-client.crt"),
    kubeletClientKeyPath: join(dir, "apiserver-kubelet-client.key"),
  };
  await Promise.all([
    writeFile(pki.caPath, ca.certPem),
    writeFile(join(dir, "ca.key"), ca.keyPem, { mode: 0o600 }),
    writeFile(pki.servingCertPath, servingCert),
    writeFile(pki.servingKeyPath, servingKeys.privateKeyPem, { mode: 0o600 }),
    writeFile(pki.serviceAccountKeyPath, saKeys.privateKeyPem, { mode: 0o600 }),
    writeFile(pki.serviceAccountPubPath, saKeys.publicKeyPem),
    writeFile(pki.kubeletClientCertPath, kubeletClientCert),
    writeFile(pki.kubeletClientKeyPath, kubeletClientKeys.privateKeyPem, { mode: 0o600 }),
  ]);
  return pki;
}

/** Loads the CA that startCluster wrote into `<dataDir>/pki`. */
export async function loadCertAuthority(dataDir: string): Promise<CertAuthority> {
  const dir = join(dataDir, "pki");
  return { certPem: await readFile(join(dir, "ca.crt"), "utf8"), keyPem: await readFile(join(dir, "ca.key"), "utf8") };
}

interface ClientCredentials {
  certPem: string;
  keyPem: string;
}

async function clientCredentials(ca: CertAuthority, user: string, groups: string[]): Promise<ClientCredentials> {
  const keys = await rsaKeyPair();
  const certPem = signCertificate(keys, { commonName: user, organizations: groups, client: true }, ca);
  return { certPem, keyPem: keys.privateKeyPem };
}

function kubeconfigYaml(server: string, caPem: string, user: string, creds: ClientCredentials): string {
  const b64 = (s: string): string => Buffer.from(s).toString("base64");
  return YAML.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "sscsi-test", cluster: { server, "certificate-authority-data": b64(caPem) } }],
    users: [{ name: user, user: { "client-certificate-data": b64(creds.certPem), "client-key-data": b64(creds.keyPem) } }],
    contexts: [{ name: user, context: { cluster: "sscsi-test", user, namespace: "default" } }],
    "current-context": user,
  });
}

let kubeconfigCounter = 0;

/**
 * Writes a kubeconfig for `user` in `groups`, authenticated by a client
 * certificate signed by the cluster CA (the API server needs no restart).
 */
export async function writeUserKubeconfig(
  dataDir: string,
  server: string,
  user: string,
  groups: string[] = [],
): Promise<string> {
  if (!user) throw new Error("kubeconfigFor: user name is empty");
  const ca = await loadCertAuthority(dataDir);
  const creds = await clientCredentials(ca, user, groups);
  const dir = join(dataDir, "kubeconfigs");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  kubeconfigCounter += 1;
  const file = join(dir, `${user.replace(/[^A-Za-z0-9._-]/g, "_")}-${process.pid}-${kubeconfigCounter}.kubeconfig`);
  await writeFile(file, kubeconfigYaml(server, ca.certPem, user, creds), { mode: 0o600 });
  return file;
}

interface HttpResult {
  status: number;
  body: string;
}

function httpGet(url: string, options: https.RequestOptions = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith("https:") ? https : http;
    const req = mod.get(url, { ...options, timeout: 3_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on("error", reject);
  });
}

// ---------------------------------------------------------------------------
// Components

async function startEtcd(binDir: string, dataDir: string): Promise<{ proc: Proc; url: string }> {
  for (let attempt = 1; ; attempt++) {
    const [clientPort, peerPort] = await freePorts("127.0.0.1", 2);
    const url = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    const proc = launch(
      "etcd",
      join(binDir, "etcd"),
      [
        "--name=sscsi-test",
        `--data-dir=${join(dataDir, "etcd")}`,
        `--listen-client-urls=${url}`,
        `--advertise-client-urls=${url}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=sscsi-test=${peer}`,
        "--initial-cluster-state=new",
        // Throw-away data: skip fsync, keep the log quiet.
        "--unsafe-no-fsync=true",
        "--log-level=warn",
      ],
      join(dataDir, "etcd.log"),
    );
    try {
      await waitReady(proc, "etcd /health", async () => {
        const res = await httpGet(`${url}/health`);
        return res.status === 200 && (JSON.parse(res.body) as { health?: string }).health === "true";
      });
      return { proc, url };
    } catch (err) {
      await stopProcess(proc);
      if (attempt < 3 && isPortClash(proc)) continue;
      throw err;
    }
  }
}

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
`;

async function startApiServer(
  binDir: string,
  dataDir: string,
  pki: Pki,
  etcdUrl: string,
  admin: ClientCredentials,
): Promise<{ proc: Proc; server: string; auditLogPath: string }> {
  const auditPolicyPath = join(dataDir, "audit-policy.yaml");
  const auditLogPath = join(dataDir, "audit.log");
  await writeFile(auditPolicyPath, AUDIT_POLICY);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const server = `https://127.0.0.1:${port}`;
    const proc = launch(
      "kube-apiserver",
      join(binDir, "kube-apiserver"),
      [
        `--etcd-servers=${etcdUrl}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${port}`,
        `--tls-cert-file=${pki.servingCertPath}`,
        `--tls-private-key-file=${pki.servingKeyPath}`,
        `--client-ca-file=${pki.caPath}`,
        "--authorization-mode=RBAC",
        `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
        `--service-account-key-file=${pki.serviceAccountPubPath}`,
        `--service-account-signing-key-file=${pki.serviceAccountKeyPath}`,
        "--service-cluster-ip-range=10.96.0.0/16",
        // No real endpoints exist for the "kubernetes" Service on loopback.
        "--endpoint-reconciler-type=none",
        "--enable-priority-and-fairness=false",
        "--allow-privileged=true",
        // kubectl logs and exec on the node tier's kubelet.
        `--kubelet-client-certificate=${pki.kubeletClientCertPath}`,
        `--kubelet-client-key=${pki.kubeletClientKeyPath}`,
        `--audit-policy-file=${auditPolicyPath}`,
        `--audit-log-path=${auditLogPath}`,
        "--audit-log-format=json",
        "--audit-log-mode=blocking",
        "--profiling=false",
      ],
      join(dataDir, "kube-apiserver.log"),
    );
    try {
      await waitReady(proc, "kube-apiserver /readyz", async () => {
        const res = await httpGet(`${server}/readyz`, { ca: pki.ca.certPem, cert: admin.certPem, key: admin.keyPem });
        return res.status === 200;
      });
      return { proc, server, auditLogPath };
    } catch (err) {
      await stopProcess(proc);
      if (attempt < 3 && isPortClash(proc)) continue;
      throw err;
    }
  }
}

interface RawResponse {
  status: number;
  body: string;
}

function adminRequest(
  server: string,
  pki: Pki,
  admin: ClientCredentials,
  method: string,
  path: string,
  body?: unknown,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      `${server}${path}`,
      {
        method,
        ca: pki.ca.certPem,
        cert: admin.certPem,
        key: admin.keyPem,
        timeout: 10_000,
        headers: payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on("error", reject);
    req.end(payload);
  });
}

interface CrdDoc {
  metadata: { name: string; resourceVersion?: string };
  spec: { group: string; names: { plural: string }; versions: { name: string; served: boolean }[] };
}

/** Creates (or replaces) every CRD in deploy/crds and waits until each is Established and served. */
async function installCrds(server: string, pki: Pki, admin: ClientCredentials, apiserver: Proc): Promise<void> {
  const files = (await readdir(crdDir)).filter((f) => f.endsWith(".yaml")).sort();
  if (files.length === 0) throw new Error(`no CRD manifests in ${crdDir}`);
  const base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
  const crds: CrdDoc[] = [];
  for (const file of files) {
    const crd = YAML.parse(await readFile(join(crdDir, file), "utf8")) as CrdDoc;
    crds.push(crd);
    let res = await adminRequest(server, pki, admin, "POST", base, crd);
    if (res.status === 409) {
      const existing = await adminRequest(server, pki, admin, "GET", `${base}/${crd.metadata.name}`);
      const rv = (JSON.parse(existing.body) as CrdDoc).metadata.resourceVersion;
      res = await adminRequest(server, pki, admin, "PUT", `${base}/${crd.metadata.name}`, {
        ...crd,
        metadata: { ...crd.metadata, resourceVersion: rv },
      });
    }
    if (res.status < 200 || res.status > 299) {
      throw new Error(`installing CRD ${file} failed: HTTP ${res.status} ${res.body}`);
    }
  }
  for (const crd of crds) {
    await waitReady(apiserver, `CRD ${crd.metadata.name} to be Established`, async () => {
      const res = await adminRequest(server, pki, admin, "GET", `${base}/${crd.metadata.name}`);
      const status = (JSON.parse(res.body) as { status?: { conditions?: { type: string; status: string }[] } }).status;
      return Boolean(status?.conditions?.some((c) => c.type === "Established" && c.status === "True"));
    });
    // Established can precede discovery; wait until every served version lists the resource.
    for (const version of crd.spec.versions.filter((v) => v.served)) {
      await waitReady(apiserver, `${crd.spec.names.plural} to be served at ${crd.spec.group}/${version.name}`, async () => {
        const res = await adminRequest(server, pki, admin, "GET", `/apis/${crd.spec.group}/${version.name}`);
        if (res.status !== 200) return false;
        const list = JSON.parse(res.body) as { resources?: { name: string }[] };
        return Boolean(list.resources?.some((r) => r.name === crd.spec.names.plural));
      });
      // Until its watch cache is initialised, a new resource answers 429 "storage is
      // (re)initializing"; wait for a list to succeed so tests never see that.
      await waitReady(apiserver, `a list of ${crd.spec.names.plural}.${crd.spec.group}/${version.name} to succeed`, async () => {
        const path = `/apis/${crd.spec.group}/${version.name}/${crd.spec.names.plural}`;
        return (await adminRequest(server, pki, admin, "GET", path)).status === 200;
      });
    }
  }
}

function startKubeControllerManager(
  binDir: string,
  dataDir: string,
  pki: Pki,
  kubeconfigPath: string,
  server: string,
  admin: ClientCredentials,
): Promise<Proc> {
  return launchComponent(
    "kube-controller-manager",
    join(binDir, "kube-controller-manager"),
    (port) => [
      `--kubeconfig=${kubeconfigPath}`,
      "--bind-address=127.0.0.1",
      `--secure-port=${port}`,
      `--cert-dir=${join(dataDir, "kcm-certs")}`,
      "--leader-elect=false",
      `--controllers=${CONTROLLERS.join(",")}`,
      `--service-account-private-key-file=${pki.serviceAccountKeyPath}`,
      `--root-ca-file=${pki.caPath}`,
      "--profiling=false",
    ],
    join(dataDir, "kube-controller-manager.log"),
    // The service-account controller creating "default" proves the controllers are running.
    (proc) =>
      waitReady(proc, "the default ServiceAccount in namespace default", async () => {
        const res = await adminRequest(server, pki, admin, "GET", "/api/v1/namespaces/default/serviceaccounts/default");
        return res.status === 200;
      }),
  );
}

/**
 * Launches a control-plane component whose secure port is `--secure-port`: on a
 * free loopback port, ready once /healthz answers and `extraReady` holds,
 * retried when another process took the port first.
 */
async function launchComponent(
  name: string,
  binary: string,
  args: (port: number) => string[],
  logPath: string,
  extraReady?: (proc: Proc) => Promise<void>,
): Promise<Proc> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const proc = launch(name, binary, args(port), logPath);
    try {
      await waitReady(proc, `${name} /healthz`, async () => {
        const res = await httpGet(`https://127.0.0.1:${port}/healthz`, { rejectUnauthorized: false });
        return res.status === 200;
      });
      await extraReady?.(proc);
      return proc;
    } catch (err) {
      await stopProcess(proc);
      if (attempt < 3 && isPortClash(proc)) continue;
      throw err;
    }
  }
}

function startKubeScheduler(binDir: string, dataDir: string, kubeconfigPath: string): Promise<Proc> {
  return launchComponent(
    "kube-scheduler",
    join(binDir, "kube-scheduler"),
    (port) => [`--kubeconfig=${kubeconfigPath}`, "--bind-address=127.0.0.1", `--secure-port=${port}`, "--leader-elect=false", "--profiling=false"],
    join(dataDir, "kube-scheduler.log"),
  );
}

// ---------------------------------------------------------------------------
// The cluster

export async function startCluster(options: StartClusterOptions = {}): Promise<Cluster> {
  const binDir = await ensureBinaries();
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "sscsi-cluster-")));
  await mkdir(dataDir, { recursive: true });

  const procs: Proc[] = [];
  let stopped = false;
  const starting = new Map<string, Promise<void>>();
  /** Starts a component once, on first request; a failed start may be retried. */
  const onDemand = (name: string, start: () => Promise<Proc>) => (): Promise<void> => {
    if (stopped) return Promise.reject(new Error(`${name}: the cluster is stopped`));
    let started = starting.get(name);
    if (!started) {
      started = start().then(
        (proc) => {
          procs.push(proc);
        },
        (err: unknown) => {
          starting.delete(name);
          throw err;
        },
      );
      starting.set(name, started);
    }
    return started;
  };
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const started of starting.values()) await started.catch(() => undefined);
    // Controllers first, then the API server, then its storage.
    for (const proc of procs.reverse()) await stopProcess(proc);
    if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
  };

  try {
    const pki = await createPki(join(dataDir, "pki"));
    const admin = await clientCredentials(pki.ca, ADMIN_USER, ["system:masters"]);
    const etcd = await startEtcd(binDir, dataDir);
    procs.push(etcd.proc);
    const api = await startApiServer(binDir, dataDir, pki, etcd.url, admin);
    procs.push(api.proc);
    const kubeconfigPath = join(dataDir, "admin.kubeconfig");
    await writeFile(kubeconfigPath, kubeconfigYaml(api.server, pki.ca.certPem, ADMIN_USER, admin), { mode: 0o600 });
    await installCrds(api.server, pki, admin, api.proc);

    return {
      kubeconfigPath,
      server: api.server,
      auditLogPath: api.auditLogPath,
      binDir,
      caPath: pki.caPath,
      kubeconfigFor: (user, groups = []) => writeUserKubeconfig(dataDir, api.server, user, groups),
      startControllerManager: onDemand("startControllerManager", () =>
        startKubeControllerManager(binDir, dataDir, pki, kubeconfigPath, api.server, admin),
      ),
      startScheduler: onDemand("startScheduler", () => startKubeScheduler(binDir, dataDir, kubeconfigPath)),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
