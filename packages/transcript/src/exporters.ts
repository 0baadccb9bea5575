/**
 * Transcript exporters: JSON Lines (one event per line) and asciicast v2 for terminal sessions
 * (https://docs.asciinema.org/manual/asciicast/v2/: a header line, then `[time, code, data]` event lines).
 */
import { StringDecoder } from 'node:string_decoder';
import type { TranscriptEvent } from '@agentgate/core';
import { attachedIoData, exportLine, storedText } from './event-codec.js';

/**
 * One JSON document per event, each ending in '\n'. Lazy: pass `store.events(id)` straight in. Events read from
 * the store are written as their exact stored bytes, so an external verifier can re-hash each line (strip the
 * `,"hash":"<64 hex>"}` suffix, append `}`, SHA-256) without agentgate; other events are JSON.stringify'd.
 * io events whose bytes the store keeps outside the event carry them as `"data"` just before the hash member
 * (exportLine and jsonlLineHashMatches in event-codec.ts say how such a line verifies).
 */
export function* exportJsonl(events: Iterable<TranscriptEvent>): Iterable<string> {
  for (const event of events) {
    const stored = storedText(event);
    if (stored === undefined) {
      yield JSON.stringify(event) + '\n';
      continue;
    }
    yield exportLine(stored, attachedIoData(event)) + '\n';
  }
}

/**
 * Whether a session has terminal output for asciicast: `io` bytes sent to the client (SSH channels, Docker
 * attach/exec/logs streams). PostgreSQL COPY data is table data, not a terminal.
 */
export function hasTerminalOutput(events: Iterable<TranscriptEvent>): boolean {
  for (const event of events) {
    if (event.type !== 'io' || event['channel'] === 'copy') continue;
    if (event['direction'] === 'out' || event['direction'] === 'err') return true;
  }
  return false;
}

export interface AsciicastOptions {
  /** Only io of this channel (an ssh channel id); default all channels. */
  channel?: string;
  /** Terminal size when no pty request was recorded (default 80x24). */
  width?: number;
  height?: number;
}

interface PtySize {
  cols: number;
  rows: number;
  term?: string;
}

/**
 * Render a session's output as asciicast v2. Frames come from `io` events with direction out/err, timed from the
 * session start with each chunk's recorded offset, so playback keeps the real pace. An SSH exec's command line is
 * not part of its output (no shell echoed it), so it is shown as a prompt line `$ COMMAND` when it was requested.
 */
export function exportAsciicast(events: Iterable<TranscriptEvent>, opts: AsciicastOptions = {}): string {
  let startTs: number | undefined;
  let pty: PtySize | undefined;
  const frames: string[] = [];
  // One decoder per stream so a UTF-8 sequence split across chunks is not mangled.
  const decoders = new Map<string, StringDecoder>();
  for (const event of events) {
    if (startTs === undefined) startTs = event.ts;
    pty ??= findPtySize(event);
    const exec = execCommandLine(event);
    if (exec !== undefined && (opts.channel === undefined || exec.channel === opts.channel)) {
      const seconds = (event.ts - startTs) / 1000;
      frames.push(JSON.stringify([Math.max(0, Number(seconds.toFixed(6))), 'o', exec.line]));
    }
    if (event.type !== 'io') continue;
    const direction = event['direction'];
    if (direction !== 'out' && direction !== 'err') continue;
    const channel = event['channel'] === undefined ? undefined : String(event['channel']);
    if (opts.channel !== undefined && channel !== opts.channel) continue;
    const data = Buffer.from(String(event['data'] ?? ''), 'base64');
    const chunkStart = typeof event['startTs'] === 'number' ? event['startTs'] : event.ts;
    const chunks = Array.isArray(event['chunks']) ? (event['chunks'] as unknown[]) : [[0, data.length]];
    const streamKey = `${channel ?? ''}/${direction}`;
    let decoder = decoders.get(streamKey);
    if (!decoder) {
      decoder = new StringDecoder('utf8');
      decoders.set(streamKey, decoder);
    }
    let offset = 0;
    for (const chunk of chunks) {
      const [dt, length] = Array.isArray(chunk) ? (chunk as [unknown, unknown]) : [0, data.length];
      const len = typeof length === 'number' ? length : 0;
      const text = decoder.write(data.subarray(offset, offset + len));
      offset += len;
      if (text.length === 0) continue;
      const seconds = (chunkStart + (typeof dt === 'number' ? dt : 0) - startTs) / 1000;
      frames.push(JSON.stringify([Math.max(0, Number(seconds.toFixed(6))), 'o', text]));
    }
  }
  const header: Record<string, unknown> = {
    version: 2,
    width: pty?.cols ?? opts.width ?? 80,
    height: pty?.rows ?? opts.height ?? 24,
  };
  if (startTs !== undefined) header['timestamp'] = Math.floor(startTs / 1000);
  if (pty?.term) header['env'] = { TERM: pty.term };
  return [JSON.stringify(header), ...frames].join('\n') + '\n';
}

/** An SSH exec request's recorded command (`ssh host CMD`), as the prompt line a terminal would have shown. */
function execCommandLine(event: TranscriptEvent): { line: string; channel?: string } | undefined {
  if (event.type !== 'command' || event['protocol'] !== 'ssh' || event['kind'] !== 'exec') return undefined;
  const text = typeof event['text'] === 'string' ? event['text'] : '';
  const detail = event['detail'] as { channel?: unknown } | undefined;
  const line = `$ ${text.replace(/\r?\n/g, '\r\n')}\r\n`;
  return typeof detail?.channel === 'string' ? { line, channel: detail.channel } : { line };
}

/** The recorded pty request (RFC 4254 §6.2): SSH's `channel.request` notice for `pty-req`, with its size. */
function findPtySize(event: TranscriptEvent): PtySize | undefined {
  if (event.type !== 'notice' || event['request'] !== 'pty-req') return undefined;
  const { cols, rows, term } = event;
  if (typeof cols !== 'number' || typeof rows !== 'number' || cols <= 0 || rows <= 0) return undefined;
  return typeof term === 'string' ? { cols, rows, term } : { cols, rows };
}
