// PEM armour as Go's encoding/pem writes and reads it, so files are
// byte-identical to the upstream programs' output: 64-character base64 lines,
// "\n" endings, a trailing newline; decoding skips text between blocks and
// blocks that do not decode, and keeps leading "Key: value" header lines apart.

export interface PemBlock {
  type: string;
  headers: Record<string, string>;
  bytes: Buffer;
}

/** One block, as pem.EncodeToMemory writes it (no headers). */
export function encodePem(type: string, bytes: Uint8Array): string {
  const body = Buffer.from(bytes).toString("base64");
  let out = `-----BEGIN ${type}-----\n`;
  for (let i = 0; i < body.length; i += 64) out += body.slice(i, i + 64) + "\n";
  return out + `-----END ${type}-----\n`;
}

const PEM_BLOCK = /-----BEGIN ([^\r\n-]*)-----\r?\n([\s\S]*?)-----END \1-----/g;
// Standard alphabet with the padding Go's StdEncoding requires.
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

/** Every well-formed block in the text, in order; malformed blocks are skipped, as pem.Decode does. */
export function decodePemBlocks(data: string | Buffer): PemBlock[] {
  const text = typeof data === "string" ? data : data.toString("latin1");
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    const lines = match[2]!.split(/\r?\n/);
    const headers: Record<string, string> = {};
    let i = 0;
    for (; i < lines.length && lines[i]!.includes(":"); i++) {
      const line = lines[i]!;
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
    }
    const body = lines.slice(i).join("").replace(/\s/g, "");
    if (!BASE64_BODY.test(body) || body.length % 4 !== 0) continue;
    blocks.push({ type: match[1]!, headers, bytes: Buffer.from(body, "base64") });
  }
  return blocks;
}
