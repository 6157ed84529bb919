// The worker thread of ManifestParser (manifest-parser.ts): parses one
// manifest file's text per message into its documents, or says why it is not
// valid YAML. Duplicate keys are found with a set per mapping (the YAML
// library's own check compares every key with every other: a 1 MiB mapping
// took 92 s).
import { parentPort } from "node:worker_threads";
import { isMap, isScalar, LineCounter, parseAllDocuments, visit, type Document } from "yaml";

export type ManifestAnswer = { ok: true; docs: unknown[] } | { ok: false; message: string };

function duplicateKey(doc: Document, lines: LineCounter): string | undefined {
  let found: string | undefined;
  visit(doc, {
    Map(_, map) {
      if (!isMap(map)) return undefined;
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const key = String(pair.key.value);
        if (seen.has(key)) {
          const at = lines.linePos(pair.key.range?.[0] ?? 0);
          found = `line ${at.line}: mapping key ${JSON.stringify(key)} already defined`;
          return visit.BREAK;
        }
        seen.add(key);
      }
      return undefined;
    },
  });
  return found;
}

export function parseManifest(text: string): ManifestAnswer {
  const lines = new LineCounter();
  const parsed = parseAllDocuments(text, { prettyErrors: false, uniqueKeys: false, lineCounter: lines });
  const docs = Array.isArray(parsed) ? parsed : [];
  const out: unknown[] = [];
  for (const doc of docs) {
    const error = doc.errors[0];
    if (error) {
      const at = lines.linePos(error.pos[0]);
      return { ok: false, message: `not valid YAML: line ${at.line}: ${error.message.split("\n")[0]}` };
    }
    const duplicate = duplicateKey(doc, lines);
    if (duplicate) return { ok: false, message: `not valid YAML: ${duplicate}` };
    out.push(doc.toJSON());
  }
  return { ok: true, docs: out };
}

parentPort?.on("message", (text: string) => {
  let answer: ManifestAnswer;
  try {
    answer = parseManifest(text);
  } catch (err) {
    answer = { ok: false, message: `cannot be read as YAML (${(err as Error).name}: ${(err as Error).message.split("\n")[0]})` };
  }
  parentPort!.postMessage(answer);
});
