// Reading one manifest file the lint was pointed at, without letting a file
// hurt the run: only a regular file is opened (a FIFO would block the read, a
// device such as /dev/zero never ends), checked with stat before it is opened,
// opened non-blocking without taking a terminal, checked again on the open
// descriptor (the same file, still regular), and read up to --max-file-bytes.
// Every refusal names the file and says why, in one line.
import { constants } from "node:fs";
import { open, stat, type FileHandle } from "node:fs/promises";
import type { Stats } from "node:fs";

/** A manifest that cannot be read; `path` is the file, the message says why. */
export class ManifestError extends Error {
  override readonly name = "ManifestError";
  readonly path: string;
  constructor(path: string, message: string) {
    super(message);
    this.path = path;
  }
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: "no such file or directory",
  ELOOP: "too many levels of symbolic links (a symlink loop?)",
  EACCES: "permission denied",
  ENOTDIR: "a path element is not a directory",
  ENAMETOOLONG: "the path is too long",
};

/** What a failed file system call means, in words. */
export function errnoText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code ?? "";
  return ERRNO_TEXT[code] ?? (code || (err as Error).message);
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return "a FIFO";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  if (st.isDirectory()) return "a directory";
  return "not a regular file";
}

function sizeText(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1)} MiB` : `${Math.ceil(bytes / 1024)} KiB`;
}

/** The file's text, or a ManifestError naming it. */
export async function readManifest(path: string, maxBytes: number): Promise<string> {
  let before: Stats;
  try {
    before = await stat(path);
  } catch (err) {
    throw new ManifestError(path, errnoText(err));
  }
  if (!before.isFile()) throw new ManifestError(path, `${kindOf(before)}, not a regular file: not read`);
  const tooBig = (size: string) => new ManifestError(path, `${size}, more than the ${sizeText(maxBytes)} read per file (--max-file-bytes)`);
  if (before.size > maxBytes) throw tooBig(sizeText(before.size));
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    throw new ManifestError(path, errnoText(err));
  }
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.dev !== before.dev || st.ino !== before.ino) throw new ManifestError(path, "the file changed while it was being opened");
    // one byte more than the file has tells a file that grew while it is read
    const buffer = Buffer.alloc(Math.min(maxBytes, st.size) + 1);
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        throw length > maxBytes ? tooBig(`more than ${sizeText(maxBytes)}`) : new ManifestError(path, "the file grew while it was being read");
      }
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return buffer.subarray(0, length).toString("utf8");
  } catch (err) {
    if (err instanceof ManifestError) throw err;
    throw new ManifestError(path, errnoText(err));
  } finally {
    await handle.close().catch(() => undefined);
  }
}
