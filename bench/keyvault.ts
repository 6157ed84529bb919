// The one Key Vault both stacks read: the emulator program (bundled) on port
// 443 of the private namespace's 127.0.0.1, seeded with one vault of ten
// secrets and the service principals the benchmark mounts with. The admin
// endpoints (request counters) are read on its plain-HTTP IMDS port.
import { readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import type { SeedDocument } from "../src/emulator/index.ts";
import { freePort } from "../test/provider/env.ts";
import { startProgram, type RunningProgram } from "./program.ts";

export const VAULT = "bench-kv";
export const TENANT = "00000000-0000-4000-8000-00000000be4c";
export const OBJECTS = Array.from({ length: 10 }, (_, i) => `secret-${i}`);
/** The value the vault holds for each object (512 bytes). */
export const secretValue = (name: string): string => `value-of-${name}-`.padEnd(512, "x");
/** Host names the providers must reach: the vault and Entra ID. */
export const EMULATED_HOSTS = [`${VAULT}.vault.azure.net`, "login.microsoftonline.com"];

export interface ServicePrincipal {
  clientId: string;
  clientSecret: string;
}

/** The identity every pod of the benchmark mounts with. */
export const POD_IDENTITY: ServicePrincipal = { clientId: "b0000000-0000-4000-8000-000000000001", clientSecret: "bench-pod-secret" };

/** The identity that warms the emulator up (never a stack's). */
export const WARM_UP_IDENTITY: ServicePrincipal = { clientId: "e0000000-0000-4000-8000-000000000001", clientSecret: "bench-warm-up" };

/** Identities used once each, for cold mounts: `cold(stack, i)`. */
export function coldIdentity(stack: string, i: number): ServicePrincipal {
  const n = (stack === "ours" ? 100 : 200) + i;
  return { clientId: `c0000000-0000-4000-8000-${String(n).padStart(12, "0")}`, clientSecret: `bench-cold-${stack}-${i}` };
}

/** Identities of the node-boot figure, one per pod: `bootIdentity(stack, i)`. */
export function bootIdentity(stack: string, i: number): ServicePrincipal {
  const n = (stack === "ours" ? 1000 : 2000) + i;
  return { clientId: `d0000000-0000-4000-8000-${String(n).padStart(12, "0")}`, clientSecret: `bench-boot-${stack}-${i}` };
}

export interface KeyVault {
  caFile: string;
  /** Request counters since the last reset ("getSecret:bench-kv", "token", ...). */
  counters(): Promise<Record<string, number>>;
  resetCounters(): Promise<void>;
  /** Key Vault secret reads since the last reset. */
  reads(): Promise<number>;
  /** Token requests to Entra ID since the last reset. */
  tokens(): Promise<number>;
  /** Requests the vault answered with its challenge (a 401 to a request without a token) since the last reset. */
  challenges(): Promise<number>;
  /** Runs each path a cold Mount takes through the emulator (challenge, token, reads) `rounds` times, outside any stack. */
  warmUp(rounds: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startKeyVault(bundle: string, dir: string, coldIdentities: number, bootIdentities = 0): Promise<KeyVault> {
  const principals = [
    POD_IDENTITY,
    WARM_UP_IDENTITY,
    ...["ours", "upstream"].flatMap((s) => Array.from({ length: coldIdentities }, (_, i) => coldIdentity(s, i))),
    ...["ours", "upstream"].flatMap((s) => Array.from({ length: bootIdentities }, (_, i) => bootIdentity(s, i))),
  ];
  const seed: SeedDocument = {
    tenantId: TENANT,
    vaults: [{ name: VAULT, secrets: OBJECTS.map((name) => ({ name, value: secretValue(name) })) }],
    applications: principals.map((p, i) => ({ name: `bench-app-${i}`, ...p, roleAssignments: [{ vault: VAULT, role: "Key Vault Secrets User" }] })),
  } as SeedDocument;
  const seedFile = join(dir, "seed.json");
  writeFileSync(seedFile, JSON.stringify(seed));
  const adminPort = await freePort();
  const admin = `http://127.0.0.1:${adminPort}/_emulator`;
  const program: RunningProgram = await startProgram(
    "keyvault-emulator",
    {
      command: process.execPath,
      args: [bundle, "--listen=127.0.0.1:443", `--imds-listen=127.0.0.1:${adminPort}`, `--seed=${seedFile}`, `--data-dir=${dir}`, "--log-level=warn"],
      env: { PATH: process.env.PATH ?? "" },
    },
    {
      logPath: join(dir, "emulator.log"),
      ready: async () => {
        const res = await fetch(`${admin}/healthz`);
        if (!res.ok) throw new Error(`healthz ${res.status}`);
      },
    },
  );
  const counters = async () => (await (await fetch(`${admin}/counters`)).json()) as Record<string, number>;
  const caFile = join(dir, "ca.pem");
  return {
    caFile,
    counters,
    resetCounters: async () => {
      const res = await fetch(`${admin}/counters`, { method: "POST" });
      if (!res.ok) throw new Error(`resetting the emulator's counters: HTTP ${res.status}`);
    },
    reads: async () => (await counters())[`getSecret:${VAULT}`] ?? 0,
    tokens: async () => (await counters()).token ?? 0,
    challenges: async () => (await counters())[`challenge:${VAULT}`] ?? 0,
    warmUp: (rounds) => warmUp(readFileSync(caFile), rounds),
    stop: () => program.stop(),
  };
}

/** One HTTPS request to the emulator (its own connection); resolves to the status and body. */
function call(ca: Buffer, url: string, init: { method?: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? "GET", headers: init.headers, ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(init.body);
  });
}

async function warmUp(ca: Buffer, rounds: number): Promise<void> {
  const secretUrl = (name: string) => `https://${VAULT}.vault.azure.net/secrets/${name}?api-version=7.5`;
  for (let r = 0; r < rounds; r++) {
    const challenge = await call(ca, secretUrl(OBJECTS[0]!), {});
    if (challenge.status !== 401) throw new Error(`warming the emulator up: a read without a token got ${challenge.status}, not 401`);
    const token = await call(ca, `https://login.microsoftonline.com/${TENANT}/oauth2/v2.0/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: WARM_UP_IDENTITY.clientId, client_secret: WARM_UP_IDENTITY.clientSecret, scope: "https://vault.azure.net/.default" }).toString(),
    });
    if (token.status !== 200) throw new Error(`warming the emulator up: token request got ${token.status}: ${token.body.slice(0, 200)}`);
    const { access_token } = JSON.parse(token.body) as { access_token: string };
    for (const name of OBJECTS) {
      const read = await call(ca, secretUrl(name), { headers: { authorization: `Bearer ${access_token}` } });
      if (read.status !== 200) throw new Error(`warming the emulator up: reading ${name} got ${read.status}`);
    }
  }
}
