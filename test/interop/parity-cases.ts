// The SecretProviderClasses the provider parity test sends to upstream's Azure
// provider and to ours: every object type, format and encoding, aliases,
// versions and history, chains (under both provider flags), identities and
// the error paths. Each case states the decision it pins:
//   same        upstream's result is a valid volume; ours must return the same
//               files (paths, modes, bytes) and object versions
//   normalised  upstream's provider answers, but upstream's driver refuses the
//               answer (unclean path); ours mounts the cleaned path and warns
//   refused     upstream's answer is not a valid volume (mode-0 files, two
//               objects on one path, sticky bits, no objects...); ours refuses
//               with a message that says what to change
//   limit       upstream mounts it; ours refuses it because it passes a bound
//               this provider keeps (the message names the bound)
//   both-refuse both fail the mount
//   extension   a feature of this provider beyond upstream (a pattern,
//               objectTags, optional): ours mounts exactly the files the case
//               names (or refuses as it says), upstream's provider fails the
//               mount or ignores the feature
// docs/compatibility.md is generated from the outcomes.

export type Identity = "sp" | "wi" | "ib" | "mi-system" | "mi-user" | "none";
export type Obj = Record<string, string | number>;

export type Expectation =
  | { outcome: "same"; /** a warning ours gives (from the lint) */ warning?: RegExp }
  | { outcome: "normalised"; upstream: RegExp; paths: Record<string, string>; warning: RegExp }
  | { outcome: "refused"; upstream: RegExp; here: RegExp }
  | { outcome: "limit"; here: RegExp }
  | { outcome: "both-refuse"; here?: RegExp; upstream?: RegExp }
  | { outcome: "extension"; upstream: "fails" | "mounts"; /** the paths ours mounts, in order, or how ours refuses */ here: string[] | RegExp; versions?: Array<{ id: string; version: string }> };

export interface ParityCase {
  id: string;
  group: string;
  title: string;
  /** The objects list (rendered as the usual `array:` of `- |` blocks)… */
  objects?: Obj[];
  /** …or the objects parameter verbatim. */
  objectsText?: string;
  /** SecretProviderClass parameters over the defaults (keyvaultName, tenantID); undefined removes one. */
  parameters?: Record<string, string | undefined>;
  identity?: Identity;
  /** nodePublishSecretRef data instead of the identity's. */
  secrets?: Record<string, string> | null;
  /** Volume attributes kubelet sends, over the defaults; undefined removes one. */
  attributes?: Record<string, string | undefined>;
  /** The audiences kubelet sends tokens for (default: the identity's; both the chart's for "ib"). */
  audiences?: string[];
  /** The permission field (the driver always sends "420"). */
  permission?: string;
  expect: Expectation;
  /**
   * What secrets-store-csi-lint says, when not what the outcome implies (same:
   * fine; normalised: differs; refused: refused, upstream breaks it; limit:
   * refused, upstream mounts it; both-refuse: refused, upstream fails too).
   * Failures that need Key Vault's answer are fine to a lint.
   */
  lint?: { verdict: "fine" | "refused" | "differs"; upstream?: "refuses" | "breaks" | "mounts" };
}

/** Fails only when Key Vault (or Entra ID, or the pod) answers: nothing a lint can see. */
const atMountTime = { verdict: "fine" } as const;

/** Placeholder for a version id: `{{secrets/s-multi@1}}` is s-multi's second-oldest version. */
export const version = (collection: "secrets" | "keys" | "certificates", name: string, index: number) => `{{${collection}/${name}@${index}}}`;

const secret = (name: string, extra: Obj = {}): Obj => ({ objectName: name, objectType: "secret", ...extra });
const key = (name: string, extra: Obj = {}): Obj => ({ objectName: name, objectType: "key", ...extra });
const cert = (name: string, extra: Obj = {}): Obj => ({ objectName: name, objectType: "cert", ...extra });
const same: Expectation = { outcome: "same" };

const TYPES = "Object types, formats and encodings";
const CERTS = "Certificates and chains";
const PATHS = "Aliases and file paths";
const VERSIONS = "Versions and history";
const MODES = "File permissions";
const LISTS = "The objects list";
const IDENTITIES = "Identities";
const PARAMS = "Vault, tenant and cloud";
const ERRORS = "Key Vault errors";
const EXTENSIONS = "Extensions beyond upstream: patterns, objectTags, optional";

/** What secrets-store-csi-lint says of a class using an extension: it mounts differently from upstream. */
const differs = { verdict: "differs" } as const;

