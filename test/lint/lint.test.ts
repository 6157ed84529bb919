// secrets-store-csi-lint on manifests: the program run as users run it, its
// verdicts (fine / refused here / mounts differently), exit status and JSON
// output. Whether its verdicts match what the upstream binaries really do is
// checked per class by test/interop/provider-parity.test.ts.
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LintResult } from "../../src/lint/report.ts";
import { runLint } from "./run.ts";

const TENANT = "00000000-0000-4000-8000-000000000000";

function spc(name: string, objects: string, extra: { namespace?: string; parameters?: Record<string, string>; secretObjects?: unknown[]; apiVersion?: string; provider?: string } = {}) {
  return {
    apiVersion: extra.apiVersion ?? "secrets-store.csi.x-k8s.io/v1",
    kind: "SecretProviderClass",
    metadata: { name, ...(extra.namespace ? { namespace: extra.namespace } : {}) },
    spec: { provider: extra.provider ?? "azure", parameters: { keyvaultName: "kv1", tenantID: TENANT, objects, ...extra.parameters }, ...(extra.secretObjects ? { secretObjects: extra.secretObjects } : {}) },
  };
}

const objects = (...items: Array<Record<string, string | number>>) =>
  ["array:", ...items.flatMap((item) => ["  - |", ...Object.entries(item).map(([k, v]) => `    ${k}: ${typeof v === "number" ? v : JSON.stringify(v)}`)])].join("\n") + "\n";

