// A response's header fields as the SDK's pipeline reads them (its
// HttpHeaders interface), over the fields http-response.ts has already read:
// names in lower case, values trimmed, no CR or LF in them. The SDK's own
// createHttpHeaders copies every field into a map of its own, lower-casing
// each name and cleaning each value with a regular expression again: about
// 2% of a new identity's Mount (docs/performance.md).
import type { HttpHeaders, RawHttpHeaders } from "@azure/core-rest-pipeline";

export class ResponseHeaders implements HttpHeaders {
  /** Lower-case name to value, without a prototype (a field named "constructor" is only a field). */
  private readonly fields: Record<string, string>;

  /** `fields` is taken over, not copied: lower-case names, values as normalizeValue would leave them. */
  constructor(fields: Record<string, string>) {
    this.fields = fields;
  }

  get(name: string): string | undefined {
    return this.fields[name.toLowerCase()];
  }

  has(name: string): boolean {
    return this.fields[name.toLowerCase()] !== undefined;
  }

  set(name: string, value: string | number | boolean): void {
    // as the SDK's own: trimmed, and no CR or LF to fold a line with
    this.fields[name.toLowerCase()] = String(value).trim().replace(/[\r\n]/g, "");
  }

  delete(name: string): void {
    delete this.fields[name.toLowerCase()];
  }

  /** The names are the lower-case ones with or without preserveCase: that is how they were read. */
  toJSON(_options?: { preserveCase?: boolean }): RawHttpHeaders {
    return { ...this.fields };
  }

  toString(): string {
    return JSON.stringify(this.fields);
  }

  *[Symbol.iterator](): Iterator<[string, string]> {
    for (const name in this.fields) yield [name, this.fields[name]!];
  }
}
