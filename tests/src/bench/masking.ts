/**
 * Micro-benchmark: the masking package's cost per row for a 10,000 rows × 6 columns result with 2 masked columns,
 * (a) no masking, (b) column masks only, (c) column masks + content detectors on every text value, (d) as (c) on
 * rows whose free-text column holds detector candidates in every row (worst case for the pre-filter).
 * Run: npx tsc -b tests && node tests/dist/bench/masking.js [rows] [repeats]
 * Values are JS strings as a protocol decoding text-format DataRow fields would hold them.
 */
import type { ColumnSource, Identity, ValueMasker } from '@agentgate/core';
import { createMaskingService } from '@agentgate/masking';

const rowCount = Number(process.argv[2] ?? 10_000);
const repeats = Number(process.argv[3] ?? 7);

const identity: Identity = { name: 'bench', groups: ['agents'], source: 'token' };
const columns: ColumnSource[] = ['id', 'name', 'email', 'ssn', 'created_at', 'note'].map((column) => ({
  schema: 'public',
  table: 'users',
  column,
}));

function makeRows(noisy: boolean): string[][] {
  const rows: string[][] = [];
  for (let i = 0; i < rowCount; i++) {
    rows.push([
      String(100000 + i),
      `User Number ${i}`,
      `user${i}@example.com`,
      `${String(100 + (i % 800)).padStart(3, '0')}-${String(10 + (i % 89))}-${String(1000 + i).slice(-4)}`,
      `2024-0${1 + (i % 9)}-1${i % 10} 12:34:56.789+00`,
      noisy
        ? `contact backup${i}@example.org or call 555-${i % 1000}`
        : `order ${i} shipped to warehouse ${i % 17}`,
    ]);
  }
  return rows;
}

type RowMasker = (row: string[]) => string[];

function plan(
  masker: ReturnType<ReturnType<typeof createMaskingService>['forSession']> | undefined,
  detectors: boolean,
): RowMasker {
  if (!masker) return (row) => row;
  // Compiled once per result shape, as a protocol does on RowDescription.
  const perColumn: (ValueMasker | undefined)[] = columns.map(
    (c) => masker.forColumn(c) ?? (detectors ? masker.detectors : undefined),
  );
  return (row) => {
    const out = new Array<string>(row.length);
    for (let i = 0; i < row.length; i++) {
      const m = perColumn[i];
      out[i] = m ? m.mask(row[i]!) : row[i]!;
    }
    return out;
  };
}

function time(label: string, rows: string[][], maskRow: RowMasker): number {
  let best = Infinity;
  let sink = 0;
  for (let r = 0; r < repeats; r++) {
    const started = process.hrtime.bigint();
    for (const row of rows) sink += maskRow(row).length;
    best = Math.min(best, Number(process.hrtime.bigint() - started) / 1e6);
  }
  const perRowNs = (best * 1e6) / rows.length;
  console.log(
    `${label.padEnd(44)} ${best.toFixed(2).padStart(8)} ms / ${rows.length} rows   ${perRowNs.toFixed(0).padStart(6)} ns/row  (${sink > 0 ? 'ok' : ''})`,
  );
  return perRowNs;
}

let maskedValues = 0;
const service = createMaskingService(
  [
    {
      name: 'pii',
      columns: ['users.email', 'users.ssn'],
      detectors: [
        'email',
        'credit_card',
        'us_ssn',
        'aws_access_key',
        'private_key',
        'jwt',
        'iban',
        'bearer_token',
        'password_in_url',
        'github_token',
        'api_key',
      ],
      replacement: '****',
      strategy: 'replace',
    },
  ],
  { onMasked: (_rule, _detector, n) => (maskedValues += n) },
);
const masker = service.forSession(identity, 'bench');
// Decoded wire values are flat strings; template literals are cons strings: flatten like a decoder would.
const clean = JSON.parse(JSON.stringify(makeRows(false))) as string[][];
const noisy = JSON.parse(JSON.stringify(makeRows(true))) as string[][];

const none = time('no masking', clean, plan(undefined, false));
const columnsOnly = time('2 masked columns', clean, plan(masker, false));
const withDetectors = time('2 masked columns + detectors on 4 others', clean, plan(masker, true));
const worst = time('  … every note holds an email (worst case)', noisy, plan(masker, true));
console.log(`masked values counted: ${maskedValues}`);
console.log(
  JSON.stringify({ rows: rowCount, nsPerRow: { none, columnsOnly, withDetectors, worstCase: worst } }),
);
