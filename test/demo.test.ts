// `npm run demo` keeps working: the script runs the emulator, provider and
// driver as real processes, mounts, rotates, then rotates again by Key Vault
// event through the controller's webhook with polling at 1 h, and cleans up,
// and it does so with the programs' default ports (8095, 9808, 8898, 8989,
// 8085, 8081) already taken.
import { spawn } from "node:child_process";
import type { Server } from "node:net";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireRoot } from "./support/driver-process.ts";
import { occupyPort, releasePorts } from "./support/ports.ts";

const DEFAULT_PORTS = [8095, 9808, 8898, 8989, 8085, 8081];
let holders: Array<Server | undefined> = [];

beforeAll(async () => {
  holders = await Promise.all(DEFAULT_PORTS.map(occupyPort));
});

afterAll(() => releasePorts(holders));

describe("npm run demo", () => {
  it("mounts the example class, shows the rotation, and cleans up, with the default ports taken", async () => {
    requireRoot();
    const repo = resolve(import.meta.dirname, "..");
    const child = spawn(process.execPath, [resolve(repo, "scripts/demo.ts")], { cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGINT"), 240_000);
    const status = await new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    clearTimeout(timer);
    expect(status, output).toBe(0);
    expect(output).toMatch(/db-password +0644 +28 bytes +"correct-horse-battery-staple"/);
    expect(output).toMatch(/signing-key .* PEM: PUBLIC KEY/);
    expect(output).toMatch(/tls\/web\.pem .* PEM: PRIVATE KEY, CERTIFICATE, CERTIFICATE, CERTIFICATE/);
    expect(output).toMatch(/db-password: "correct-horse-battery-staple" -> "rotated-at-/);
    expect(output).toContain("unmounted and removed: true");
    // The same rotation by event: the subscription validated, the file swapped although the driver polls hourly.
    expect(output).toMatch(/Event Grid subscription "demo" -> https:\/\/127\.[0-9.]+:\d+\/keyvault-events: Succeeded/);
    expect(output).toMatch(/db-password: "rotated-at-[^"]+" -> "event-rotated-at-[^"]+" after \d+ ms \(the driver polls once an hour\)/);
    expect(output).toContain("controller: Microsoft.KeyVault.SecretNewVersionCreated -> refreshed");
    expect(output).toMatch(/secretproviderclasspodstatus demo-pod-demo-demo-azure: refresh-requested-at=\S+ refresh-version=[0-9a-f]{32}/);
    expect(output).toContain("demo complete");
  }, 300_000);
});