const yamlDoc = (o: unknown) => JSON.stringify(o, null, 2); // JSON is YAML

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lint-test-"));
  await mkdir(join(dir, "apps", "nested"), { recursive: true });
  await writeFile(
    join(dir, "apps", "fine.yaml"),
    [
      yamlDoc(spc("fine", objects({ objectName: "db", objectType: "secret" }, { objectName: "tls", objectType: "cert" }), { namespace: "team-a", secretObjects: [{ secretName: "db", type: "Opaque", data: [{ objectName: "db", key: "password" }] }] })),
      yamlDoc({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "not-a-class" } }),
    ].join("\n---\n"),
  );
  await writeFile(
    join(dir, "apps", "nested", "list.json"),
    JSON.stringify({
      apiVersion: "v1",
      kind: "List",
      items: [
        spc("mode-zero", objects({ objectName: "db", objectType: "secret", filePermission: "rw-r--r--" }), { namespace: "team-b" }),
        spc("dot-alias", objects({ objectName: "db", objectType: "secret", objectAlias: "./db.env" }), { namespace: "team-b" }),
      ],
    }),
  );
  await writeFile(join(dir, "differs.yaml"), yamlDoc(spc("dot-alias", objects({ objectName: "db", objectType: "secret", objectAlias: "a//b" }), { namespace: "team-c" })));
  await writeFile(
    join(dir, "notes.yaml"),
    [
      yamlDoc(spc("pfx-cert", objects({ objectName: "tls", objectType: "cert", objectFormat: "PFX", objectAliass: "typo" }), { apiVersion: "secrets-store.csi.x-k8s.io/v1alpha1" })),
      yamlDoc({ apiVersion: "secrets-store.csi.x-k8s.io/v1", kind: "SecretProviderClass", metadata: { name: "vault" }, spec: { provider: "vault", parameters: { roleName: "app" } } }),
    ].join("\n---\n"),
  );
  await writeFile(
    join(dir, "sync.yaml"),
    yamlDoc(
      spc("bad-sync", objects({ objectName: "db", objectType: "secret", objectAlias: "./db.env" }), {
        secretObjects: [
          { secretName: "s", type: "Opaque", data: [{ objectName: "./db.env", key: "a" }] },
          { secretName: "t", type: "", data: [{ objectName: "db.env", key: "a" }] },
        ],
      }),
    ),
  );
  await writeFile(
    join(dir, "extensions.yaml"),
    yamlDoc(
      spc(
        "extended",
        objects(
          { objectName: "web-*", objectType: "secret", objectTags: "team=web,env=prod", objectAlias: "web/" },
          { objectName: "feature-flag", objectType: "secret", optional: "true" },
          { objectName: "db", objectType: "secret", objectTags: "env=prod" },
        ),
        {
          namespace: "team-e",
          secretObjects: [
            { secretName: "web", type: "Opaque", data: [{ objectName: "web/web-frontend", key: "frontend" }, { objectName: "feature-flag", key: "flag" }] },
            { secretName: "typo", type: "Opaque", data: [{ objectName: "webb/web-frontend", key: "frontend" }] },
          ],
        },
      ),
    ),
  );
  await writeFile(
    join(dir, "extensions-refused.yaml"),
    [
      yamlDoc(spc("pattern-version", objects({ objectName: "web-*", objectType: "secret", objectVersion: "0123456789abcdef0123456789abcdef" }), { namespace: "team-e" })),
      yamlDoc(spc("bad-optional", objects({ objectName: "db", objectType: "secret", optional: "maybe" }), { namespace: "team-e" })),
    ].join("\n---\n"),
  );
  await writeFile(join(dir, "driver.yaml"), yamlDoc({ apiVersion: "secrets-store.csi.x-k8s.io/v1", kind: "SecretProviderClass", metadata: { name: "no-provider" }, spec: { parameters: { a: "b" } } }));
  await writeFile(join(dir, "broken.yaml"), "apiVersion: v1\nkind: [unclosed\n");
  const bound = (clientID?: string) => ({ useAzureTokenProxy: "true", ...(clientID ? { clientID } : {}) });
  await writeFile(
    join(dir, "identity-binding.yaml"),
    [
      yamlDoc(spc("bound", objects({ objectName: "db", objectType: "secret" }), { namespace: "team-d", parameters: bound("7a1c0000-0000-4000-8000-000000000001") })),
      yamlDoc(spc("unbound", objects({ objectName: "db", objectType: "secret" }), { namespace: "team-d", parameters: bound() })),
    ].join("\n---\n"),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("secrets-store-csi-lint", () => {
  it("walks directories, multi-document files and Lists, and says fine, refused here or mounts differently per class", async () => {
    const run = await runLint([join(dir, "apps"), join(dir, "differs.yaml")]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(1);
    const lines = run.stdout.split("\n");
    expect(lines).toContain(`team-a/fine (${join(dir, "apps", "fine.yaml")}): fine`);
    expect(lines).toContain(`team-b/mode-zero (${join(dir, "apps", "nested", "list.json")}): refused here`);
    expect(run.stdout).toContain('refused: mount: failed to get objectType:secret, objectName:db, objectVersion:: filePermission "rw-r--r--" is not an octal file mode such as 0644, 0640 or 0400');
    expect(run.stdout).toContain("upstream: mounts a broken volume: it writes the file with mode 0, which no one can read");
    expect(lines).toContain(`team-b/dot-alias (${join(dir, "apps", "nested", "list.json")}): mounts differently from upstream`);
    expect(run.stdout).toContain(`differs: objects[0]: objectAlias "./db.env" is written as "db.env" (upstream's driver refuses "./db.env": invalid filepath); write "db.env"`);
    expect(lines).toContain(`team-c/dot-alias (${join(dir, "differs.yaml")}): mounts differently from upstream`);
    expect(lines).toContain("4 SecretProviderClasses: 1 fine, 1 refused here, 2 mount differently from upstream");
    expect(run.stdout).not.toContain("not-a-class");
  });

  it("exits 0 when nothing is refused, and reports what works but is worth knowing", async () => {
    const run = await runLint([join(dir, "notes.yaml"), join(dir, "differs.yaml")]);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("default/pfx-cert");
    expect(run.stdout).toContain('note: objects[0]: objectFormat "PFX" has no effect on objectType cert');
    expect(run.stdout).toContain("note: objects[0]: unknown key objectAliass ignored (as upstream does): check the spelling");
    expect(run.stdout).toContain("note: apiVersion: secrets-store.csi.x-k8s.io/v1alpha1 is deprecated (served as before): use secrets-store.csi.x-k8s.io/v1");
    expect(run.stdout).toContain(`default/vault (${join(dir, "notes.yaml")}): fine`);
    expect(run.stdout).toContain('note: parameters: provider "vault" reads its own parameters; only the driver\'s checks apply here');
  });

  it("applies the driver's checks: the provider, and secretObjects that name no mounted file", async () => {
    const run = await runLint([join(dir, "driver.yaml"), join(dir, "sync.yaml")]);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain("default/no-provider");
    expect(run.stdout).toContain("refused: mount: provider not set in default/no-provider");
    expect(run.stdout).toContain('refused: secretObjects[0] (secretName s): the Secret is not synced: file matching objectName ./db.env not found in the pod (the file is "db.env": write that)');
    expect(run.stdout).toContain("refused: secretObjects[1] (secretName t): the Secret is not synced: secret type is empty");
  });

  it("--output json gives one document with every finding", async () => {
    const run = await runLint(["--output", "json", join(dir, "apps")]);
    expect(run.status).toBe(1);
    const result = JSON.parse(run.stdout) as LintResult;
    expect(result.summary).toEqual({ classes: 3, fine: 1, refused: 1, differs: 1 });
    const refused = result.classes.find((c) => c.name === "mode-zero")!;
    expect(refused).toMatchObject({ namespace: "team-b", provider: "azure", verdict: "refused" });
    expect(refused.findings).toContainEqual(expect.objectContaining({ kind: "refused", subject: "mount", upstream: "breaks" }));
    expect(result.classes.find((c) => c.name === "dot-alias")!.findings).toContainEqual(expect.objectContaining({ kind: "differs", subject: "objects[0]" }));
  });

  it("identity binding (useAzureTokenProxy) is fine with clientID, and refused without, as upstream refuses it", async () => {
    const run = await runLint([join(dir, "identity-binding.yaml")]);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain(`team-d/bound (${join(dir, "identity-binding.yaml")}): fine`);
    expect(run.stdout).toContain("note: identity: identity binding: the CSIDriver object must request tokens for api://AKSIdentityBinding (the chart does)");
    expect(run.stdout).toContain(`team-d/unbound (${join(dir, "identity-binding.yaml")}): refused here`);
    expect(run.stdout).toContain("refused: mount: failed to build auth config for mode AzureTokenProxy: clientID is required for identity binding");
    expect(run.stdout).toContain("upstream: fails too: the same message");
  });

  it("knows this provider's extensions: accepts them, and says what upstream's provider does instead", async () => {
    const run = await runLint([join(dir, "extensions.yaml")]);
    expect(run.status, run.stdout).toBe(1);
    expect(run.stdout).toContain(`team-e/extended (${join(dir, "extensions.yaml")}): refused here`);
    expect(run.stdout).toContain(
      'differs: objects[0]: objectName "web-*" is a pattern (an extension of this provider): every enabled secret whose name matches is mounted, at "web/<name>"; ' +
        "upstream's provider takes it for a literal name, which Key Vault refuses, and fails the mount",
    );
    expect(run.stdout).toContain(
      "differs: objects[0]: objectTags team=web, env=prod (an extension of this provider): only objects carrying these tags are mounted; upstream's provider ignores objectTags and mounts the object whatever its tags",
    );
    expect(run.stdout).toContain("differs: objects[2]: objectTags env=prod (an extension of this provider)");
    expect(run.stdout).toContain(
      'differs: objects[1]: optional "true" (an extension of this provider): when Key Vault does not have the object or it is disabled, the volume is mounted without it and the pod gets a Warning event; ' +
        "upstream's provider ignores optional and fails the mount then",
    );
    // a pattern's matches and an optional object's file may be synced; a path no match can have may not
    expect(run.stdout).toContain("note: secretObjects[0] (secretName web): feature-flag comes from an optional object (objects[1]): while Key Vault does not have it, the Secret is synced without the key flag");
    expect(run.stdout).not.toContain("refused: secretObjects[0]");
    expect(run.stdout).toContain("refused: secretObjects[1] (secretName typo): the Secret is not synced: file matching objectName webb/web-frontend not found in the pod");

    const refused = await runLint(["--output", "json", join(dir, "extensions-refused.yaml")]);
    const result = JSON.parse(refused.stdout) as LintResult;
    const finding = (name: string) => result.classes.find((c) => c.name === name)!.findings.find((f) => f.kind === "refused")!;
    expect(finding("pattern-version")).toMatchObject({ upstream: "refuses", message: expect.stringContaining('objectVersion cannot be given with the objectName pattern "web-*"') });
    expect(finding("bad-optional")).toMatchObject({ upstream: "mounts", upstreamDetail: "it ignores optional", message: expect.stringContaining('optional "maybe" is neither "true" nor "false"') });
  });

  it("the examples in this repository are fine, those of the extensions beyond upstream differ only by them", async () => {
    const examples = resolve(import.meta.dirname, "../../examples");
    const run = await runLint(["--output", "json", examples]);
    expect(run.status, run.stdout).toBe(0);
    const result = JSON.parse(run.stdout) as LintResult;
    expect(result.summary.refused).toBe(0);
    for (const c of result.classes) {
      if (c.source.includes("/beyond-upstream-")) {
        // the fsGroup example uses no provider extension: the driver's feature is fine to a lint
        expect(c.verdict, c.source).toBe(c.source.includes("fsgroup") ? "fine" : "differs");
        for (const f of c.findings.filter((x) => x.kind === "differs")) expect(f.message, c.source).toContain("(an extension of this provider)");
      } else {
        expect(c.verdict, `${c.source}: ${JSON.stringify(c.findings)}`).toBe("fine");
      }
    }
    expect(result.classes.filter((c) => c.source.includes("/beyond-upstream-")).length).toBeGreaterThanOrEqual(2);
  });

  it("exits 2, naming the problem, when the input cannot be read", async () => {
    const broken = await runLint([join(dir, "broken.yaml")]);
    expect(broken.status).toBe(2);
    expect(broken.stderr).toMatch(new RegExp(`^secrets-store-csi-lint: ${join(dir, "broken.yaml")}: not valid YAML: `));
    const missing = await runLint([join(dir, "absent.yaml")]);
    expect(missing).toMatchObject({ status: 2, stderr: `secrets-store-csi-lint: ${join(dir, "absent.yaml")}: no such file or directory\n` });
    const none = await runLint([]);
    expect(none.status).toBe(2);
    expect(none.stdout).toContain("Usage: secrets-store-csi-lint FILE|DIR... | --kubeconfig=PATH [--output=json]");
    const both = await runLint(["--kubeconfig=/dev/null", join(dir, "apps")]);
    expect(both).toMatchObject({ status: 2, stderr: "secrets-store-csi-lint: give either FILE|DIR arguments or --kubeconfig, not both or neither\n" });
    const badFlag = await runLint(["--output=yaml", join(dir, "apps")]);
    expect(badFlag).toMatchObject({ status: 2, stderr: 'secrets-store-csi-lint: invalid value "yaml" for flag --output: must be text or json\n' });
  });
});

describe("secrets-store-csi-lint on hostile input: every file bounded in size and time, reported by name", () => {
  // How long a test waits for one run; a run that hangs fails the test instead of holding it.
  const WAIT_MS = 60_000;
  let hostile: string;
  const good = () => yamlDoc(spc("good", objects({ objectName: "db", objectType: "secret" }), { namespace: "ok" }));

  beforeAll(async () => {
    hostile = await mkdtemp(join(tmpdir(), "lint-hostile-"));
    // 1 MiB of unique keys beside a class (the YAML library's own duplicate check took 92 s on it)
    const keys: string[] = ["kind: ConfigMap", "apiVersion: v1", "data:"];
    for (let i = 0; keys.length * 14 < 1024 * 1024; i++) keys.push(`  key-${i}: v`);
    await writeFile(join(hostile, "keys.yaml"), `${good()}\n---\n${keys.join("\n")}\n`);
    await writeFile(join(hostile, "big.yaml"), `${good()}\n---\n# ${"x".repeat(5 * 1024 * 1024)}\n`);
    await mkdir(join(hostile, "tree"));
    await writeFile(join(hostile, "tree", "a-good.yaml"), good());
    execFileSync("mkfifo", [join(hostile, "tree", "fifo.yaml")]);
    await symlink("/dev/zero", join(hostile, "tree", "zero.yaml"));
    await symlink("loop-b.yaml", join(hostile, "tree", "loop-a.yaml"));
    await symlink("loop-a.yaml", join(hostile, "tree", "loop-b.yaml"));
    await writeFile(
      join(hostile, "names.yaml"),
      yamlDoc(spc("evil\u001b[2J\nok/forged (x): fine\n0 SecretProviderClasses: 0 fine, 0 refused here, 0 mount differently from upstream", objects({ objectName: "db", objectType: "secret" }), { namespace: "ns\u009b31m" })),
    );
  });

  afterAll(async () => {
    if (hostile) await rm(hostile, { recursive: true, force: true });
  });

  it("1 MiB of unique keys is read, and its class checked", async () => {
    const run = await runLint([join(hostile, "keys.yaml")], { waitMs: WAIT_MS });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`ok/good (${join(hostile, "keys.yaml")}): fine`);
  });

  it("a file over --max-file-bytes, and one slower to parse than --timeout, are reported by name and not read", async () => {
    const big = await runLint([join(hostile, "big.yaml")], { waitMs: WAIT_MS });
    expect(big.status).toBe(2);
    expect(big.stderr).toBe(`secrets-store-csi-lint: ${join(hostile, "big.yaml")}: 5.0 MiB, more than the 4.0 MiB read per file (--max-file-bytes)\n`);
    const slow = await runLint(["--timeout=50ms", join(hostile, "keys.yaml")], { waitMs: WAIT_MS });
    expect(slow.status).toBe(2);
    expect(slow.stderr).toBe(`secrets-store-csi-lint: ${join(hostile, "keys.yaml")}: took more than 0.05 s to parse (--timeout): not read\n`);
  });

  it("a FIFO, /dev/zero (named or through a *.yaml link) and a symlink loop are refused by name before anything is read; the other files are checked", async () => {
    const run = await runLint([join(hostile, "tree"), "/dev/zero"], { waitMs: WAIT_MS });
    expect(run.status).toBe(2);
    expect(run.stderr.split("\n").filter(Boolean).sort()).toEqual(
      [
        `secrets-store-csi-lint: ${join(hostile, "tree", "fifo.yaml")}: a FIFO, not a regular file: not read`,
        `secrets-store-csi-lint: ${join(hostile, "tree", "loop-a.yaml")}: too many levels of symbolic links (a symlink loop?)`,
        `secrets-store-csi-lint: ${join(hostile, "tree", "loop-b.yaml")}: too many levels of symbolic links (a symlink loop?)`,
        `secrets-store-csi-lint: ${join(hostile, "tree", "zero.yaml")}: a character device, not a regular file: not read`,
        "secrets-store-csi-lint: /dev/zero: a character device, not a regular file: not read",
      ].sort(),
    );
    expect(run.stdout).toContain(`ok/good (${join(hostile, "tree", "a-good.yaml")}): fine`);
    expect(run.stdout).toContain("1 SecretProviderClass: 1 fine, 0 refused here, 0 mount differently from upstream");
  });

  it("control characters in class names are printed escaped: no forged line, no terminal escape", async () => {
    const run = await runLint([join(hostile, "names.yaml")], { waitMs: WAIT_MS });
    expect(run.status).toBe(0);
    const lines = run.stdout.split("\n").filter(Boolean);
    expect(lines).toEqual([
      `ns\\u009b31m/evil\\u001b[2J\\nok/forged (x): fine\\n0 SecretProviderClasses: 0 fine, 0 refused here, 0 mount differently from upstream (${join(hostile, "names.yaml")}): fine`,
      "  note: identity: service principal: each pod's nodePublishSecretRef must hold clientid and clientsecret",
      "1 SecretProviderClass: 1 fine, 0 refused here, 0 mount differently from upstream",
    ]);
    expect(run.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    // JSON carries the names as they are, escaped by JSON itself
    const json = await runLint(["--output=json", join(hostile, "names.yaml")], { waitMs: WAIT_MS });
    expect((JSON.parse(json.stdout) as LintResult).classes[0]!.name).toBe(
      "evil\u001b[2J\nok/forged (x): fine\n0 SecretProviderClasses: 0 fine, 0 refused here, 0 mount differently from upstream",
    );
  });
});
