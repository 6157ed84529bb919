// base64url without padding, the encoding of JWK members and JWT parts.

export function toBase64Url(data: Buffer | Uint8Array | string): string {
  const buffer = typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data);
  return buffer.toString("base64url");
}

export function fromBase64Url(text: string): Buffer {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(text)) throw new Error("not base64url");
  return Buffer.from(text, "base64url");
}
