// Our Azure provider from its sources, as a node runs it beside the driver:
// its socket in the driver's provider directory, talking to the Key Vault
// emulator over HTTPS through the DNS hook. Shared by the end-to-end tests.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Emulator } from "../../src/emulator/index.ts";
import { waitFor } from "../harness/kube.ts";
import { DNS_HOOK, lastLines, MAIN } from "../provider/env.ts";

export interface AzureProviderProcess {
  process: ChildProcess;
  /** Everything it printed so far. */
  output(): string;
  stop(): void;
}

/** Starts the provider with its socket at `<providerDir>/azure.sock`; throws with its last lines if it exits first. */
export async function startAzureProvider(providerDir: string, emulator: Emulator, emulatorAddress: string): Promise<AzureProviderProcess> {
  const socket = join(providerDir, "azure.sock");
  const child = spawn(
    process.execPath,
    ["--import", resolve(DNS_HOOK), resolve(MAIN), `--endpoint=unix://${socket}`, "--healthz-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0"],
    { env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caCertPath, SSCSI_EMULATOR_ADDRESS: emulatorAddress }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  child.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  await waitFor(() => existsSync(socket) || child.exitCode !== null, { description: "the provider socket" });
  if (child.exitCode !== null) throw new Error(`the provider exited with status ${child.exitCode}; its last lines:\n${lastLines(log)}`);
  return { process: child, output: () => log, stop: () => void child.kill("SIGTERM") };
}
