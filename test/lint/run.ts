// Runs the secrets-store-csi-lint program as users do, and returns what it printed.
import { spawn } from "node:child_process";
import { resolve } from "node:path";

const MAIN = resolve(import.meta.dirname, "../../src/lint/main.ts");

export interface LintRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runLint(args: string[]): Promise<LintRun> {
  return new Promise((done, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => done({ status, stdout, stderr }));
  });
}
