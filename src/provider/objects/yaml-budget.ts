// Bounds the work of reading the `objects` YAML before the YAML library builds
// a document from it. Building is the costly part (under --lite-mode a 575 KiB
// mapping of 60,000 keys takes 2 s and 70 MiB of heap, and 40,000 keys more
// than the parser's heap), while lexing is linear and streams. So each text is
// lexed first and every node-making token (scalar, alias, anchor, tag,
// collection, list entry, key and value indicator, comma) is counted against
// the budget of the whole parse; a text over it is refused before a single
// node is built. The budget follows --max-objects-per-mount: a list of N
// objects needs a few tokens per entry and a few dozen per object.
import { CST, Lexer } from "yaml";
import { invalidArgument } from "../errors.ts";

/** Tokens one entry of `array` may take (`- |` takes 3, `- "..."` and `"...",` 2; an anchor or a tag one more each). */
export const LIST_TOKENS_PER_OBJECT = 6;
/** Tokens the YAML of all objects may take, per object (8 fields as `key: value` take 24; in flow style 32). */
export const ITEM_TOKENS_PER_OBJECT = 64;
/** Tokens one object's own YAML may take (typos and unknown keys are ignored, not refused: some room for them). */
export const MAX_ITEM_TOKENS = 256;
/** Room for extras: other keys beside `array`, a few odd entries. */
const SLACK_TOKENS = 256;

/** Lexer token types that never make a node of their own. */
const FREE_TOKENS = new Set<string>(["byte-order-mark", "doc-mode", "doc-start", "doc-end", "space", "comment", "newline", "directive-line", "flow-map-end", "flow-seq-end", "flow-error-end"]);

export class YamlBudget {
  private used = 0;
  private readonly limit: number;
  private readonly maxObjects: number;
  private readonly what: string;

  private constructor(limit: number, maxObjects: number, what: string) {
    this.limit = limit;
    this.maxObjects = maxObjects;
    this.what = what;
  }

  /** The budget of the `objects` document itself (the list of entries). */
  static forList(maxObjects: number): YamlBudget {
    return new YamlBudget(LIST_TOKENS_PER_OBJECT * maxObjects + SLACK_TOKENS, maxObjects, "the objects list");
  }

  /** The budget shared by the YAML of all objects of one list. */
  static forItems(maxObjects: number): YamlBudget {
    return new YamlBudget(ITEM_TOKENS_PER_OBJECT * maxObjects + SLACK_TOKENS, maxObjects, "the objects' own YAML");
  }

  /** The budget of one object's YAML. */
  static forItem(maxObjects: number): YamlBudget {
    return new YamlBudget(MAX_ITEM_TOKENS, maxObjects, "the object's YAML");
  }

  private refusal(): Error {
    const need = this.what === "the object's YAML" ? "one object needs" : `${this.maxObjects} objects need (--max-objects-per-mount)`;
    return invalidArgument(`${this.what} has more than ${this.limit} YAML nodes (keys, values, list entries), far more than ${need}; list fewer objects, or fewer keys per object`);
  }

  /** Counts the nodes of `text` against each budget; throws InvalidArgument, before any node is built, once one is exceeded. */
  static spend(text: string, budgets: readonly YamlBudget[]): void {
    for (const token of new Lexer().lex(text)) {
      const type = CST.tokenType(token);
      // a null type is the text of a scalar whose marker was counted already
      if (type === null || FREE_TOKENS.has(type)) continue;
      for (const budget of budgets) if (++budget.used > budget.limit) throw budget.refusal();
    }
  }
}
