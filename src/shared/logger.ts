// Structured JSON logs (pino). Secret values never reach a log line: known
// secret-bearing fields are redacted by pino, and request objects are passed
// through sanitizeRequest() before they are logged.
import { pino, type Logger } from "pino";

export type { Logger };

export const SERVICE_ACCOUNT_TOKENS_KEY = "csi.storage.k8s.io/serviceAccount.tokens";
export const REDACTED = "***stripped***";

const REDACT_PATHS = [
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

export interface LoggerOptions {
  name: string;
  level?: string;
  /** Where log lines go; defaults to stdout. Tests pass a stream to inspect output. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? "info";
  return pino(
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
