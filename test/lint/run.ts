// Runs the secrets-store-csi-lint program as users do, and returns what it printed.
import { spawn } from "node:child_process";
import { resolve } from "node:path";

const MAIN = resolve(import.meta.dirname, "../../src/lint/main.ts");

export interface LintRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the lint; with `waitMs`, a run still going after that long is killed
 * and the promise rejects (a bound on how long a test waits, not a timing
 * assertion).
 */
export function runLint(args: string[], options: { waitMs?: number } = {}): Promise<LintRun> {
  return new Promise((done, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer =
      options.waitMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill("SIGKILL");
            reject(new Error(`secrets-store-csi-lint ${args.join(" ")} did not finish within ${options.waitMs} ms; it printed:\n${stdout}${stderr}`));
          }, options.waitMs);
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      done({ status, stdout, stderr });
    });
  });
}
