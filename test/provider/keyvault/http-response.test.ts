// The provider's HTTP/1.1 response reader: the same response read whole or a
// byte at a time gives the same status, fields and body; what RFC 9112 rules
// out, or what has been used to smuggle one response inside another, fails
// with an error that says what was wrong.
import { describe, expect, it } from "vitest";
import { HttpProtocolError, HttpResponseReader, MAX_BODY_BYTES, MAX_HEAD_BYTES } from "../../../src/provider/keyvault/http-response.ts";

/** Reads `text` in pieces of `size` bytes; returns the reader once done (or after the last piece). */
function read(text: string | Buffer, size = Infinity, method = "GET"): HttpResponseReader {
  const bytes = typeof text === "string" ? Buffer.from(text, "latin1") : text;
  const reader = new HttpResponseReader(method);
  const step = Number.isFinite(size) ? size : bytes.length;
  for (let at = 0; at < bytes.length; at += step) if (reader.push(bytes.subarray(at, at + step))) break;
  return reader;
}

function failure(fn: () => unknown): HttpProtocolError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(HttpProtocolError);
    return err as HttpProtocolError;
  }
  throw new Error("expected an HttpProtocolError");
}

const OK = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nX-Ms-Request-Id: abc\r\n\r\n{\"value\":1}";
const CHUNKED = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"va\r\n7\r\nlue\":1}\r\n0\r\nX-Trailer: t\r\n\r\n";

describe("the HTTP response reader", () => {
  for (const [what, text] of [
    ["Content-Length", OK],
    ["chunked, with an extension and a trailer", CHUNKED],
  ] as const) {
    it(`reads a ${what} body the same whole or a byte at a time`, () => {
      for (const size of [Infinity, 1, 3, 7]) {
        const reader = read(text, size);
        expect(reader.done, `pieces of ${size}`).toBe(true);
        expect(reader.status).toBe(200);
        expect(reader.bodyBuffer().toString()).toBe('{"value":1}');
        expect(reader.keepAlive).toBe(true);
        expect(reader.trailing).toBe(false);
      }
    });
  }

  it("names fields in lower case and joins repeated ones", () => {
    const reader = read("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer a=1\r\nwww-authenticate: Bearer b=2\r\nContent-Length: 0\r\n\r\n");
    expect(reader.status).toBe(401);
    expect(reader.headers["www-authenticate"]).toBe("Bearer a=1, Bearer b=2");
    expect(reader.headers["x-ms-request-id"]).toBeUndefined();
  });

  it("keeps a field named like an object's own property as a field only", () => {
    const reader = read("HTTP/1.1 200 OK\r\nConstructor: c\r\n__proto__: p\r\nContent-Length: 0\r\n\r\n");
    expect(reader.headers["constructor"]).toBe("c");
    expect(reader.headers["__proto__"]).toBe("p");
    expect(reader.headers["toString"]).toBeUndefined();
  });

  it("skips an interim 100 Continue and reads the final response", () => {
    const reader = read(`HTTP/1.1 100 Continue\r\n\r\n${OK}`, 5);
    expect(reader.done).toBe(true);
    expect(reader.status).toBe(200);
    expect(reader.bodyBuffer().toString()).toBe('{"value":1}');
  });

  it("reads no body after HEAD, 204 or 304, whatever Content-Length says", () => {
    expect(read("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", Infinity, "HEAD").done).toBe(true);
    expect(read("HTTP/1.1 204 No Content\r\n\r\n").done).toBe(true);
    expect(read("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").done).toBe(true);
  });

  it("reads a body without length to the end of the connection, which is then not reused", () => {
    const reader = read("HTTP/1.1 200 OK\r\n\r\nto the end");
    expect(reader.done).toBe(false);
    reader.end();
    expect(reader.done).toBe(true);
    expect(reader.bodyBuffer().toString()).toBe("to the end");
    expect(reader.keepAlive).toBe(false);
  });

  it("does not reuse a connection the server closes, an HTTP/1.0 one, or one with bytes after the response", () => {
    expect(read("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keepAlive).toBe(false);
    expect(read("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keepAlive).toBe(false);
    const extra = read("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n");
    expect(extra.done).toBe(true);
    expect(extra.trailing).toBe(true);
  });

  it("fails a response cut off before its end as a hung-up socket", () => {
    const reader = read("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nshort");
    expect(failure(() => reader.end()).code).toBe("ECONNRESET");
    expect(failure(() => new HttpResponseReader("GET").end()).code).toBe("ECONNRESET");
    expect(new HttpResponseReader("GET").started).toBe(false);
    expect(reader.started).toBe(true);
  });

  it.each([
    ["a status line of another protocol", "HTTP/2 200\r\n\r\n", /invalid status line/],
    ["a status code that is not three digits", "HTTP/1.1 2x0 OK\r\n\r\n", /invalid status line/],
    ["a folded header line", "HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\nContent-Length: 0\r\n\r\n", /invalid header line/],
    ["a header line without a colon", "HTTP/1.1 200 OK\r\nnot a field\r\n\r\n", /invalid header line/],
    ["a space in a field name", "HTTP/1.1 200 OK\r\nContent Length: 0\r\n\r\n", /invalid header name/],
    ["both Content-Length and Transfer-Encoding", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", /both Content-Length and Transfer-Encoding/],
    ["a transfer coding other than chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", /unsupported transfer coding "gzip, chunked"/],
    ["a Content-Length that is not a number", "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", /invalid Content-Length/],
    ["two different Content-Lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", /invalid Content-Length/],
    ["a chunk size that is not hexadecimal", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", /invalid chunk size/],
    ["chunk data longer than its size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", /not followed by CRLF/],
    ["a protocol switch", "HTTP/1.1 101 Switching Protocols\r\n\r\n", /unexpected protocol switch/],
    ["a LF alone inside the fields", "HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 0\r\n\r\n", /CR or LF alone in a header line/],
    ["a CR alone inside a field value", "HTTP/1.1 200 OK\r\nX-A: 1\r2\r\nContent-Length: 0\r\n\r\n", /CR or LF alone in a header line/],
  ])("refuses %s", (_what, text, message) => {
    expect(failure(() => read(text)).message).toMatch(message);
    expect(failure(() => read(text, 1)).message).toMatch(message);
  });

  it(`refuses a head over ${MAX_HEAD_BYTES} bytes before its end arrives`, () => {
    const reader = new HttpResponseReader("GET");
    reader.push(Buffer.from("HTTP/1.1 200 OK\r\n"));
    expect(failure(() => reader.push(Buffer.from(`X-Big: ${"a".repeat(MAX_HEAD_BYTES)}`))).code).toBe("HPE_HEADER_OVERFLOW");
  });

  it(`refuses a body over ${MAX_BODY_BYTES} bytes when its length is announced, and when it is not`, () => {
    expect(failure(() => read(`HTTP/1.1 200 OK\r\nContent-Length: ${MAX_BODY_BYTES + 1}\r\n\r\n`)).code).toBe("RESPONSE_TOO_LARGE");
    expect(failure(() => read(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${(MAX_BODY_BYTES + 1).toString(16)}\r\n`)).code).toBe("RESPONSE_TOO_LARGE");
    const reader = read("HTTP/1.1 200 OK\r\n\r\n");
    reader.push(Buffer.alloc(MAX_BODY_BYTES));
    expect(failure(() => reader.push(Buffer.alloc(1))).code).toBe("RESPONSE_TOO_LARGE");
  });
});
