// Structured JSON logs (pino). Secret values never reach a log line: known
// secret-bearing fields are redacted (REDACT_PATHS), and request objects are
// passed through sanitizeRequest() before they are logged.
//
// pino censors the top-level keys of REDACT_PATHS itself, but its redaction of
// deeper paths parses every path and copies the value anew for every value of
// every line (about 100 µs a line in an interpreter-only V8, --lite-mode), so
// that part is done here instead: below the top level, redactBelow() copies a
// value only where a key is censored and changes nothing else. The keys and
// depths are those of REDACT_PATHS (a test compares both with pino's own).
import { pino, type Logger } from "pino";

export type { Logger };

export const SERVICE_ACCOUNT_TOKENS_KEY = "csi.storage.k8s.io/serviceAccount.tokens";
export const REDACTED = "***stripped***";

export const REDACT_PATHS = [
  "secrets",
  "*.secrets",
  "*.*.secrets",
  "token",
  "*.token",
  "accessToken",
  "*.accessToken",
  "access_token",
  "*.access_token",
  "clientSecret",
  "*.clientSecret",
  "clientsecret",
  "*.clientsecret",
  "contents",
  "*.contents",
  "value",
  "*.value",
  "authorization",
  "*.authorization",
  "*.headers.authorization",
  `*["${SERVICE_ACCOUNT_TOKENS_KEY}"]`,
  `*.*["${SERVICE_ACCOUNT_TOKENS_KEY}"]`,
];

/** Censored on the log object itself (pino does these) and one level below it (`*.key`). */
const SECRET_KEYS = ["secrets", "token", "accessToken", "access_token", "clientSecret", "clientsecret", "contents", "value", "authorization"];
/** Censored one level below the log object (`*.key`). */
const ONE_BELOW = new Set([...SECRET_KEYS, SERVICE_ACCOUNT_TOKENS_KEY]);
/** Censored two levels below the log object (`*.*.key`). */
const TWO_BELOW = ["secrets", SERVICE_ACCOUNT_TOKENS_KEY];

/** An own key that JSON.stringify writes. */
const shown = (o: object, key: string) => Object.prototype.propertyIsEnumerable.call(o, key);

/**
 * `node` with each of its elements (an array) or keys (an object) replaced
 * by `replace(key, value)`; copied only when one of them changes.
 */
function replaceEach(node: object, replace: (key: string, value: unknown) => unknown): object {
  let copy: Record<string, unknown> | undefined;
  const source = node as Record<string, unknown>;
  const keys = Array.isArray(node) ? Array.from(node.keys(), String) : Object.keys(node);
  for (const key of keys) {
    const value = source[key];
    const replaced = replace(key, value);
    if (replaced === value) continue;
    copy ??= Array.isArray(node) ? (node.slice() as unknown as Record<string, unknown>) : { ...source };
    copy[key] = replaced;
  }
  return copy ?? node;
}

/** `node` with those of `keys` it has censored. */
function censorOwn(node: unknown, keys: readonly string[]): unknown {
  if (node === null || typeof node !== "object" || !keys.some((key) => shown(node, key))) return node;
  const copy = Array.isArray(node) ? (node.slice() as unknown as Record<string, unknown>) : { ...(node as Record<string, unknown>) };
  for (const key of keys) if (shown(node, key)) copy[key] = REDACTED;
  return copy;
}

/**
 * The value of one top-level key of a log line (or of a child logger's
 * bindings), with REDACT_PATHS' paths below the top level censored:
 * `*.key`, `*.*.key` and `*.headers.authorization`. (An array's own named
 * keys are not in its JSON; its elements are the next level.)
 */
function redactBelow(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  const isArray = Array.isArray(value);
  return replaceEach(value, (key, child) => {
    if (!isArray && ONE_BELOW.has(key)) return REDACTED;
    const censored = censorOwn(child, TWO_BELOW);
    return !isArray && key === "headers" ? censorOwn(censored, ["authorization"]) : censored;
  });
}

/** A whole object with REDACT_PATHS applied to it (an object interpolated into a message with %o or %j). */
function redactWhole(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  const isArray = Array.isArray(value);
  return replaceEach(value, (key, child) => (!isArray && SECRET_KEYS.includes(key) ? REDACTED : redactBelow(child)));
}

type Stringifier = (value: unknown, stringifySafe?: unknown) => string | undefined;
interface PinoInternals {
  [pino.symbols.stringifiersSym]: Record<string | symbol, Stringifier>;
  [pino.symbols.stringifySym]: (value: unknown, stringifySafe?: unknown) => string;
  [pino.symbols.stringifySafeSym]: unknown;
  [pino.symbols.formatOptsSym]: { stringify: (value: unknown) => string };
}

/**
 * Replaces pino's redaction below the top level (the stringifier it applies to
 * every top-level value and binding, and to objects interpolated into a
 * message) with redactBelow(); child loggers inherit it.
 */
function cheapenRedaction(logger: Logger): Logger {
  const internals = logger as unknown as PinoInternals;
  const stringifiers = internals[pino.symbols.stringifiersSym];
  if (typeof stringifiers[pino.symbols.wildcardFirstSym] !== "function") throw new Error("logger: pino keeps its redaction elsewhere than this module expects");
  const stringify = internals[pino.symbols.stringifySym];
  const stringifySafe = internals[pino.symbols.stringifySafeSym];
  stringifiers[pino.symbols.wildcardFirstSym] = (value) => stringify(redactBelow(value), stringifySafe);
  const whole = (value: unknown) => stringify(redactWhole(value), stringifySafe);
  stringifiers[pino.symbols.redactFmtSym] = whole;
  internals[pino.symbols.formatOptsSym].stringify = whole;
  return logger;
}

export interface LoggerOptions {
  name: string;
  level?: string;
  /** Where log lines go; defaults to stdout. Tests pass a stream to inspect output. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? "info";
  const logger = pino(
    {
      name: options.name,
      level,
      base: { component: options.name },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
    },
    (options.destination ?? process.stdout) as pino.DestinationStream,
  );
  return cheapenRedaction(logger);
}

/**
 * Returns a copy of a gRPC request that is safe to log: the `secrets` map is
 * reduced to its key names' count, the service-account tokens in the volume
 * context are replaced, and file contents are dropped.
 */
export function sanitizeRequest(request: unknown): unknown {
  if (request === null || typeof request !== "object") return request;
  const copy: Record<string, unknown> = { ...(request as Record<string, unknown>) };
  if ("secrets" in copy) copy.secrets = REDACTED;
  for (const key of ["volume_context", "volumeContext"]) {
    const ctx = copy[key];
    if (ctx && typeof ctx === "object" && SERVICE_ACCOUNT_TOKENS_KEY in ctx) {
      copy[key] = { ...(ctx as Record<string, unknown>), [SERVICE_ACCOUNT_TOKENS_KEY]: REDACTED };
    }
  }
  if ("attributes" in copy && typeof copy.attributes === "string") copy.attributes = "<attributes>";
  if (Array.isArray(copy.files)) {
    copy.files = (copy.files as Array<Record<string, unknown>>).map((f) => ({ path: f.path, mode: f.mode }));
  }
  return copy;
}
