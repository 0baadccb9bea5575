/**
 * `agentgate replay`: a session told back in the shape of its protocol — terminal playback for SSH (io bytes at
 * recorded pace, scaled by --speed), an SQL timeline for PostgreSQL, an API timeline for Docker.
 */
import type { Writable } from 'node:stream';
import { recordedDecision, type RecordedDecision, type TranscriptEvent } from '@agentgate/core';
import type { SessionSummary } from '@agentgate/transcript';
import { formatTable } from './cli-util.js';

export interface ReplayOptions {
  readonly speed: number;
  readonly out: Writable;
  /** dim the commands and decisions interleaved with terminal output (ANSI escapes: only for a terminal) */
  readonly colour?: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function rel(ts: number, start: number): string {
  return `+${((ts - start) / 1000).toFixed(3)}s`.padStart(10);
}

/** The io chunks of a coalesced `io` event with the time (ms since the epoch) each arrived. */
export function ioChunks(e: TranscriptEvent): { at: number; data: Buffer }[] {
  const data = Buffer.from(String(e['data'] ?? ''), 'base64');
  const start = typeof e['startTs'] === 'number' ? e['startTs'] : e.ts;
  const chunks = e['chunks'] as [number, number][] | undefined;
  if (!Array.isArray(chunks) || chunks.length === 0) return [{ at: start, data }];
  const out: { at: number; data: Buffer }[] = [];
  let off = 0;
  for (const [offset, len] of chunks) {
    out.push({ at: start + offset, data: data.subarray(off, off + len) });
    off += len;
  }
  return out;
}

function decisionLine(d: RecordedDecision): string {
  const rule = d.rule ? ` by rule ${d.rule}` : '';
  if (d.action === 'allow') return `allowed${rule}`;
  if (d.action === 'approve') return `held for approval${rule}`;
  return `DENIED${rule}${d.reason ? ` (${d.reason})` : ''}`;
}

function renderRows(result: TranscriptEvent): string {
  const desc = result['rowDescription'] as { names?: unknown } | null | undefined;
  const rows = result['rows'] as (string | null)[][] | undefined;
  if (!desc || !Array.isArray(desc.names) || !Array.isArray(rows)) return '';
  const table = formatTable(
    desc.names.map(String),
    rows.map((r) => r.map((v) => (v === null ? 'NULL' : typeof v === 'string' ? v : JSON.stringify(v)))),
  );
  const omitted = Number(result['rowsOmitted'] ?? 0);
  return (
    table.trimEnd().replace(/^/gm, '             ') +
    '\n' +
    (omitted > 0 ? `             (${omitted} more rows not recorded)\n` : '')
  );
}

export async function replaySession(
  summary: SessionSummary,
  events: Iterable<TranscriptEvent>,
  opts: ReplayOptions,
): Promise<void> {
  const { out, speed } = opts;
  const dim = (s: string): string => (opts.colour ? `\x1b[2m${s}\x1b[0m` : s);
  const start = summary.startedAt;
  out.write(
    `session ${summary.id}  ${summary.protocol} via ${summary.listener}  identity ${summary.identity}  started ${new Date(start).toISOString()}\n\n`,
  );
  let lastTs = start;
  const writeDecision = (d: RecordedDecision | undefined): void => {
    if (d === undefined) return;
    const line = decisionLine(d);
    if (summary.protocol === 'ssh') out.write(dim(`#   -> ${line}\r\n`));
    else out.write(`             -> ${line}\n`);
  };
  for (const e of events) {
    switch (e.type) {
      case 'command': {
        const text = String(e['text'] ?? '');
        if (summary.protocol === 'ssh') out.write(dim(`\r\n# ${rel(e.ts, start)} command: ${text}\r\n`));
        else out.write(`${rel(e.ts, start)}  ${summary.protocol === 'postgres' ? 'SQL' : 'API'}  ${text}\n`);
        writeDecision(recordedDecision(e));
        break;
      }
      case 'decision':
        writeDecision(recordedDecision(e));
        break;
      case 'approval.requested':
        out.write(`${rel(e.ts, start)}  approval ${String(e['approvalId'])} requested\n`);
        break;
      case 'approval.decided':
        out.write(
          `${rel(e.ts, start)}  approval ${String(e['approvalId'])} ${String(e['outcome'])}` +
            `${e['by'] ? ` by ${String(e['by'])}` : ''}${e['reason'] ? ` (${String(e['reason'])})` : ''}\n`,
        );
        break;
      case 'result': {
        if (summary.protocol === 'ssh') {
          if (e['exitStatus'] !== undefined)
            out.write(dim(`\r\n# exit status ${String(e['exitStatus'])}\r\n`));
          break;
        }
        const err = e['error'] as { code?: string; message?: string } | undefined;
        const parts: string[] = [];
        if (e['status'] !== undefined) parts.push(`HTTP ${String(e['status'])}`);
        if (e['commandTag'] !== undefined) parts.push(String(e['commandTag']));
        if (e['rowCount'] !== undefined && e['commandTag'] === undefined)
          parts.push(`${String(e['rowCount'])} rows`);
        if (e['durationMs'] !== undefined) parts.push(`${Number(e['durationMs']).toFixed(1)} ms`);
        if (err) parts.push(`ERROR ${err.code ?? ''} ${err.message ?? ''}`.trim());
        out.write(`             <- ${parts.join(', ')}\n`);
        out.write(renderRows(e));
        break;
      }
      case 'io': {
        const direction = String(e['direction']);
        if (direction === 'in' && summary.protocol === 'ssh') break; // what the user typed is echoed by the remote
        for (const chunk of ioChunks(e)) {
          const at = chunk.at;
          if (speed > 0 && summary.protocol === 'ssh')
            await sleep(Math.min(5000, Math.max(0, at - lastTs)) / speed);
          lastTs = at;
          if (summary.protocol === 'ssh') out.write(chunk.data);
          else
            out.write(
              `             ${direction === 'in' ? '>>' : '<<'} ${JSON.stringify(chunk.data.toString('utf8').slice(0, 200))}\n`,
            );
        }
        break;
      }
      case 'session.end':
        out.write(
          `${summary.protocol === 'ssh' ? '\r\n' : ''}${rel(e.ts, start)}  session ended${e['reason'] ? ` (${String(e['reason'])})` : ''}\n`,
        );
        break;
      default:
        break;
    }
    if (e.type !== 'io') lastTs = e.ts;
  }
}
