// Makes the host names the emulator answers for resolve to it without
// touching /etc/hosts. Load it before anything connects:
//   node --import ./src/emulator/dns-hook.ts app.ts
// (or import it first in a test). dns.lookup and dns.promises.lookup — which
// net, tls, https and fetch use — answer SSCSI_EMULATOR_ADDRESS (default
// 127.0.0.1) for names equal to or ending in ".<suffix>" of a suffix in
// SSCSI_EMULATOR_HOSTS (comma list; default: the public, US Gov and China
// Key Vault and login hosts, Event Grid's eventgrid.azure.net (namespace
// topics), and kubernetes.default.svc.cluster.local, where the emulator plays
// the API server and identity binding's token proxy).
// Names in SSCSI_EMULATOR_NXDOMAIN (comma list) fail with ENOTFOUND instead,
// as Key Vault's DNS answers for a vault that does not exist. The variables
// are read on every lookup, so a test may set them after importing this
// module. Other names are untouched.
import dns from "node:dns";
import { isIP } from "node:net";
import { syncBuiltinESMExports } from "node:module";

export const DEFAULT_EMULATED_HOSTS = [
  "vault.azure.net",
  "vault.usgovcloudapi.net",
  "vault.azure.cn",
  "login.microsoftonline.com",
  "login.microsoftonline.us",
  "login.chinacloudapi.cn",
  "eventgrid.azure.net",
  "kubernetes.default.svc.cluster.local",
];

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;
type LookupFunction = (hostname: string, options: unknown, callback?: unknown) => void;

const INSTALLED = Symbol.for("keyvault-emulator.dns-hook");

/** The suffixes currently redirected. */
export function emulatedHostSuffixes(): string[] {
  const configured = process.env.SSCSI_EMULATOR_HOSTS;
  const list = configured === undefined || configured.trim() === "" ? DEFAULT_EMULATED_HOSTS : configured.split(",");
  return list.map((s) => s.trim().toLowerCase().replace(/^\*?\./, "")).filter((s) => s !== "");
}

/** The address emulated names resolve to. */
export function emulatorAddress(): string {
  const address = process.env.SSCSI_EMULATOR_ADDRESS?.trim();
  return address && isIP(address) ? address : "127.0.0.1";
}

/** Names that do not exist (ENOTFOUND), e.g. a deleted vault's host. */
export function isNxdomainHost(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, "");
  return (process.env.SSCSI_EMULATOR_NXDOMAIN ?? "").split(",").some((n) => n.trim().toLowerCase() === name && name !== "");
}

function notFound(hostname: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
  err.code = "ENOTFOUND";
  err.errno = -3008;
  err.syscall = "getaddrinfo";
  (err as { hostname?: string }).hostname = hostname;
  return err;
}

export function isEmulatedHost(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, "");
  return emulatedHostSuffixes().some((suffix) => name === suffix || name.endsWith(`.${suffix}`));
}

function answer(options: unknown): { all: boolean; address: string; family: number } {
  const address = emulatorAddress();
  const all = typeof options === "object" && options !== null && (options as { all?: boolean }).all === true;
  return { all, address, family: isIP(address) };
}

/** Installs the hook once per process; returns false if it was already installed. */
export function installDnsHook(): boolean {
  const registry = globalThis as unknown as Record<symbol, boolean>;
  if (registry[INSTALLED]) return false;
  registry[INSTALLED] = true;

  const originalLookup = dns.lookup as unknown as LookupFunction;
  const patchedLookup = function lookup(hostname: string, options: unknown, callback?: unknown): void {
    const cb = (typeof options === "function" ? options : callback) as LookupCallback;
    if (typeof hostname === "string" && isNxdomainHost(hostname)) {
      process.nextTick(() => cb(notFound(hostname), ""));
      return;
    }
    if (typeof hostname !== "string" || !isEmulatedHost(hostname)) {
      originalLookup(hostname, options, callback);
      return;
    }
    const { all, address, family } = answer(options);
    process.nextTick(() => (all ? cb(null, [{ address, family }]) : cb(null, address, family)));
  };
  (dns as unknown as { lookup: LookupFunction }).lookup = patchedLookup;

  const promises = dns.promises as unknown as { lookup: (hostname: string, options?: unknown) => Promise<unknown> };
  const originalPromiseLookup = promises.lookup.bind(promises);
  promises.lookup = (hostname: string, options?: unknown): Promise<unknown> => {
    if (typeof hostname === "string" && isNxdomainHost(hostname)) return Promise.reject(notFound(hostname));
    if (typeof hostname !== "string" || !isEmulatedHost(hostname)) return originalPromiseLookup(hostname, options);
    const { all, address, family } = answer(options);
    return Promise.resolve(all ? [{ address, family }] : { address, family });
  };
  syncBuiltinESMExports();
  return true;
}

installDnsHook();
