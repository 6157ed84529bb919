import { PassThrough } from "node:stream";
import { pino, type Logger } from "pino";
import { describe, expect, it } from "vitest";
import { createLogger, REDACT_PATHS, REDACTED, SERVICE_ACCOUNT_TOKENS_KEY as SA } from "../../src/shared/logger.ts";

/** A logger and the lines it wrote (without their time). */
function capture(make: (destination: NodeJS.WritableStream) => Logger): { logger: Logger; lines: () => string[] } {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk.toString()));
  return { logger: make(stream), lines: () => chunks.join("").split("\n").filter(Boolean).map((l) => l.replace(/"time":"[^"]*",/, "")) };
}

const ours = () => capture((destination) => createLogger({ name: "test", level: "debug", destination }));
/** pino's own redaction of the same paths: what the logger did before it redacted below the top level itself. */
const pinos = () =>
  capture((destination) =>
    pino(
      {
        name: "test",
        level: "debug",
        base: { component: "test" },
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        redact: { paths: REDACT_PATHS, censor: REDACTED },
      },
      destination as pino.DestinationStream,
    ),
  );

const flush = () => new Promise((resolve) => setImmediate(resolve));

/** Each case logs with a fresh object (pino's redaction changes some of the objects it is given). */
const CASES: Array<[string, (log: Logger) => void]> = [
  ["top-level keys", (log) => log.info({ secrets: { a: 1 }, token: "t", accessToken: "a", access_token: "b", clientSecret: "c", clientsecret: "d", contents: "e", value: 5, authorization: "f", pod: "ns/p" }, "m")],
  ["one level below", (log) => log.info({ x: { token: "t", value: 5, other: 1, secrets: [1], contents: { a: 1 }, [SA]: "sa" }, y: "s" }, "m")],
  ["two levels below", (log) => log.info({ a: { b: { secrets: "s", keep: 1, token: "kept", [SA]: "sa" }, c: "x" }, list: [{ secrets: "s", token: "kept" }, 3, null] }, "m")],
  ["three levels below are not paths", (log) => log.info({ a: { b: { c: { secrets: "deep" } } } }, "m")],
  ["headers", (log) => log.info({ req: { headers: { authorization: "Bearer x", accept: "y", secrets: "s" } }, headers: { authorization: "z", other: 1 } }, "m")],
  ["undefined, null and other values", (log) => log.info({ a: { token: undefined, b: null }, n: null, f: 1.5, inf: Infinity, yes: true, when: new Date(0), at: { d: new Date(0) } }, "m")],
  ["an error", (log) => log.error({ err: Object.assign(new Error("boom"), { token: "t", code: "E", details: { secrets: "s" } }) }, "failed")],
  ["an error as the first argument", (log) => log.error(Object.assign(new Error("boom"), { value: "v" }), "failed")],
  ["a child's bindings", (log) => log.child({ meta: { value: 1, keep: 2 }, token: "t", headers: { authorization: "x" } }).info({ k: { secrets: "s" } }, "m")],
  ["a message alone", (log) => log.warn("only a message")],
  ["an interpolated object", (log) => log.info("%o and %j", { token: "t", a: { value: 1, b: { secrets: "s" } } }, [{ secrets: 1, value: 2 }])],
  ["an array at the top of a key", (log) => log.info({ arr: [{ headers: { authorization: "x" }, value: 1 }] }, "m")],
];

describe("logger redaction", () => {
  it.each(CASES)("censors what pino's redaction of REDACT_PATHS censors: %s", async (_name, write) => {
    const a = ours();
    const b = pinos();
    for (const logger of [a.logger, b.logger]) write(logger); // one line: the same stack in an error
    await flush();
    expect(a.lines()).toHaveLength(1);
    expect(a.lines()).toEqual(b.lines());
  });

  it("never shows a censored value", async () => {
    const a = ours();
    a.logger.child({ tokens: { [SA]: "sa-token-1" } }).info(
      { x: { clientSecret: "client-secret-2" }, y: { z: { secrets: { k: "secret-3" } } }, req: { headers: { authorization: "Bearer 4" } }, value: "value-5" },
      "%j",
      { token: "token-6" },
    );
    await flush();
    const [line] = a.lines();
    for (const secret of ["sa-token-1", "client-secret-2", "secret-3", "Bearer 4", "value-5", "token-6"]) expect(line).not.toContain(secret);
    expect(line).toContain(REDACTED);
  });

  // Where the logger differs from pino's redaction: it copies only what it censors.
  it("leaves the logged object as it was", async () => {
    const a = ours();
    const logged = { a: { value: { secrets: "s" } }, b: { c: { secrets: "t" } } };
    a.logger.info(logged, "m");
    await flush();
    expect(logged).toEqual({ a: { value: { secrets: "s" } }, b: { c: { secrets: "t" } } });
    expect(a.lines()[0]).toContain(`"a":{"value":"${REDACTED}"}`);
  });

  it("writes an object with its own JSON form (a URL) as JSON.stringify does (pino's redaction threw on it)", async () => {
    const a = ours();
    a.logger.info({ target: new URL("https://example.test/x"), nested: { at: new URL("https://example.test/y") } }, "m");
    await flush();
    expect(a.lines()[0]).toContain(`"target":"https://example.test/x","nested":{"at":"https://example.test/y"}`);
  });
});
