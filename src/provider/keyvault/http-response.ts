// One HTTP/1.1 response read off a connection, as bytes arrive: the status
// line, the header fields, and the body framed by Content-Length, chunked
// transfer coding or the end of the connection (RFC 9112). Strict where
// leniency has been a smuggling or confusion risk: no folded header lines,
// no Content-Length beside Transfer-Encoding, no transfer coding but chunked,
// and bounded head and body sizes. The peers are Key Vault and Entra ID.

export const MAX_HEAD_BYTES = 64 * 1024;
export const MAX_BODY_BYTES = 32 * 1024 * 1024;

/** A response the client cannot accept; `code` as Node's parser names its errors. */
export class HttpProtocolError extends Error {
  readonly code: string;
  constructor(message: string, code = "HPE_INVALID_RESPONSE") {
    super(message);
    this.name = "HttpProtocolError";
    this.code = code;
  }
}

const CRLF = Buffer.from("\r\n");
const HEAD_END = Buffer.from("\r\n\r\n");

type Phase = "head" | "length" | "chunk-size" | "chunk-data" | "chunk-end" | "trailers" | "until-close" | "done";

export class HttpResponseReader {
  status = 0;
  /** Field names in lower case; repeated fields joined with ", "; no prototype (a field may be named anything). */
  readonly headers: Record<string, string> = Object.create(null) as Record<string, string>;
  /** Whether the connection may carry another request once this response is read. */
  keepAlive = false;
  private phase: Phase = "head";
  private pending: Buffer | undefined;
  private remaining = 0;
  private readonly body: Buffer[] = [];
  private bodyBytes = 0;
  /** Bytes arrived after the response: the connection is not reused then. */
  trailing = false;
  private readonly noBody: boolean;

  /** `method`: the request's (a HEAD response has no body). */
  constructor(method: string) {
    this.noBody = method === "HEAD";
  }

  get done(): boolean {
    return this.phase === "done";
  }

  /** Whether any byte of the response has arrived (a connection that closes before one may be retried). */
  get started(): boolean {
    return this.pending !== undefined || this.phase !== "head";
  }

  /** Takes the next bytes; true once the response is complete. Throws HttpProtocolError. */
  push(chunk: Buffer): boolean {
    if (this.phase === "done") {
      if (chunk.length > 0) this.trailing = true;
      return true;
    }
    this.pending = this.pending && this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    while (!this.done && this.step());
    if (this.done && this.pending.length > 0) this.trailing = true;
    return this.done;
  }

  /** The connection ended: completes a body read to the end, else throws (a cut-off response). */
  end(): void {
    if (this.phase === "until-close") {
      this.phase = "done";
      return;
    }
    if (this.phase !== "done") {
      const err = new HttpProtocolError("socket hang up", "ECONNRESET");
      throw err;
    }
  }

  bodyBuffer(): Buffer {
    return this.body.length === 1 ? this.body[0]! : Buffer.concat(this.body, this.bodyBytes);
  }

  /** Parses what `pending` holds for the current phase; false when it needs more bytes. */
  private step(): boolean {
    const pending = this.pending!;
    switch (this.phase) {
      case "head": {
        const end = pending.indexOf(HEAD_END);
        if (end < 0) {
          if (pending.length > MAX_HEAD_BYTES) throw new HttpProtocolError(`response head larger than ${MAX_HEAD_BYTES} bytes`, "HPE_HEADER_OVERFLOW");
          return false;
        }
        if (end > MAX_HEAD_BYTES) throw new HttpProtocolError(`response head larger than ${MAX_HEAD_BYTES} bytes`, "HPE_HEADER_OVERFLOW");
        this.pending = pending.subarray(end + 4);
        this.head(pending.toString("latin1", 0, end));
        return true;
      }
      case "length": {
        if (!this.takeBody(pending)) return false;
        this.phase = "done";
        return true;
      }
      case "chunk-size": {
        const end = pending.indexOf(CRLF);
        if (end < 0) {
          if (pending.length > 1024) throw new HttpProtocolError("chunk size line too long", "HPE_INVALID_CHUNK_SIZE");
          return false;
        }
        const line = pending.toString("latin1", 0, end);
        const semicolon = line.indexOf(";");
        const hex = (semicolon < 0 ? line : line.slice(0, semicolon)).trim();
        if (hex.length === 0 || hex.length > 8 || !isHex(hex)) throw new HttpProtocolError("invalid chunk size", "HPE_INVALID_CHUNK_SIZE");
        const size = parseInt(hex, 16);
        this.pending = pending.subarray(end + 2);
        if (size === 0) {
          this.phase = "trailers";
        } else {
          this.count(size);
          this.remaining = size;
          this.phase = "chunk-data";
        }
        return true;
      }
      case "chunk-data": {
        if (!this.takeBody(pending)) return false;
        this.phase = "chunk-end";
        return true;
      }
      case "chunk-end": {
        if (pending.length < 2) return false;
        if (pending[0] !== 13 || pending[1] !== 10) throw new HttpProtocolError("chunk data not followed by CRLF", "HPE_INVALID_CHUNK_SIZE");
        this.pending = pending.subarray(2);
        this.phase = "chunk-size";
        return true;
      }
      case "trailers": {
        // Trailer fields are read and dropped, up to the empty line.
        const end = pending.indexOf(CRLF);
        if (end < 0) {
          if (pending.length > MAX_HEAD_BYTES) throw new HttpProtocolError("trailer section too long", "HPE_HEADER_OVERFLOW");
          return false;
        }
        this.pending = pending.subarray(end + 2);
        if (end === 0) this.phase = "done";
        return true;
      }
      case "until-close": {
        if (pending.length > 0) this.keep(pending, true);
        this.pending = pending.subarray(pending.length);
        return false;
      }
      default:
        return false;
    }
  }

