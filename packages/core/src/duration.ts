import { AgentgateError } from './errors.js';

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parse `120s`, `8h`, `1h30m`, `500ms` into milliseconds. */
export function parseDuration(text: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * units[m[2]!]!;
    matched = re.lastIndex;
  }
  if (matched === 0 || matched !== text.length) {
    throw new AgentgateError(
      'BAD_REQUEST',
      `invalid duration "${text}" (expected e.g. 500ms, 120s, 5m, 8h, 1h30m)`,
    );
  }
  return total;
}
