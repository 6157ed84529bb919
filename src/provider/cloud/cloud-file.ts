// Reading the custom cloud file a SecretProviderClass names (cloudEnvFileName)
// without letting a tenant use it against the node: the path must lie in one
// of the directories the operator allows (--cloud-env-file-dir), must be a
// regular file (never a FIFO, device or directory: it is checked before it is
// opened, opened non-blocking without following links, and checked again),
// at most MAX_CLOUD_FILE_BYTES, read within a deadline, and only a few reads
// run at a time so a file on a hung file system cannot take libuv's whole
// thread pool. Every refusal gives the same text, so a tenant learns nothing
// about paths outside the allowed directories; the real reason is logged.
import { constants } from "node:fs";
import { open, readlink, realpath, stat, type FileHandle } from "node:fs/promises";
import { isAbsolute, resolve, sep } from "node:path";

/** A custom cloud file is a few hundred bytes; anything much bigger is not one. */
export const MAX_CLOUD_FILE_BYTES = 64 * 1024;
/** Time allowed for opening and reading one cloud file. */
export const CLOUD_FILE_TIMEOUT_MS = 2000;
/** Cloud file operations in flight at once (libuv's pool has 4 threads by default). */
const MAX_CONCURRENT_READS = 2;

/** Where AKS (akscustom.json) and AKS engine on Azure Stack Hub (azurestackcloud.json) put the file. */
export const DEFAULT_CLOUD_ENV_FILE_DIRS = ["/etc/kubernetes"];

/** A refusal; `reason` is for the provider's log only, never for the caller. */
export class CloudFileRefused extends Error {
  readonly reason: string;
  constructor(reason: string) {
    super("refused");
    this.reason = reason;
  }
}

export interface CloudFileOptions {
  /** Allowed directories; undefined allows any path (the operator's AZURE_ENVIRONMENT_FILEPATH). */
  allowedDirs: readonly string[] | undefined;
  /** Epoch ms after which the read is abandoned (the earlier of this and CLOUD_FILE_TIMEOUT_MS). */
  deadline?: number;
}

let running = 0;
const waiting: Array<() => void> = [];

async function acquire(until: number): Promise<void> {
  if (running < MAX_CONCURRENT_READS) {
    running++;
    return;
  }
  await new Promise<void>((resolveSlot, reject) => {
    const timer = setTimeout(() => {
      const i = waiting.indexOf(grant);
      if (i >= 0) waiting.splice(i, 1);
      reject(new CloudFileRefused("timed out waiting for other cloud file reads"));
    }, Math.max(0, until - Date.now()));
    const grant = () => {
      clearTimeout(timer);
      running++;
      resolveSlot();
    };
    waiting.push(grant);
  });
}

function release(): void {
  running--;
  waiting.shift()?.();
}

/** Resolves like `work`, or rejects at `until`; the slot is held until work really ends. */
function withinDeadline<T>(work: Promise<T>, until: number, what: string): Promise<T> {
  return new Promise<T>((resolveWork, reject) => {
    const timer = setTimeout(() => reject(new CloudFileRefused(`${what} did not finish within ${CLOUD_FILE_TIMEOUT_MS} ms`)), Math.max(0, until - Date.now()));
    work.then(
      (value) => {
        clearTimeout(timer);
        resolveWork(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

function inside(path: string, dir: string): boolean {
  return path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

/**
 * Reads the file as UTF-8 text, or throws CloudFileRefused. The returned
 * text is at most MAX_CLOUD_FILE_BYTES.
 */
export async function readCloudFileText(path: string, options: CloudFileOptions): Promise<string> {
  if (!isAbsolute(path) || path.includes("\0")) throw new CloudFileRefused("not an absolute path");
  const lexical = resolve(path);
  const dirs = options.allowedDirs?.map((d) => resolve(d));
  if (dirs && !dirs.some((d) => inside(lexical, d))) throw new CloudFileRefused("outside the allowed directories");
  const until = Math.min(options.deadline ?? Infinity, Date.now() + CLOUD_FILE_TIMEOUT_MS);
  await acquire(until);
  let released = false;
  const done = () => {
    if (!released) {
      released = true;
      release();
    }
  };
  // The slot stays taken while a timed-out operation is still stuck in the pool.
  const work = readChecked(lexical, dirs);
  work.then(done, done);
  return withinDeadline(work, until, "reading the file");
}

async function readChecked(path: string, dirs: string[] | undefined): Promise<string> {
  let real: string;
  try {
    real = await realpath(path);
  } catch (err) {
    throw new CloudFileRefused(`realpath: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  const realDirs = dirs ? await realDirectories(dirs) : undefined;
  if (realDirs && !realDirs.some((d) => inside(real, d))) throw new CloudFileRefused(`resolves to ${real}, outside the allowed directories`);
  let before;
  try {
    before = await stat(real);
  } catch (err) {
    throw new CloudFileRefused(`stat: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  // Never open anything but a regular file: opening a device can have effects.
  if (!before.isFile()) throw new CloudFileRefused("not a regular file");
  if (before.size > MAX_CLOUD_FILE_BYTES) throw new CloudFileRefused(`${before.size} bytes, more than ${MAX_CLOUD_FILE_BYTES}`);
  let handle: FileHandle;
  try {
    handle = await open(real, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW | constants.O_NOCTTY);
  } catch (err) {
    throw new CloudFileRefused(`open: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.dev !== before.dev || st.ino !== before.ino) throw new CloudFileRefused("the file changed while it was being opened");
    if (realDirs) {
      const opened = await readlink(`/proc/self/fd/${handle.fd}`).catch(() => "");
      if (!realDirs.some((d) => inside(opened, d))) throw new CloudFileRefused("the opened file is outside the allowed directories");
    }
    // One byte more than allowed tells a file that grew from one that fits.
    const buffer = Buffer.alloc(MAX_CLOUD_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_CLOUD_FILE_BYTES) throw new CloudFileRefused(`more than ${MAX_CLOUD_FILE_BYTES} bytes`);
    }
    return buffer.subarray(0, length).toString("utf8");
  } finally {
    await handle.close().catch(() => undefined);
  }
}

async function realDirectories(dirs: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const d of dirs) {
    try {
      out.push(await realpath(d));
    } catch {
      // a configured directory that does not exist allows nothing
    }
  }
  return out;
}
