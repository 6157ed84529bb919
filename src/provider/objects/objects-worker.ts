// The worker thread of ObjectsParser (objects-parser.ts): parses one
// `objects` list per message and answers with the objects or the error.
// It is its own entry point (bundled apart as objects-worker.mjs), so the
// thread loads the YAML parser and the validation, not the whole provider.
import { parentPort } from "node:worker_threads";
import { Status as status } from "@grpc/grpc-js/build/src/constants.js";
import { ProviderError } from "../errors.ts";
import type { ObjectLimits } from "./objects.ts";
import { parseObjects } from "./objects-yaml.ts";
import type { WorkerAnswer } from "./objects-parser.ts";

parentPort?.on("message", ({ text, limits }: { text: string; limits: ObjectLimits }) => {
  let answer: WorkerAnswer;
  try {
    answer = { ok: true, result: parseObjects(text, limits) };
  } catch (err) {
    answer =
      err instanceof ProviderError
        ? { ok: false, code: err.code, errorClass: err.errorClass, message: err.message }
        : { ok: false, code: status.INTERNAL, errorClass: "Internal", message: `the objects list could not be parsed (${(err as Error).name})` };
  }
  parentPort!.postMessage(answer);
});
