/**
 * COPY … TO STDOUT rows (PostgreSQL docs "COPY", text format: one CopyData per row, fields separated by tab,
 * `\N` for NULL, backslash escapes; a raw tab byte is always a separator). Fields at masked positions are replaced;
 * content detectors run on the whole row. CSV and binary formats are refused upstream of here for masked columns.
 */
import type { ValueMasker } from '@agentgate/core';
import { BackendMessage } from '../codec/message-types.js';

export function maskCopyRow(
  message: Buffer,
  positions: ReadonlyMap<number, ValueMasker> | null,
  width: number,
  detectors: ValueMasker | undefined,
  remember: (value: string) => void,
): Buffer {
  if (!positions && !detectors) return message;
  const line = message.toString('utf8', 5);
  let out = line;
  if (positions) {
    const newline = out.endsWith('\n') ? '\n' : '';
    const fields = (newline ? out.slice(0, -1) : out).split('\t');
    // Not the width the positions were planned for: mask every field rather than guess.
    const targets: Iterable<[number, ValueMasker]> =
      fields.length === width
        ? positions
        : fields.map((_, i) => [i, positions.values().next().value!] as [number, ValueMasker]);
    for (const [i, masker] of targets) {
      const field = fields[i];
      if (field === undefined || field === '\\N') continue;
      const value = unescapeCopy(field);
      const masked = masker.mask(value);
      if (masked !== value) {
        remember(value);
        fields[i] = escapeCopy(masked);
      }
    }
    out = fields.join('\t') + newline;
  }
  if (detectors) out = detectors.mask(out);
  if (out === line) return message;
  const body = Buffer.from(out, 'utf8');
  const result = Buffer.allocUnsafe(5 + body.length);
  result[0] = BackendMessage.CopyData;
  result.writeInt32BE(4 + body.length, 1);
  body.copy(result, 5);
  return result;
}

const UNESCAPES: Record<string, string> = {
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
};

function unescapeCopy(field: string): string {
  return field.includes('\\') ? field.replace(/\\(.)/gs, (_, c: string) => UNESCAPES[c] ?? c) : field;
}

function escapeCopy(value: string): string {
  return value.replace(/[\\\t\n\r]/g, (c) =>
    c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r',
  );
}
