// A response's header fields as the SDK reads them: the same answers as the
// SDK's own createHttpHeaders for the fields the response reader produces
// (lower-case names, trimmed values), whatever case the SDK asks in.
import { createHttpHeaders } from "@azure/core-rest-pipeline";
import { describe, expect, it } from "vitest";
import { HttpResponseReader } from "../../../src/provider/keyvault/http-response.ts";
import { ResponseHeaders } from "../../../src/provider/keyvault/response-headers.ts";

function fieldsOf(head: string): Record<string, string> {
  const reader = new HttpResponseReader("GET");
  reader.push(Buffer.from(`${head}Content-Length: 0\r\n\r\n`, "latin1"));
  return reader.headers;
}

const HEAD = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer authorization=\"https://login/t\", resource=\"https://vault.azure.net\"\r\nX-Ms-Request-Id:  r-1 \r\nRetry-After: 3\r\nConstructor: c\r\n";

describe("response headers", () => {
  it("answers get, has, toJSON and iteration as the SDK's own headers do", () => {
    const ours = new ResponseHeaders(fieldsOf(HEAD));
    const sdk = createHttpHeaders(fieldsOf(HEAD));
    for (const name of ["www-authenticate", "WWW-Authenticate", "x-ms-request-id", "Retry-After", "content-length", "constructor", "toString", "missing"]) {
      expect(ours.get(name), name).toBe(sdk.get(name));
      expect(ours.has(name), name).toBe(sdk.has(name));
    }
    expect(ours.toJSON()).toEqual(sdk.toJSON());
    expect(ours.toJSON({ preserveCase: true })).toEqual(sdk.toJSON({ preserveCase: true }));
    expect([...ours]).toEqual([...sdk]);
    expect(JSON.parse(ours.toString())).toEqual(JSON.parse(sdk.toString()));
  });

  it("sets and deletes by any case, cleaning values as the SDK does", () => {
    const ours = new ResponseHeaders(fieldsOf(HEAD));
    ours.set("X-Added", " a\r\nb ");
    ours.set("Retry-After", 5);
    ours.delete("WWW-AUTHENTICATE");
    expect(ours.get("x-added")).toBe("ab");
    expect(ours.get("retry-after")).toBe("5");
    expect(ours.has("www-authenticate")).toBe(false);
    // toJSON is a copy: changing it changes nothing here
    const json = ours.toJSON();
    json["x-added"] = "changed";
    expect(ours.get("x-added")).toBe("ab");
  });
});
