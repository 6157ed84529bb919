// The two stacks compared, as command lines: ours runs the esbuild bundles
// the way the images start them (node flags and environment read from
// Dockerfile.driver / Dockerfile.provider), upstream runs the Go binaries
// built from the Go module proxy, with upstream's flags.
import { basename, join } from "node:path";
import { REPO } from "../test/support/driver-process.ts";
import { entrypoint, env as dockerEnv, parseDockerfile } from "../test/install/dockerfile.ts";
import type { Command } from "./program.ts";

export type StackName = "ours" | "upstream";

export interface DriverSettings {
  socket: string;
  nodeId: string;
  providerDir: string;
  kubeletDir: string;
  kubeconfig: string;
  rotationInterval: string;
  metricsPort: number;
  healthPort: number;
}

export interface ProviderSettings {
  socket: string;
  /** The emulator's CA certificate (PEM). */
  caFile: string;
  metricsPort: number;
  healthPort: number;
}

export interface Stack {
  name: StackName;
  /** How the stack is built, for the results' method section. */
  description: string;
  driver(s: DriverSettings): Command;
  provider(s: ProviderSettings): Command;
}

const baseEnv = (): Record<string, string> => ({ PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", HOME: process.env.HOME ?? "/root" });

/** The image's runtime stage and its ENTRYPOINT's arguments to `node`. */
function nodeEntrypoint(dockerfile: string) {
  const stage = parseDockerfile(join(REPO, dockerfile)).stages.at(-1)!;
  const [program, ...rest] = entrypoint(stage);
  if (program !== "node") throw new Error(`${dockerfile}: ENTRYPOINT does not start node`);
  return { stage, rest };
}

/** `node <flags> <bundle>` and ENV as the image's runtime stage has them, with the bundle at its local path. */
function asImageRuns(dockerfile: string, bundle: string): { argv: string[]; env: Record<string, string> } {
  const { stage, rest } = nodeEntrypoint(dockerfile);
  const argv = [process.execPath, ...rest.map((a) => (basename(a) === basename(bundle) ? bundle : a))];
  if (!argv.includes(bundle)) throw new Error(`${dockerfile}: ENTRYPOINT does not run ${basename(bundle)}`);
  return { argv, env: Object.fromEntries(dockerEnv(stage)) };
}

/** The Node flags the image starts its program with (those between `node` and the bundle). */
export function imageNodeFlags(dockerfile: "Dockerfile.driver" | "Dockerfile.provider"): string[] {
  const { rest } = nodeEntrypoint(dockerfile);
  const bundleAt = rest.findIndex((a) => a.endsWith(".mjs"));
  if (bundleAt < 0) throw new Error(`${dockerfile}: ENTRYPOINT runs no bundle`);
  return rest.slice(0, bundleAt);
}

/**
 * What a run adds to the image's command line: Node flags before the bundle
 * (bench/trace.ts loads its hook with --import) and environment.
 */
export interface Additions {
  nodeFlags?: (program: "driver" | "provider") => string[];
  /** Node flags in place of the image's own (an experiment, e.g. bench/trace.ts --provider-flags). */
  imageFlags?: (program: "driver" | "provider") => string[] | undefined;
  /** A command the program runs under (bench/trace.ts --provider-wrapper, e.g. valgrind). */
  wrapper?: (program: "driver" | "provider") => string[] | undefined;
  env?: (program: "driver" | "provider") => Record<string, string>;
}

/** The image's command with its Node flags (those before the bundle) replaced. */
function withFlags(image: { argv: string[]; env: Record<string, string> }, bundle: string, flags: string[] | undefined) {
  if (!flags) return image;
  const at = image.argv.indexOf(bundle);
  return { ...image, argv: [image.argv[0]!, ...flags, ...image.argv.slice(at)] };
}

export function ourStack(bundles: { driver: string; provider: string }, additions: Additions = {}): Stack {
  const driver = withFlags(asImageRuns("Dockerfile.driver", bundles.driver), bundles.driver, additions.imageFlags?.("driver"));
  const provider = withFlags(asImageRuns("Dockerfile.provider", bundles.provider), bundles.provider, additions.imageFlags?.("provider"));
  const flags = (program: "driver" | "provider") => additions.nodeFlags?.(program) ?? [];
  const extraEnv = (program: "driver" | "provider") => additions.env?.(program) ?? {};
  const wrapped = (program: "driver" | "provider") => additions.wrapper?.(program) ?? [];
  return {
    name: "ours",
    description: `esbuild bundles (scripts/bundle.ts) on Node ${process.version}, started as the images start them: ${[driver, provider].map((p) => `\`${["node", ...p.argv.slice(1).map((a) => basename(a))].join(" ")}\``).join(" and ")}`,
    driver: (s) => ({
      command: wrapped("driver")[0] ?? driver.argv[0]!,
      args: [
        ...wrapped("driver").slice(1),
        ...(wrapped("driver").length > 0 ? [driver.argv[0]!] : []),
        ...flags("driver"),
        ...driver.argv.slice(1),
        `--endpoint=unix://${s.socket}`,
        `--nodeid=${s.nodeId}`,
        `--kubeconfig=${s.kubeconfig}`,
        `--kubelet-dir=${s.kubeletDir}`,
        `--provider-volume=${s.providerDir}`,
        "--additional-provider-volume-paths=",
        `--metrics-addr=127.0.0.1:${s.metricsPort}`,
        `--health-addr=127.0.0.1:${s.healthPort}`,
        "--enable-secret-rotation=true",
        `--rotation-poll-interval=${s.rotationInterval}`,
      ],
      env: { ...baseEnv(), ...driver.env, ...extraEnv("driver") },
    }),
    provider: (s) => ({
      command: wrapped("provider")[0] ?? provider.argv[0]!,
      args: [
        ...wrapped("provider").slice(1),
        ...(wrapped("provider").length > 0 ? [provider.argv[0]!] : []),
        ...flags("provider"), ...provider.argv.slice(1), `--endpoint=unix://${s.socket}`, `--healthz-port=${s.healthPort}`, `--prometheus-port=${s.metricsPort}`],
      env: { ...baseEnv(), ...provider.env, NODE_EXTRA_CA_CERTS: s.caFile, ...extraEnv("provider") },
    }),
  };
}

export function upstreamStack(binDir: string): Stack {
  return {
    name: "upstream",
    description:
      "sigs.k8s.io/secrets-store-csi-driver v1.6.0 and github.com/Azure/secrets-store-csi-driver-provider-azure v1.8.2, " +
      "built with `go build` from the Go module proxy by test/harness/install-upstream.sh (CGO off, -trimpath)",
    driver: (s) => ({
      command: join(binDir, "upstream-secrets-store-csi-driver"),
      args: [
        `--endpoint=unix://${s.socket}`,
        `--nodeid=${s.nodeId}`,
        `--provider-volume=${s.providerDir}`,
        `--additional-provider-volume-paths=${s.providerDir}`,
        `--metrics-addr=127.0.0.1:${s.metricsPort}`,
        "--enable-secret-rotation=true",
        `--rotation-poll-interval=${s.rotationInterval}`,
      ],
      env: { ...baseEnv(), KUBECONFIG: s.kubeconfig },
    }),
    provider: (s) => ({
      command: join(binDir, "upstream-provider-azure"),
      args: [`--endpoint=unix://${s.socket}`, `--healthz-port=${s.healthPort}`, `--prometheus-port=${s.metricsPort}`],
      // Go reads the trust store from SSL_CERT_FILE; vault and login names resolve through /etc/hosts.
      env: { ...baseEnv(), SSL_CERT_FILE: s.caFile },
    }),
  };
}
