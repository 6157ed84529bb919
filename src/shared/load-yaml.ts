// Loads the YAML parser on demand (it is needed only for kubeconfig files and
// standalone mode, not on a node in a cluster). A bundled import() of a
// CommonJS package hands back only its default export; running from sources,
// Node also provides the named ones. Either way callers get the module.
type Yaml = typeof import("yaml");

export async function loadYaml(): Promise<Yaml> {
  const loaded = (await import("yaml")) as Yaml & { default?: Yaml };
  return typeof loaded.parse === "function" ? loaded : loaded.default!;
}
