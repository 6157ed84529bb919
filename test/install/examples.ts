// Loads examples/: one folder per identity mode, each with a
// SecretProviderClass, a pod and what that mode needs.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import YAML from "yaml";
import { REPO_ROOT } from "../../scripts/generate-deploy.ts";

export const EXAMPLES_DIR = join(REPO_ROOT, "examples");

export interface ExampleObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export interface Example {
  name: string;
  dir: string;
  /** Raw text per file name, for comments. */
  texts: Map<string, string>;
  objects: ExampleObject[];
}

export function loadExamples(): Example[] {
  return readdirSync(EXAMPLES_DIR)
    .filter((f) => statSync(join(EXAMPLES_DIR, f)).isDirectory())
    .sort()
    .map((name) => {
      const dir = join(EXAMPLES_DIR, name);
      const texts = new Map<string, string>();
      const objects: ExampleObject[] = [];
      for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort()) {
        const text = readFileSync(join(dir, file), "utf8");
        texts.set(file, text);
        for (const doc of YAML.parseAllDocuments(text)) {
          if (doc.errors.length > 0) throw new Error(`examples/${name}/${file}: ${doc.errors[0]!.message}`);
          if (doc.contents !== null) objects.push(doc.toJS() as ExampleObject);
        }
      }
      return { name, dir, texts, objects };
    });
}
