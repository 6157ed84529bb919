// PEM armour: splitting a PEM bundle into typed DER blocks and writing blocks
// the way Go's pem.EncodeToMemory does (64-character lines, "\n" endings).

export interface PemBlock {
  type: string;
  der: Buffer;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

export function looksLikePem(text: string): boolean {
  return text.includes("-----BEGIN ");
}

/** Every PEM block in the text, in order; headers (Proc-Type etc.) are skipped. */
export function splitPem(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(BLOCK)) {
    const body = match[2]!
      .split(/\r?\n/)
      .filter((line) => line.trim() !== "" && !line.includes(":"))
      .join("");
    blocks.push({ type: match[1]!, der: Buffer.from(body, "base64") });
  }
  return blocks;
}

export function toPem(type: string, der: Buffer): string {
  const base64 = der.toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < base64.length; i += 64) lines.push(base64.slice(i, i + 64));
  return `-----BEGIN ${type}-----\n${lines.join("\n")}\n-----END ${type}-----\n`;
}
