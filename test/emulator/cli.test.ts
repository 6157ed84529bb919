// The keyvault-emulator program: flags, a YAML seed file, the CA written to
// the data dir, graceful SIGTERM, and clear errors for a bad seed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateClient } from "@azure/keyvault-certificates";
import { SecretClient } from "@azure/keyvault-secrets";
import { ClientSecretCredential } from "@azure/identity";
import { AzureKeyCredential, EventGridReceiverClient } from "@azure/eventgrid-namespaces";
import "../../src/emulator/dns-hook.ts";

const MAIN = new URL("../../src/emulator/main.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "kv-emulator-cli-"));
const CLIENT_ID = "c1100000-0000-4000-8000-000000000001";

const SEED = `
tenantId: 3a2b1c00-0000-4000-8000-000000000001
vaults:
  - name: cli-vault
    secrets:
      - name: db
        versions:
          - value: first
            enabled: false
          - value: second
            contentType: text/plain
    certificates:
      - name: web
        issuer: chain
        subject: CN=web.example.com
        contentType: application/x-pem-file
applications:
  - name: cli-app
    clientId: ${CLIENT_ID}
    clientSecret: cli-secret
    roleAssignments:
      - vault: cli-vault
        role: Key Vault Administrator
`;

interface Started {
  child: ChildProcess;
  ready: Record<string, unknown>;
  output: () => string;
}

function run(args: string[]): Promise<Started> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      for (const line of output.split("\n")) {
        if (!line.includes("keyvault emulator ready")) continue;
        resolve({ child, ready: JSON.parse(line) as Record<string, unknown>, output: () => output });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("exit", (code) => reject(new Error(`exited with ${code}: ${output}`)));
  });
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.on("exit", (code) => resolve(code)));
}

let started: Started;

beforeAll(async () => {
  writeFileSync(join(dir, "seed.yaml"), SEED);
  started = await run(["--listen=127.0.0.1:0", "--imds-listen", "127.0.0.1:0", `--seed=${join(dir, "seed.yaml")}`, `--data-dir=${join(dir, "data")}`]);
}, 60_000);

afterAll(() => {
  if (started.child.exitCode === null) started.child.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("keyvault-emulator CLI", () => {
  it("writes the CA, logs the URLs and serves the seeded vault", async () => {
    const { ready } = started;
    expect(ready.caCertPath).toBe(join(dir, "data", "ca.pem"));
    expect(existsSync(ready.caCertPath as string)).toBe(true);
    const port = ready.port as number;
    expect(ready.vaultUrls).toEqual([`https://cli-vault.vault.azure.net:${port}/`]);

    const ca = readFileSync(ready.caCertPath as string, "utf8");
    const credential = new ClientSecretCredential("3a2b1c00-0000-4000-8000-000000000001", CLIENT_ID, "cli-secret", {
      authorityHost: ready.authorityHost as string,
      disableInstanceDiscovery: true,
      tlsOptions: { ca },
    });
    const secrets = new SecretClient((ready.vaultUrls as string[])[0]!, credential, { tlsOptions: { ca } });
    const db = await secrets.getSecret("db");
    expect(db.value).toBe("second");
    expect(db.properties.contentType).toBe("text/plain");
    const versions = [];
    for await (const v of secrets.listPropertiesOfSecretVersions("db")) versions.push(v.enabled);
    expect(versions).toEqual([false, true]);

    const web = await secrets.getSecret("web");
    expect(web.value!.match(/BEGIN CERTIFICATE/g)).toHaveLength(3);
    const certificates = new CertificateClient((ready.vaultUrls as string[])[0]!, credential, { tlsOptions: { ca } });
    expect((await certificates.getCertificate("web")).properties.version).toBe(web.properties.version);
  });

  it("stops gracefully on SIGTERM", async () => {
    const exited = exitOf(started.child);
    started.child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(started.output()).toContain("shutting down");
  });

  it("serves the namespace topics of --event-namespace, fed by the vaults' events", async () => {
    const events = await run([
      "--listen=127.0.0.1:0",
      "--imds-listen=127.0.0.1:0",
      `--seed=${join(dir, "seed.yaml")}`,
      "--event-time-scale=0.01",
      "--event-namespace=ns-cli/kv-events/controller",
    ]);
    try {
      const namespaces = events.ready.eventGridNamespaces as Array<{ name: string; endpoint: string; topics: string[] }>;
      expect(namespaces).toEqual([{ name: "ns-cli", endpoint: `https://ns-cli.eastus-1.eventgrid.azure.net:${events.ready.port as number}`, topics: ["kv-events"] }]);
      expect(events.ready.eventTimeScale).toBe(0.01);
      expect(events.output()).not.toMatch(/accessKeys/);
      const ca = readFileSync(events.ready.caCertPath as string, "utf8");
      const admin = (await (await fetch(`${events.ready.imdsEndpoint as string}/_emulator/events/namespaces/ns-cli`)).json()) as { accessKeys: string[] };
      const credential = new ClientSecretCredential("3a2b1c00-0000-4000-8000-000000000001", CLIENT_ID, "cli-secret", {
        authorityHost: events.ready.authorityHost as string,
        disableInstanceDiscovery: true,
        tlsOptions: { ca },
      });
      const written = await new SecretClient((events.ready.vaultUrls as string[])[0]!, credential, { tlsOptions: { ca } }).setSecret("db", "third");
      const receiver = new EventGridReceiverClient(namespaces[0]!.endpoint, new AzureKeyCredential(admin.accessKeys[0]!), "kv-events", "controller", { tlsOptions: { ca } });
      const { details } = await receiver.receiveEvents({ maxWaitTime: 10 });
      expect(details.map((d) => [d.event.type, (d.event.data as { Version: string }).Version])).toEqual([["Microsoft.KeyVault.SecretNewVersionCreated", written.properties.version]]);
    } finally {
      const exited = exitOf(events.child);
      events.child.kill("SIGTERM");
      expect(await exited).toBe(0);
    }
  });

  it("refuses a webhook that is not https", async () => {
    const child = spawn(process.execPath, [MAIN, "--listen=127.0.0.1:0", "--imds-listen=127.0.0.1:0", "--webhook=http://127.0.0.1:1/events"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    expect(await exitOf(child)).toBe(2);
    expect(stderr).toContain("endpointUrl must be an https URL");
  });

  it("refuses a bad seed naming the field", async () => {
    writeFileSync(join(dir, "bad.yaml"), "vaults:\n  - name: v\n    secrets:\n      - name: s\n        valeu: typo\n");
    const child = spawn(process.execPath, [MAIN, "--listen=127.0.0.1:0", "--imds-listen=127.0.0.1:0", `--seed=${join(dir, "bad.yaml")}`], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    expect(await exitOf(child)).toBe(2);
    expect(stderr).toContain("seed.vaults[0].secrets[0].valeu is not a known field");
  });
});