  /** The status line and the fields; decides how the body is framed. */
  private head(text: string): void {
    const lines = text.split("\r\n");
    const statusLine = lines[0]!;
    const version = statusLine.slice(0, 9);
    if ((version !== "HTTP/1.1 " && version !== "HTTP/1.0 ") || !isDigits(statusLine.slice(9, 12)) || (statusLine.length > 12 && statusLine[12] !== " ")) {
      throw new HttpProtocolError("invalid status line");
    }
    const status = Number(statusLine.slice(9, 12));
    if (status < 100) throw new HttpProtocolError("invalid status code");
    const headers: Record<string, string> = Object.create(null) as Record<string, string>;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.length === 0) continue;
      // a CR or LF alone: lines would be told apart otherwise than by a peer or proxy
      if (line.includes("\n") || line.includes("\r")) throw new HttpProtocolError("CR or LF alone in a header line");
      const colon = line.indexOf(":");
      if (colon <= 0 || line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9) throw new HttpProtocolError("invalid header line");
      const name = line.slice(0, colon).toLowerCase();
      if (name.includes(" ") || name.includes("\t")) throw new HttpProtocolError("invalid header name");
      const value = line.slice(colon + 1).trim();
      const previous = headers[name];
      headers[name] = previous === undefined ? value : `${previous}, ${value}`;
    }
    if (status < 200) {
      // 100 Continue and the like: the final response follows.
      if (status === 101) throw new HttpProtocolError("unexpected protocol switch");
      return;
    }
    this.status = status;
    Object.assign(this.headers, headers);
    const http11 = version === "HTTP/1.1 ";
    const connection = headers["connection"]?.toLowerCase() ?? "";
    this.keepAlive = http11 ? !connection.includes("close") : connection.includes("keep-alive");
    const transferEncoding = headers["transfer-encoding"];
    const contentLength = headers["content-length"];
    if (this.noBody || status === 204 || status === 304) {
      this.phase = "done";
      return;
    }
    if (transferEncoding !== undefined) {
      if (transferEncoding.toLowerCase() !== "chunked") throw new HttpProtocolError(`unsupported transfer coding "${transferEncoding}"`);
      if (contentLength !== undefined) throw new HttpProtocolError("both Content-Length and Transfer-Encoding");
      this.phase = "chunk-size";
      return;
    }
    if (contentLength !== undefined) {
      if (!isDigits(contentLength) || contentLength.length > 15) throw new HttpProtocolError("invalid Content-Length", "HPE_INVALID_CONTENT_LENGTH");
      const length = Number(contentLength);
      this.count(length);
      this.remaining = length;
      this.phase = length === 0 ? "done" : "length";
      return;
    }
    this.keepAlive = false;
    this.phase = "until-close";
  }

  /** Keeps up to `remaining` bytes of `pending` as body; true once all of them have come. */
  private takeBody(pending: Buffer): boolean {
    const take = Math.min(this.remaining, pending.length);
    if (take > 0) this.keep(pending.subarray(0, take));
    this.pending = pending.subarray(take);
    this.remaining -= take;
    return this.remaining === 0;
  }

  private count(bytes: number): void {
    if (this.bodyBytes + bytes > MAX_BODY_BYTES) throw new HttpProtocolError(`response body larger than ${MAX_BODY_BYTES} bytes`, "RESPONSE_TOO_LARGE");
  }

  /** `counted`: the size is not known ahead (a body read to the end), so it is checked here. */
  private keep(bytes: Buffer, counted = false): void {
    if (counted) this.count(bytes.length);
    this.body.push(bytes);
    this.bodyBytes += bytes.length;
  }
}

function isDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function isHex(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}
