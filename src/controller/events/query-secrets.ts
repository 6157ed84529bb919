// Webhook authentication by a secret query parameter: Event Grid repeats the
// endpoint URL's query on every request, handshakes included. The secrets
// come from a file (a mounted Kubernetes Secret) holding one or two lines, so
// a secret can be rotated without losing a delivery: add the new one as a
// second line, change the Event Grid subscription, then remove the old one.
// The file is read again when it changes. Comparison is in constant time:
// both sides are hashed first, so neither the length nor a prefix of a
// secret shows in the time an answer takes, and every secret is compared.
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";

export const MAX_QUERY_SECRETS = 2;
const MIN_SECRET_LENGTH = 16;
const MAX_SECRET_LENGTH = 1024;
/** How often the file's modification time is looked at. */
const RECHECK_MS = 5_000;

const digest = (value: string) => createHash("sha256").update(value, "utf8").digest();

/** Parses the file's text: one secret per line, blank lines ignored. Throws with a one-line reason. */
export function parseQuerySecrets(text: string, path: string): string[] {
  const secrets = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "");
  if (secrets.length === 0) throw new Error(`${path} holds no query secret: write one per line (two while rotating)`);
  if (secrets.length > MAX_QUERY_SECRETS) throw new Error(`${path} holds ${secrets.length} query secrets; at most ${MAX_QUERY_SECRETS} are accepted (the new one and the old one while rotating)`);
  for (const [i, s] of secrets.entries()) {
    if (s.length < MIN_SECRET_LENGTH || s.length > MAX_SECRET_LENGTH) {
      throw new Error(`${path}: query secret ${i + 1} has ${s.length} characters; use ${MIN_SECRET_LENGTH} to ${MAX_SECRET_LENGTH} (e.g. openssl rand -hex 32)`);
    }
  }
  return secrets;
}

export class QuerySecrets {
  private readonly path: string;
  private readonly now: () => number;
  private digests: Buffer[] = [];
  private fileVersion = "";
  private checkedAt = 0;
  /** Why the last read failed, while the previous secrets stay in use. */
  lastError: string | undefined;

  /** Reads the file once; throws when it cannot be used at start-up. */
  constructor(path: string, now: () => number = Date.now) {
    this.path = path;
    this.now = now;
    this.reload(true);
  }

  get count(): number {
    return this.digests.length;
  }

  /** True when `presented` equals one of the secrets. */
  matches(presented: string | null | undefined): boolean {
    this.maybeReload();
    if (typeof presented !== "string" || presented.length === 0 || presented.length > MAX_SECRET_LENGTH) return false;
    const candidate = digest(presented);
    let ok = false;
    // Every secret is compared, whatever the first one gave.
    for (const d of this.digests) ok = timingSafeEqual(d, candidate) || ok;
    return ok;
  }

  private maybeReload(): void {
    const now = this.now();
    if (now - this.checkedAt < RECHECK_MS) return;
    this.checkedAt = now;
    this.reload(false);
  }

  private reload(initial: boolean): void {
    try {
      const st = statSync(this.path);
      const version = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (!initial && version === this.fileVersion) return;
      this.digests = parseQuerySecrets(readFileSync(this.path, "utf8"), this.path).map(digest);
      this.fileVersion = version;
      this.lastError = undefined;
    } catch (err) {
      if (initial) throw err;
      // A half-updated or missing file keeps the secrets in use.
      this.lastError = (err as Error).message;
    }
  }
}
