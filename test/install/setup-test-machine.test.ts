// scripts/setup-test-machine.sh, which `npm test` runs first: on a ready
// machine it installs nothing; where something is missing it names each
// package and why, and it stops with a line naming what failed. "Missing" is
// made without touching the machine: inside a private mount namespace,
// /dev/null (not executable), an empty file or a dpkg status file without the
// package is bind-mounted over what the script checks.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../scripts/generate-deploy.ts";
import { requireRoot } from "../support/driver-process.ts";

const SCRIPT = join(REPO_ROOT, "scripts", "setup-test-machine.sh");

/** The script's PACKAGES table: package and the first check that shows it is installed. */
function packageChecks(): { pkg: string; check: string }[] {
  const table = /^PACKAGES=\(\n([\s\S]*?)^\)/m.exec(readFileSync(SCRIPT, "utf8"))?.[1] ?? "";
  return [...table.matchAll(/^\s+"([^|"]+)\|([^|"]+)\|[^"]*"$/gm)].map((m) => ({ pkg: m[1]!, check: m[2]!.split(" ")[0]! }));
}

/** Runs `inner` (bash) in a private mount namespace; returns exit status and stderr. */
function inPrivateMounts(inner: string, env: Record<string, string> = {}): { status: number | null; stderr: string } {
  const run = spawnSync("unshare", ["--mount", "--propagation", "private", "bash", "-euo", "pipefail", "-c", inner], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    encoding: "utf8",
    timeout: 120_000,
  });
  if (run.error) throw run.error;
  return { status: run.status, stderr: run.stderr };
}

const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

describe("setup-test-machine.sh", () => {
  let dir: string;

  beforeAll(async () => {
    requireRoot();
    dir = await mkdtemp(join(tmpdir(), "setup-test-machine-"));
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("installs nothing on a machine that has everything, and says so", () => {
    const run = spawnSync("bash", [SCRIPT], { cwd: REPO_ROOT, encoding: "utf8", timeout: 600_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).not.toMatch(/missing|installing/);
    expect(run.stderr.trim().split("\n").pop()).toMatch(/^setup-test-machine: the machine has what the tests need: Debian packages, Go-built tools, helm \(\d+ ms\)$/);
  });

  it("names every missing package and why, and without root stops naming the apt-get command", async () => {
    const checks = packageChecks();
    expect(checks.map((c) => c.pkg)).toEqual(expect.arrayContaining(["containerd", "busybox-static", "buildah", "prometheus", "mount"]));
    // dpkg's status file with every package in it reported as not installed.
    const status = readFileSync("/var/lib/dpkg/status", "utf8").replace(/^Status: install ok installed$/gm, "Status: deinstall ok config-files");
    await writeFile(join(dir, "dpkg-status"), status);
    await writeFile(join(dir, "empty"), "");
    const hide: string[] = [];
    for (const { check } of checks) {
      if (check.startsWith("dpkg:")) hide.push(`mount --bind ${q(join(dir, "dpkg-status"))} /var/lib/dpkg/status`);
      else if (check.startsWith("file:")) hide.push(`mount --bind ${q(join(dir, "empty"))} ${q(check.slice(5))}`);
      else if (check.startsWith("cmd:")) hide.push(`mount --bind /dev/null "$(command -v ${q(check.slice(4))})"`);
      else hide.push(`mount --bind /dev/null ${q(check)}`);
    }
    // mount itself is hidden last: every bind before it still needs it.
    hide.sort((a, b) => Number(a.includes("command -v 'mount'")) - Number(b.includes("command -v 'mount'")));
    const run = inPrivateMounts(`${hide.join("\n")}\nexec setpriv --reuid=65534 --regid=65534 --clear-groups bash ${q(SCRIPT)}`);
    expect(run.status, run.stderr).toBe(1);
    for (const { pkg, check } of checks) {
      const subject = check.replace(/^(cmd|dpkg|file):/, "");
      expect(run.stderr).toMatch(new RegExp(`^setup-test-machine: missing Debian package ${pkg} \\([^)]*${subject.replaceAll(".", "\\.")}[^)]*\\): `, "m"));
    }
    const names = checks.map((c) => c.pkg).join(" ");
    expect(run.stderr.trim().split("\n").pop()).toBe(
      `setup-test-machine: FAILED: installing ${names} needs root (the tests need root too: they mount tmpfs); ` +
        `run as root, or: apt-get install -y --no-install-recommends ${names}`,
    );
  });

  it("stops with a line naming the Go-built tools when they cannot be built", async () => {
    // An empty tools cache and no usable go: install-tools.sh must build and cannot.
    const tools = join(dir, "tools");
    const run = inPrivateMounts(`if go="$(command -v go)"; then mount --bind /dev/null "$go"; fi\nexec bash ${q(SCRIPT)}`, { SSCSI_TOOLS_DIR: tools });
    expect(run.status, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/^install-tools: /m);
    expect(run.stderr.trim().split("\n").pop()).toMatch(/^setup-test-machine: FAILED: test\/harness\/install-tools\.sh \(etcd, kube-apiserver, .*\) failed: see its messages above$/);
  });
});