export const PARITY_CASES: ParityCase[] = [
  // -- object types, formats, encodings
  { id: "secret-utf8", group: TYPES, title: "secret, default encoding", objects: [secret("s-plain")], expect: same },
  { id: "secret-utf8-explicit", group: TYPES, title: "secret, objectEncoding utf-8", objects: [secret("s-plain", { objectEncoding: "utf-8" })], expect: same },
  { id: "secret-hex", group: TYPES, title: "secret, objectEncoding hex", objects: [secret("s-hex", { objectEncoding: "hex" })], expect: same },
  { id: "secret-base64", group: TYPES, title: "secret, objectEncoding base64", objects: [secret("s-b64", { objectEncoding: "base64" })], expect: same },
  { id: "secret-base64-upper", group: TYPES, title: "secret, objectEncoding BASE64 (upper case)", objects: [secret("s-b64", { objectEncoding: "BASE64" })], expect: same },
  { id: "secret-whitespace", group: TYPES, title: "secret value with surrounding whitespace (written verbatim)", objects: [secret("s-padded")], expect: same },
  {
    id: "secret-encoding-invalid",
    group: TYPES,
    title: "objectEncoding base32",
    objects: [secret("s-plain", { objectEncoding: "base32" })],
    expect: { outcome: "both-refuse", here: /invalid objectEncoding: base32, should be hex, base64 or utf-8/ },
  },
  { id: "secret-hex-bad-value", group: TYPES, title: "objectEncoding hex on a value that is not hex", objects: [secret("s-text", { objectEncoding: "hex" })], expect: { outcome: "both-refuse" }, lint: atMountTime },
  { id: "secret-base64-bad-value", group: TYPES, title: "objectEncoding base64 on a value that is not base64", objects: [secret("s-text", { objectEncoding: "base64" })], expect: { outcome: "both-refuse" }, lint: atMountTime },
  { id: "key-rsa", group: TYPES, title: "key, RSA 2048", objects: [key("key-rsa")], expect: same },
  { id: "key-rsa-hsm", group: TYPES, title: "key, RSA-HSM 3072", objects: [key("key-rsa-hsm")], expect: same },
  { id: "key-p256", group: TYPES, title: "key, EC P-256", objects: [key("key-p256")], expect: same },
  { id: "key-p384-hsm", group: TYPES, title: "key, EC-HSM P-384", objects: [key("key-p384")], expect: same },
  { id: "key-p521", group: TYPES, title: "key, EC P-521", objects: [key("key-p521")], expect: same },
  {
    id: "key-encoding",
    group: TYPES,
    title: "objectEncoding on a key",
    objects: [key("key-rsa", { objectEncoding: "base64" })],
    expect: { outcome: "both-refuse", here: /objectEncoding only supported for objectType: secret/ },
  },
  { id: "cert-pem-format-upper", group: TYPES, title: "objectFormat PEM (upper case) on a cert", objects: [cert("cert-pfx", { objectFormat: "PEM" })], expect: same },
  {
    id: "cert-pfx-upper",
    group: TYPES,
    title: "objectFormat PFX (upper case) on a cert: upstream ignores it and writes PEM",
    objects: [cert("cert-pfx", { objectFormat: "PFX" })],
    expect: { outcome: "same", warning: /objectFormat "PFX" has no effect on objectType cert/ },
  },
  {
    id: "key-pfx-upper",
    group: TYPES,
    title: "objectFormat Pfx (mixed case) on a key: upstream ignores it",
    objects: [key("key-rsa", { objectFormat: "Pfx" })],
    expect: { outcome: "same", warning: /objectFormat "Pfx" has no effect on objectType key/ },
  },
  {
    id: "cert-pfx-lower",
    group: TYPES,
    title: "objectFormat pfx on a cert",
    objects: [cert("cert-pfx", { objectFormat: "pfx" })],
    expect: { outcome: "both-refuse", here: /PFX format only supported for objectType: secret/ },
  },
  { id: "format-invalid", group: TYPES, title: "objectFormat der", objects: [secret("s-plain", { objectFormat: "der" })], expect: { outcome: "both-refuse", here: /invalid objectFormat: der, should be PEM or PFX/ } },
  { id: "type-capitalised", group: TYPES, title: "objectType Secret (capitalised)", objects: [{ objectName: "s-plain", objectType: "Secret" }], expect: { outcome: "both-refuse", here: /Invalid vaultObjectTypes/ } },
  { id: "type-missing", group: TYPES, title: "no objectType", objects: [{ objectName: "s-plain" }], expect: { outcome: "both-refuse", here: /Invalid vaultObjectTypes/ } },
  { id: "mixed-types", group: TYPES, title: "a secret, a key and a cert in one class, in list order", objects: [cert("cert-ec"), secret("s-plain"), key("key-p256")], expect: same },

  // -- certificates and chains
  { id: "cert", group: CERTS, title: "cert (PKCS#12-backed): the leaf certificate", objects: [cert("cert-pfx")], expect: same },
  { id: "cert-pem-backed", group: CERTS, title: "cert (PEM-backed)", objects: [cert("cert-pem")], expect: same },
  { id: "cert-ec", group: CERTS, title: "cert, EC key", objects: [cert("cert-ec")], expect: same },
  { id: "cert-secret-pfx-backed", group: CERTS, title: "secret of a PKCS#12 certificate: key and chain as PEM", objects: [secret("cert-pfx")], expect: same },
  { id: "cert-secret-ec", group: CERTS, title: "secret of an EC certificate", objects: [secret("cert-ec")], expect: same },
  { id: "cert-secret-generated-chain", group: CERTS, title: "secret of a certificate issued by root → intermediate", objects: [secret("cert-generated-chain")], expect: same },
  { id: "cert-secret-unrelated", group: CERTS, title: "secret of a PFX whose certificates do not chain (original order kept)", objects: [secret("cert-unrelated")], expect: same },
  { id: "cert-secret-pem-backed", group: CERTS, title: "secret of a PEM certificate: stored PEM verbatim", objects: [secret("cert-pem")], expect: same },
  { id: "cert-secret-pfx", group: CERTS, title: "secret of a certificate, objectFormat pfx: base64 text", objects: [secret("cert-pfx", { objectFormat: "pfx" })], expect: same },
  { id: "cert-secret-pfx-upper", group: CERTS, title: "secret of a certificate, objectFormat PFX (upper case)", objects: [secret("cert-pfx", { objectFormat: "PFX" })], expect: same },
  {
    id: "cert-secret-pfx-binary",
    group: CERTS,
    title: "secret of a certificate, objectFormat pfx + objectEncoding base64: binary PFX",
    objects: [secret("cert-pfx", { objectFormat: "pfx", objectEncoding: "base64" })],
    expect: same,
  },
  {
    id: "cert-secret-pem-as-pfx",
    group: CERTS,
    title: "secret of a PEM certificate as pfx + base64 (upstream issue #1945)",
    objects: [secret("cert-pem", { objectFormat: "pfx", objectEncoding: "base64" })],
    expect: { outcome: "both-refuse" }, lint: atMountTime,
  },
  { id: "cert-secret-alias-dir", group: CERTS, title: "secret of a certificate under tls/server.pem", objects: [secret("cert-pfx", { objectAlias: "tls/server.pem" })], expect: same },

  // -- aliases and paths
  { id: "alias", group: PATHS, title: "objectAlias", objects: [secret("s-plain", { objectAlias: "password.txt" })], expect: same },
  { id: "alias-subdir", group: PATHS, title: "objectAlias in a sub-directory", objects: [secret("s-plain", { objectAlias: "app/config/password" })], expect: same },
  { id: "alias-underscore", group: PATHS, title: "objectAlias with characters Key Vault names cannot have", objects: [secret("s-plain", { objectAlias: "DB_PASSWORD.env" })], expect: same },
  { id: "alias-backslash", group: PATHS, title: "objectAlias with a backslash (an ordinary character on Linux)", objects: [secret("s-plain", { objectAlias: "a\\b" })], expect: same },
  { id: "same-object-twice", group: PATHS, title: "one object under two aliases", objects: [secret("s-plain", { objectAlias: "first" }), secret("s-plain", { objectAlias: "second" })], expect: same },
  {
    id: "alias-dot-slash",
    group: PATHS,
    title: "objectAlias ./x",
    objects: [secret("s-plain", { objectAlias: "./x" })],
    expect: { outcome: "normalised", upstream: /invalid filepath: "\.\/x"/, paths: { "./x": "x" }, warning: /objectAlias "\.\/x" is written as "x"/ },
  },
  {
    id: "alias-double-slash",
    group: PATHS,
    title: "objectAlias a//b",
    objects: [secret("s-plain", { objectAlias: "a//b" })],
    expect: { outcome: "normalised", upstream: /invalid filepath: "a\/\/b"/, paths: { "a//b": "a/b" }, warning: /objectAlias "a\/\/b" is written as "a\/b"/ },
  },
  {
    id: "alias-trailing-slash",
    group: PATHS,
    title: "objectAlias dir/",
    objects: [secret("s-plain", { objectAlias: "dir/" })],
    expect: { outcome: "normalised", upstream: /invalid filepath: "dir\/"/, paths: { "dir/": "dir" }, warning: /objectAlias "dir\/" is written as "dir"/ },
  },
  {
    id: "alias-dot-segment",
    group: PATHS,
    title: "objectAlias a/./b",
    objects: [secret("s-plain", { objectAlias: "a/./b" })],
    expect: { outcome: "normalised", upstream: /invalid filepath: "a\/\.\/b"/, paths: { "a/./b": "a/b" }, warning: /objectAlias "a\/\.\/b" is written as "a\/b"/ },
  },
  { id: "alias-dotdot", group: PATHS, title: "objectAlias ../x", objects: [secret("s-plain", { objectAlias: "../x" })], expect: { outcome: "both-refuse", here: /file name must not contain '\.\.'/ } },
  { id: "alias-dotdot-inside", group: PATHS, title: "objectAlias a..b", objects: [secret("s-plain", { objectAlias: "a..b" })], expect: { outcome: "both-refuse", here: /file name must not contain '\.\.'/ } },
  { id: "alias-absolute", group: PATHS, title: "objectAlias /etc/x", objects: [secret("s-plain", { objectAlias: "/etc/x" })], expect: { outcome: "both-refuse", here: /file name must be a relative path/ } },
  {
    id: "alias-duplicate",
    group: PATHS,
    title: "two objects with the same objectAlias",
    objects: [secret("s-plain", { objectAlias: "same" }), secret("s-hex", { objectAlias: "same" })],
    expect: { outcome: "refused", upstream: /two files at "same"/, here: /file "same" would be written by both .*give one of them a different objectAlias/ },
  },
  {
    id: "alias-file-and-dir",
    group: PATHS,
    title: "objectAlias a next to objectAlias a/b",
    objects: [secret("s-plain", { objectAlias: "a" }), secret("s-hex", { objectAlias: "a/b" })],
    expect: { outcome: "refused", upstream: /"a" is both a file and a directory/, here: /file "a" would be written by both .*give one of them a different objectAlias/ },
  },
  {
    id: "alias-history-dot-slash",
    group: PATHS,
    title: "objectAlias ./h with objectVersionHistory 2 (upstream joins the path, which cleans it)",
    objects: [secret("s-multi", { objectAlias: "./h", objectVersionHistory: 2 })],
    expect: { outcome: "same", warning: /objectAlias "\.\/h" is written as "h"/ },
  },

  // -- versions and history
  { id: "version-pinned-secret", group: VERSIONS, title: "objectVersion pinned (secret)", objects: [secret("s-multi", { objectVersion: version("secrets", "s-multi", 1) })], expect: same },
  { id: "version-pinned-key", group: VERSIONS, title: "objectVersion pinned (key)", objects: [key("key-multi", { objectVersion: version("keys", "key-multi", 0) })], expect: same },
  { id: "version-pinned-cert", group: VERSIONS, title: "objectVersion pinned (cert)", objects: [cert("cert-multi", { objectVersion: version("certificates", "cert-multi", 1) })], expect: same },
  { id: "version-missing", group: VERSIONS, title: "objectVersion that does not exist", objects: [secret("s-plain", { objectVersion: "0123456789abcdef0123456789abcdef" })], expect: { outcome: "both-refuse" }, lint: atMountTime },
  { id: "version-latest-single", group: VERSIONS, title: "objectVersion latest without history (upstream asks Key Vault for a version named latest)", objects: [secret("s-plain", { objectVersion: "latest" })], expect: { outcome: "both-refuse" }, lint: atMountTime },
  { id: "history-2", group: VERSIONS, title: "objectVersionHistory 2: N+1 files, disabled versions skipped", objects: [secret("s-multi", { objectVersionHistory: 2 })], expect: same },
  { id: "history-10", group: VERSIONS, title: "objectVersionHistory 10 with 4 enabled versions", objects: [secret("s-multi", { objectVersionHistory: 10 })], expect: same },
  { id: "history-101", group: VERSIONS, title: "objectVersionHistory 101 with 4 enabled versions", objects: [secret("s-multi", { objectVersionHistory: 101 })], expect: same },
  {
    id: "history-1001",
    group: VERSIONS,
    title: "objectVersionHistory 1001 with 4 enabled versions",
    objects: [secret("s-multi", { objectVersionHistory: 1001 })],
    expect: { outcome: "limit", here: /objectVersionHistory 1001 is more than this provider reads \(at most 1000/ },
  },
  { id: "history-1", group: VERSIONS, title: "objectVersionHistory 1 (one version, no sub-directory)", objects: [secret("s-multi", { objectVersionHistory: 1 })], expect: same },
  { id: "history-0", group: VERSIONS, title: "objectVersionHistory 0", objects: [secret("s-multi", { objectVersionHistory: 0 })], expect: same },
  { id: "history-negative", group: VERSIONS, title: "objectVersionHistory -1 (one version)", objects: [secret("s-multi", { objectVersionHistory: -1 })], expect: same },
  { id: "history-alias", group: VERSIONS, title: "objectVersionHistory 3 with an objectAlias", objects: [secret("s-multi", { objectAlias: "versions/db", objectVersionHistory: 3 })], expect: same },
  { id: "history-pinned-start", group: VERSIONS, title: "objectVersionHistory 2 starting at a pinned version", objects: [secret("s-multi", { objectVersion: version("secrets", "s-multi", 2), objectVersionHistory: 2 })], expect: same },
  { id: "history-latest", group: VERSIONS, title: "objectVersionHistory 2 with objectVersion latest", objects: [secret("s-multi", { objectVersion: "latest", objectVersionHistory: 2 })], expect: same },
  {
    id: "history-pinned-missing",
    group: VERSIONS,
    title: "objectVersionHistory 2 starting at a version that does not exist",
    objects: [secret("s-multi", { objectVersion: "0123456789abcdef0123456789abcdef", objectVersionHistory: 2 })],
    expect: { outcome: "refused", upstream: /missing object versions/, here: /version 0123456789abcdef0123456789abcdef is not among the enabled versions of s-multi/ }, lint: atMountTime,
  },
  {
    id: "history-pinned-missing-with-others",
    group: VERSIONS,
    title: "as above, next to another object (upstream silently leaves the object out)",
    objects: [secret("s-plain"), secret("s-multi", { objectVersion: "0123456789abcdef0123456789abcdef", objectVersionHistory: 2 })],
    expect: { outcome: "refused", upstream: /no file for objects\[1\]/, here: /version 0123456789abcdef0123456789abcdef is not among the enabled versions of s-multi/ }, lint: atMountTime,
  },
  { id: "history-key", group: VERSIONS, title: "objectVersionHistory 2 on a key", objects: [key("key-multi", { objectVersionHistory: 2 })], expect: same },
  { id: "history-cert", group: VERSIONS, title: "objectVersionHistory 2 on a cert", objects: [cert("cert-multi", { objectVersionHistory: 2 })], expect: same },
  { id: "history-cert-secret", group: VERSIONS, title: "objectVersionHistory 2 on a certificate's secret", objects: [secret("cert-multi", { objectVersionHistory: 2 })], expect: same },
  {
    id: "history-quoted",
    group: VERSIONS,
    title: 'objectVersionHistory "5" (quoted)',
    objectsText: 'array:\n  - |\n    objectName: s-multi\n    objectType: secret\n    objectVersionHistory: "5"\n',
    expect: { outcome: "both-refuse", here: /cannot unmarshal !!str `5` into int32/ },
  },

  // -- file permissions
  { id: "mode-0600", group: MODES, title: "filePermission 0600", objects: [secret("s-plain", { filePermission: "0600" })], expect: same },
  { id: "mode-600", group: MODES, title: "filePermission 600 (no leading zero)", objects: [secret("s-plain", { filePermission: "600" })], expect: same },
  { id: "mode-0755", group: MODES, title: "filePermission 0755", objects: [secret("s-plain", { filePermission: "0755" })], expect: same },
  { id: "mode-0400-history", group: MODES, title: "filePermission 0400 with objectVersionHistory 2", objects: [secret("s-multi", { filePermission: "0400", objectVersionHistory: 2 })], expect: same },
  { id: "mode-request-default", group: MODES, title: "no filePermission: the request's permission (0640 here)", objects: [secret("s-plain")], permission: "416", expect: same },
  {
    id: "mode-999",
    group: MODES,
    title: 'filePermission "999"',
    objects: [secret("s-plain", { filePermission: "999" })],
    expect: { outcome: "refused", upstream: /mode 0 \(no one can read it\)/, here: /filePermission "999" is not an octal file mode such as 0644/ },
  },
  {
    id: "mode-symbolic",
    group: MODES,
    title: 'filePermission "rw-r--r--"',
    objects: [secret("s-plain", { filePermission: "rw-r--r--" })],
    expect: { outcome: "refused", upstream: /mode 0 \(no one can read it\)/, here: /filePermission "rw-r--r--" is not an octal file mode such as 0644/ },
  },
  {
    id: "mode-0o-prefix",
    group: MODES,
    title: 'filePermission "0o600"',
    objects: [secret("s-plain", { filePermission: "0o600" })],
    expect: { outcome: "refused", upstream: /mode 0 \(no one can read it\)/, here: /filePermission "0o600" is not an octal file mode such as 0644/ },
  },
  {
    id: "mode-sticky",
    group: MODES,
    title: 'filePermission "1777"',
    objects: [secret("s-plain", { filePermission: "1777" })],
    expect: { outcome: "refused", upstream: /mode 01777: setuid, setgid and sticky bits are dropped/, here: /filePermission "1777" must be at most 0777/ },
  },

  // -- the objects list
  { id: "objects-whitespace", group: LISTS, title: "values with surrounding spaces (trimmed)", objects: [secret("  s-plain  ", { objectAlias: " spaced " })], expect: same },
  { id: "objects-unknown-key", group: LISTS, title: "a misspelt key (objectAliass) is ignored", objects: [secret("s-plain", { objectAliass: "typo" })], expect: { outcome: "same", warning: /unknown key objectAliass/ } },
  { id: "objects-yaml-numbers", group: LISTS, title: "unquoted numbers (filePermission: 0640)", objectsText: "array:\n  - |\n    objectName: s-plain\n    objectType: secret\n    filePermission: 0640\n", expect: same },
  {
    id: "objects-empty-array",
    group: LISTS,
    title: "objects: array: []",
    objectsText: "array: []\n",
    expect: { outcome: "refused", upstream: /missing object versions/, here: /objects lists no object.*list at least one object/ }, lint: { verdict: "refused", upstream: "refuses" },
  },
  {
    id: "objects-no-array",
    group: LISTS,
    title: "objects without an array key",
    objectsText: "items:\n  - |\n    objectName: s-plain\n    objectType: secret\n",
    expect: { outcome: "refused", upstream: /missing object versions/, here: /objects lists no object.*list at least one object/ }, lint: { verdict: "refused", upstream: "refuses" },
  },
  {
    id: "objects-item-mapping",
    group: LISTS,
    title: "a list item that is a mapping, not a string",
    objectsText: "array:\n  - objectName: s-plain\n    objectType: secret\n",
    expect: { outcome: "both-refuse", here: /cannot unmarshal !!map into string/ },
  },
  { id: "objects-invalid-yaml", group: LISTS, title: "objects that are not YAML", objectsText: "array: [unclosed\n", expect: { outcome: "both-refuse", here: /failed to yaml unmarshal objects/ } },
  { id: "objects-missing", group: LISTS, title: "no objects parameter", parameters: { objects: undefined }, expect: { outcome: "both-refuse", here: /objects is not set/ } },
  { id: "object-name-empty", group: LISTS, title: "objectAlias without objectName", objects: [{ objectType: "secret", objectAlias: "x" }], expect: { outcome: "both-refuse" } },
  { id: "object-name-invalid", group: LISTS, title: "objectName with an underscore", objects: [secret("s_plain")], expect: { outcome: "both-refuse" } },

  // -- identities
  { id: "id-service-principal", group: IDENTITIES, title: "service principal (nodePublishSecretRef)", objects: [secret("s-plain"), key("key-rsa")], identity: "sp", expect: same },
  {
    id: "id-service-principal-key-case",
    group: IDENTITIES,
    title: "nodePublishSecretRef keys ClientID / ClientSecret (case differs)",
    objects: [secret("s-plain")],
    secrets: { ClientID: "{{sp-client-id}}", ClientSecret: "{{sp-client-secret}}" },
    expect: same,
  },
  { id: "id-workload", group: IDENTITIES, title: "workload identity (clientID + kubelet's token)", objects: [secret("s-plain"), cert("cert-pfx")], identity: "wi", expect: same },
  { id: "id-vm-system", group: IDENTITIES, title: "VM managed identity, system-assigned", objects: [secret("s-plain")], identity: "mi-system", expect: same },
  { id: "id-vm-user", group: IDENTITIES, title: "VM managed identity, user-assigned (userAssignedIdentityID)", objects: [secret("s-plain")], identity: "mi-user", expect: same },
  {
    id: "id-clientid-with-vm",
    group: IDENTITIES,
    title: "clientID and useVMManagedIdentity together: upstream reads with the VM's identity",
    objects: [secret("s-plain")],
    identity: "wi",
    parameters: { useVMManagedIdentity: "true" },
    expect: { outcome: "same", warning: /clientID is not used because useVMManagedIdentity is "true"/ },
  },
  {
    id: "id-uami-without-vm",
    group: IDENTITIES,
    title: "userAssignedIdentityID without useVMManagedIdentity: upstream ignores it",
    objects: [secret("s-plain")],
    parameters: { userAssignedIdentityID: "{{uami}}" },
    expect: { outcome: "same", warning: /userAssignedIdentityID is not used without useVMManagedIdentity/ },
  },
  {
    id: "alias-control-character",
    group: PATHS,
    title: "objectAlias with a tab",
    objects: [secret("s-plain", { objectAlias: "a\tb" })],
    expect: { outcome: "limit", here: /must not contain a control character/ },
  },
  { id: "id-sp-wrong-secret", group: IDENTITIES, title: "service principal with a wrong client secret", objects: [secret("s-plain")], secrets: { clientid: "{{sp-client-id}}", clientsecret: "wrong" }, expect: { outcome: "both-refuse" }, lint: atMountTime },
  { id: "id-sp-missing-key", group: IDENTITIES, title: "nodePublishSecretRef without clientsecret", objects: [secret("s-plain")], secrets: { clientid: "{{sp-client-id}}" }, expect: { outcome: "both-refuse", here: /could not find clientsecret in secrets/ }, lint: atMountTime },
  { id: "id-none", group: IDENTITIES, title: "no identity at all (no nodePublishSecretRef)", objects: [secret("s-plain")], identity: "none", expect: { outcome: "both-refuse" }, lint: atMountTime },
  { id: "id-no-access", group: IDENTITIES, title: "a principal without access to the vault", objects: [secret("s-plain")], secrets: { clientid: "{{no-access-client-id}}", clientsecret: "{{no-access-client-secret}}" }, expect: { outcome: "both-refuse" }, lint: atMountTime },
  { id: "id-workload-no-token", group: IDENTITIES, title: "clientID without kubelet's token (CSIDriver without tokenRequests)", objects: [secret("s-plain")], identity: "wi", attributes: { "csi.storage.k8s.io/serviceAccount.tokens": undefined }, expect: { outcome: "both-refuse" }, lint: atMountTime },
  { id: "id-pod-identity", group: IDENTITIES, title: "usePodIdentity (AAD pod identity, deprecated; no NMI agent here, with one upstream mounts it)", objects: [secret("s-plain")], parameters: { usePodIdentity: "true" }, expect: { outcome: "both-refuse" }, lint: { verdict: "refused", upstream: "mounts" } },
  { id: "id-two-modes", group: IDENTITIES, title: "useVMManagedIdentity and usePodIdentity together", objects: [secret("s-plain")], parameters: { usePodIdentity: "true", useVMManagedIdentity: "true" }, expect: { outcome: "both-refuse", here: /only one identity mode can be enabled at a time/ } },
  { id: "id-bad-bool", group: IDENTITIES, title: 'useVMManagedIdentity "yes"', objects: [secret("s-plain")], parameters: { useVMManagedIdentity: "yes" }, expect: { outcome: "both-refuse", here: /failed to parse useVMManagedIdentity flag/ } },
  { id: "id-identity-binding", group: IDENTITIES, title: "identity binding (useAzureTokenProxy + clientID + kubelet's token for api://AKSIdentityBinding)", objects: [secret("s-plain"), key("key-rsa")], identity: "ib", expect: same },
  {
    id: "id-identity-binding-no-client-id",
    group: IDENTITIES,
    title: "identity binding without clientID",
    objects: [secret("s-plain")],
    identity: "ib",
    parameters: { clientID: undefined },
    expect: { outcome: "both-refuse", here: /clientID is required for identity binding/ },
  },
  {
    id: "id-identity-binding-no-token",
    group: IDENTITIES,
    title: "identity binding with kubelet's token for api://AzureADTokenExchange only (CSIDriver without the api://AKSIdentityBinding audience)",
    objects: [secret("s-plain")],
    identity: "ib",
    audiences: ["api://AzureADTokenExchange"],
    expect: { outcome: "both-refuse", here: /token for audience api:\/\/AKSIdentityBinding not found/ },
    lint: atMountTime,
  },
  {
    id: "id-identity-binding-with-vm",
    group: IDENTITIES,
    title: "useAzureTokenProxy and useVMManagedIdentity together",
    objects: [secret("s-plain")],
    identity: "ib",
    parameters: { useVMManagedIdentity: "true" },
    expect: { outcome: "both-refuse", here: /only one identity mode can be enabled at a time/ },
  },
  { id: "id-bool-upper", group: IDENTITIES, title: 'useVMManagedIdentity "TRUE"', objects: [secret("s-plain")], parameters: { useVMManagedIdentity: "TRUE" }, identity: "none", expect: same },

  // -- vault, tenant, cloud
  { id: "tenant-legacy-key", group: PARAMS, title: "tenantId (the deprecated spelling)", objects: [secret("s-plain")], parameters: { tenantID: undefined, tenantId: "{{tenant}}" }, expect: same },
  { id: "tenant-missing", group: PARAMS, title: "no tenantID", objects: [secret("s-plain")], parameters: { tenantID: undefined }, expect: { outcome: "both-refuse", here: /tenantId is not provided/ } },
  { id: "vault-missing", group: PARAMS, title: "no keyvaultName", objects: [secret("s-plain")], parameters: { keyvaultName: undefined }, expect: { outcome: "both-refuse", here: /keyvaultName is not provided/ } },
  { id: "vault-invalid-name", group: PARAMS, title: "keyvaultName kv_interop", objects: [secret("s-plain")], parameters: { keyvaultName: "kv_interop" }, expect: { outcome: "both-refuse", here: /Invalid vault name: "kv_interop"/ } },
  { id: "vault-unknown", group: PARAMS, title: "a vault that does not exist", objects: [secret("s-plain")], parameters: { keyvaultName: "kv-nowhere" }, expect: { outcome: "both-refuse" }, lint: atMountTime },
  { id: "cloud-explicit", group: PARAMS, title: "cloudName azurepubliccloud (lower case)", objects: [secret("s-plain")], parameters: { cloudName: "azurepubliccloud" }, expect: same },
  { id: "cloud-usgov", group: PARAMS, title: "cloudName AzureUSGovernmentCloud", objects: [secret("s-gov")], parameters: { cloudName: "AzureUSGovernmentCloud", keyvaultName: "kv-interop-gov" }, expect: same },
  { id: "cloud-invalid", group: PARAMS, title: "cloudName Mars", objects: [secret("s-plain")], parameters: { cloudName: "Mars" }, expect: { outcome: "both-refuse", here: /cloudName Mars is not valid/ } },
  { id: "pod-name-missing", group: PARAMS, title: "no pod name (CSIDriver without podInfoOnMount)", objects: [secret("s-plain")], attributes: { "csi.storage.k8s.io/pod.name": undefined }, expect: { outcome: "both-refuse", here: /pod name is not provided/ }, lint: atMountTime },

  // -- Key Vault errors
  { id: "err-secret-not-found", group: ERRORS, title: "a secret that does not exist", objects: [secret("nope")], expect: { outcome: "both-refuse" }, lint: atMountTime },
  { id: "err-key-not-found", group: ERRORS, title: "a key that does not exist", objects: [key("nope")], expect: { outcome: "both-refuse" }, lint: atMountTime },
  { id: "err-cert-not-found", group: ERRORS, title: "a cert that does not exist", objects: [cert("nope")], expect: { outcome: "both-refuse" }, lint: atMountTime },
  { id: "err-disabled", group: ERRORS, title: "a secret whose current version is disabled", objects: [secret("s-disabled")], expect: { outcome: "both-refuse" }, lint: atMountTime },
  { id: "err-disabled-pinned-enabled", group: ERRORS, title: "the enabled older version of that secret, pinned", objects: [secret("s-disabled", { objectVersion: version("secrets", "s-disabled", 0) })], expect: same },
  { id: "err-second-fails", group: ERRORS, title: "the second of two objects does not exist: nothing is mounted", objects: [secret("s-plain"), secret("nope")], expect: { outcome: "both-refuse" }, lint: atMountTime },

  // -- extensions beyond upstream (README): upstream's provider takes a pattern for a name and ignores objectTags and optional
  {
    id: "ext-pattern",
    group: EXTENSIONS,
    title: "objectName ext-* (a pattern): every enabled secret that matches, not the disabled one",
    objects: [secret("ext-*")],
    expect: { outcome: "extension", upstream: "fails", here: ["ext-a", "ext-b"], versions: [{ id: "secret/ext-a", version: "{{secrets/ext-a@0}}" }, { id: "secret/ext-b", version: "{{secrets/ext-b@0}}" }] },
    lint: differs,
  },
  {
    id: "ext-pattern-certificate-secrets",
    group: EXTENSIONS,
    title: "objectName cert-* for objectType secret: a certificate's own secrets are no match",
    objects: [secret("s-plain"), secret("cert-*", { optional: "true" })],
    expect: { outcome: "extension", upstream: "fails", here: ["s-plain"] },
    lint: differs,
  },
  { id: "ext-pattern-alias", group: EXTENSIONS, title: "objectName ext-? with objectAlias ext/ (a prefix)", objects: [secret("ext-?", { objectAlias: "ext/", filePermission: "0440" })], expect: { outcome: "extension", upstream: "fails", here: ["ext/ext-a", "ext/ext-b"] }, lint: differs },
  { id: "ext-pattern-tags", group: EXTENSIONS, title: "objectName ext-* with objectTags tier=gold", objects: [secret("ext-*", { objectTags: "tier=gold" })], expect: { outcome: "extension", upstream: "fails", here: ["ext-a"] }, lint: differs },
  { id: "ext-pattern-types", group: EXTENSIONS, title: "patterns for keys and certs: a certificate's key is no match of a key pattern", objects: [key("*-p*"), cert("cert-p*")], expect: { outcome: "extension", upstream: "fails", here: ["key-p256", "key-p384", "key-p521", "cert-pem", "cert-pfx"] }, lint: differs },
  { id: "ext-pattern-none", group: EXTENSIONS, title: "a pattern that matches nothing", objects: [secret("zz-*")], expect: { outcome: "both-refuse", here: /no enabled secrets of key vault "kv-interop" match the objectName pattern "zz-\*"/ }, lint: differs },
  {
    id: "ext-pattern-version",
    group: EXTENSIONS,
    title: "a pattern with objectVersion",
    objects: [secret("ext-*", { objectVersion: "0123456789abcdef0123456789abcdef" })],
    expect: { outcome: "both-refuse", here: /objectVersion cannot be given with the objectName pattern "ext-\*"/ },
  },
  { id: "ext-tags-plain", group: EXTENSIONS, title: "objectTags on a plain objectName whose object carries them", objects: [secret("ext-a", { objectTags: "tier=gold" })], expect: same, lint: differs },
  {
    id: "ext-tags-plain-mismatch",
    group: EXTENSIONS,
    title: "objectTags on a plain objectName whose object does not carry them",
    objects: [secret("ext-b", { objectTags: "tier=gold" })],
    expect: { outcome: "extension", upstream: "mounts", here: /secret ext-b does not carry the tags objectTags asks for \(tier=gold\)/ },
    lint: differs,
  },
  {
    id: "ext-optional-missing",
    group: EXTENSIONS,
    title: "optional: a secret that does not exist is left out",
    objects: [secret("s-plain"), secret("nope", { optional: "true" })],
    expect: { outcome: "extension", upstream: "fails", here: ["s-plain"], versions: [{ id: "secret/s-plain", version: "{{secrets/s-plain@0}}" }, { id: "secret/nope", version: "(missing) nope" }] },
    lint: differs,
  },
  { id: "ext-optional-disabled", group: EXTENSIONS, title: "optional: a secret whose current version is disabled is left out", objects: [secret("s-disabled", { optional: "true" })], expect: { outcome: "extension", upstream: "fails", here: [] }, lint: differs },
  { id: "ext-optional-present", group: EXTENSIONS, title: "optional on an object Key Vault has", objects: [secret("s-plain", { optional: "true" }), key("key-rsa", { optional: "True" })], expect: same, lint: differs },
  {
    id: "ext-optional-denied",
    group: EXTENSIONS,
    title: "optional on an object the identity may not read (still fails)",
    objects: [secret("s-plain", { optional: "true" })],
    secrets: { clientid: "{{no-access-client-id}}", clientsecret: "{{no-access-client-secret}}" },
    expect: { outcome: "both-refuse", here: /Forbidden \(HTTP 403\)/ },
    lint: differs,
  },
  { id: "ext-optional-invalid", group: EXTENSIONS, title: 'optional "maybe"', objects: [secret("s-plain", { optional: "maybe" })], expect: { outcome: "limit", here: /optional "maybe" is neither "true" nor "false"/ } },
  { id: "ext-tags-invalid", group: EXTENSIONS, title: 'objectTags "tier" (no value)', objects: [secret("s-plain", { objectTags: "tier" })], expect: { outcome: "limit", here: /objectTags "tier" is not a list of name=value pairs/ } },
];
