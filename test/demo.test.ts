// `npm run demo` keeps working: the script runs the emulator, provider and
// driver as real processes, mounts, rotates and cleans up.
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { requireRoot } from "./support/driver-process.ts";

describe("npm run demo", () => {
  it("mounts the example class, shows the rotation, and cleans up", () => {
    requireRoot();
    const repo = resolve(import.meta.dirname, "..");
    const result = spawnSync(process.execPath, [resolve(repo, "scripts/demo.ts")], { cwd: repo, encoding: "utf8", timeout: 120_000 });
    const output = `${result.stdout}\n${result.stderr}`;
    expect(result.status, output).toBe(0);
    expect(output).toMatch(/db-password +0644 +28 bytes +"correct-horse-battery-staple"/);
    expect(output).toMatch(/signing-key .* PEM: PUBLIC KEY/);
    expect(output).toMatch(/tls\/web\.pem .* PEM: PRIVATE KEY, CERTIFICATE, CERTIFICATE, CERTIFICATE/);
    expect(output).toMatch(/db-password: "correct-horse-battery-staple" -> "rotated-at-/);
    expect(output).toContain("unmounted and removed: true");
    expect(output).toContain("demo complete");
  }, 150_000);
});
