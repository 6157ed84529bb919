// What upstream's pair (driver v1.6.0, Azure provider v1.8.2) does with a
// class that is refused here, read from the refusal's text. The provider
// keeps upstream's own messages for what upstream refuses too; the other
// refusals are this provider's, each for a stated reason. The interop parity
// test checks every entry against the real upstream binaries.

export type UpstreamBehaviour =
  /** upstream refuses it too (the same text, or Azure refuses it when upstream asks) */
  | "refuses"
  /** upstream mounts a broken volume: unreadable files, a lost object, dropped mode bits */
  | "breaks"
  /** upstream mounts it: a bound or an unsupported feature of this provider */
  | "mounts";

interface Rule {
  pattern: RegExp;
  upstream: UpstreamBehaviour;
  /** What upstream does, for the report. */
  detail: string;
}

const RULES: Rule[] = [
  // this provider's own refusals
  { pattern: /filePermission ".*" is not an octal file mode/, upstream: "breaks", detail: "it writes the file with mode 0, which no one can read" },
  { pattern: /filePermission ".*" must be at most 0777/, upstream: "breaks", detail: "it drops the setuid, setgid and sticky bits without a word" },
  { pattern: /would be written by both/, upstream: "breaks", detail: "it writes both objects to one path: one of them is lost, or the write fails" },
  { pattern: /is not among the enabled versions of/, upstream: "breaks", detail: "it mounts no file for the object, without an error" },
  { pattern: /objects lists no object/, upstream: "refuses", detail: 'its driver fails the mount: "missing object versions"' },
  { pattern: /objectVersionHistory \d+ is more than this provider reads/, upstream: "mounts", detail: "it reads every version asked for; this provider reads at most 1001" },
  { pattern: /must not contain a control character/, upstream: "mounts", detail: "it writes such file names; this driver refuses them (they break logs and events)" },
  { pattern: /usePodIdentity is not supported/, upstream: "mounts", detail: "it asks the AAD pod identity agent (NMI) on the node, which is deprecated" },
  { pattern: /is not a valid Key Vault object name|is not a valid Key Vault version id/, upstream: "refuses", detail: "Key Vault refuses the name when upstream asks for it" },
  { pattern: /objectName must not be empty/, upstream: "refuses", detail: "Key Vault has no object without a name" },
  { pattern: /Invalid vault name: .*must start with a letter/, upstream: "refuses", detail: "no vault has such a name, so its request fails" },
  { pattern: /tenantID ".*" is not valid/, upstream: "refuses", detail: "Entra ID refuses the tenant when upstream asks for a token" },
  { pattern: /the token for audience .* (is not a service account JWT|was issued to)/, upstream: "refuses", detail: "Entra ID refuses the token when upstream exchanges it" },
  { pattern: /file name ".*" names the volume itself/, upstream: "refuses", detail: "its driver cannot write a file at the volume's root" },
  { pattern: /file name ".*" has a path segment longer than|file name is longer than/, upstream: "refuses", detail: "its driver refuses such paths" },
  { pattern: /^provider not set in|^parameters not set in|^invalid provider name/, upstream: "refuses", detail: "its driver refuses the class" },
  // this provider's extensions (patterns, objectTags, optional), which upstream's provider does not know
  { pattern: /objectName pattern ".*" may hold only|cannot be given with the objectName pattern|is the prefix of every match's file/, upstream: "refuses", detail: "it takes the pattern for an object name, which Key Vault refuses" },
  { pattern: /objectTags( ".*" is not a list| lists \d+ tags| names the tag|: a tag name has at most)/, upstream: "mounts", detail: "it ignores objectTags" },
  { pattern: /optional ".*" is neither "true" nor "false"/, upstream: "mounts", detail: "it ignores optional" },
  // upstream's own texts
  {
    pattern:
      /invalid objectFormat|PFX format only supported|objectEncoding only supported|invalid objectEncoding|Invalid vaultObjectTypes|file name must not be empty|file name must be a relative path|file name must not contain '\.\.'|failed to yaml unmarshal objects|unmarshal failed for keyVaultObjects|objects is not set|keyvaultName is not provided|tenantId is not provided|cloudName .* is not valid|failed to parse \w+ flag|only one identity mode can be enabled|Invalid vault name|could not find client(id|secret) in secrets|nodePublishSecretRef secret is not set|failed to parse workload identity tokens|clientID is required for identity binding|service account tokens are required for identity binding|failed to parse service account token for identity binding|pod name is not provided|pod namespace is not provided/,
    upstream: "refuses",
    detail: "the same message",
  },
];

/** What upstream does with a class refused here with `message`, or undefined when not known. */
export function upstreamBehaviour(message: string): { upstream: UpstreamBehaviour; detail: string } | undefined {
  const rule = RULES.find((r) => r.pattern.test(message));
  return rule ? { upstream: rule.upstream, detail: rule.detail } : undefined;
}
