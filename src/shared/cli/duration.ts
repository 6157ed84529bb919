// Go-style durations ("2m", "30s", "1h30m", "500ms"), which the upstream
// flags use, so users can keep their values.

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Parses a Go duration into milliseconds; throws on anything Go would reject. */
export function parseDuration(text: string): number {
  const input = text.trim();
  if (input === "0") return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let index = 0;
  let sign = 1;
  if (input.startsWith("-") || input.startsWith("+")) {
    sign = input.startsWith("-") ? -1 : 1;
    index = 1;
  }
  if (index >= input.length) throw new Error(`invalid duration "${text}"`);
  while (index < input.length) {
    re.lastIndex = index;
    const match = re.exec(input);
    if (!match) throw new Error(`invalid duration "${text}"`);
    total += Number(match[1]) * (UNIT_MS[match[2]!] ?? NaN);
    index = re.lastIndex;
  }
  if (!Number.isFinite(total)) throw new Error(`invalid duration "${text}"`);
  return sign * total;
}

/** Formats milliseconds the way Go prints a duration, for logs and errors. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  const parts: string[] = [];
  let rest = Math.abs(ms);
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  if (h) parts.push(`${h}h`);
  if (h || m) parts.push(`${m}m`);
  if (rest || parts.length === 0) parts.push(`${Number((rest / 1000).toFixed(3))}s`);
  return (ms < 0 ? "-" : "") + parts.join("");
}
