/**
 * The `result` event of one decided Docker request: the status the client got and, capped, the body it got, passed
 * through the content detectors before it is stored (docs/transcript.md, "Docker").
 */
import type { HttpResultBody, Logger, SessionRecorder, ValueMasker } from '@agentgate/core';
import type { CanonicalRequest } from './routes.js';

/** Recorded response bodies are capped; the byte count is always recorded. */
export const RECORDED_BODY_CAP = 64 * 1024;

/** A request the gate decided: what its answer is recorded under. */
export interface DecidedRequest {
  readonly req: CanonicalRequest;
  readonly commandSeq: number | undefined;
  readonly action: string;
}

/** One answer as recorded. */
export interface Answer {
  readonly status: number;
  /** The body the client got (capped here, masked for the record); absent when none is recorded. */
  readonly body?: Buffer;
  /** The body is text (JSON, plain text): recorded as such, else only counted. */
  readonly textual?: boolean;
  readonly maskedValues?: number;
  /** The body's full size when more went by than `body` holds. */
  readonly bytes?: number;
}

export interface AnswerSink {
  readonly recorder: SessionRecorder;
  /** The session's content detectors, when masking applies to it. */
  readonly detectors: ValueMasker | undefined;
  readonly log: Logger;
  /** The connection's last recorded body text (a client polling gets the same answer again and again). */
  readonly lastText?: AnswerTextMemo;
}

/**
 * The text of the last recorded body that the detectors left unchanged, and its bytes: the same bytes under the
 * same detectors give the same text, so they are neither decoded nor scanned again. A body the detectors changed is
 * not kept (masking it counts the masked values each time).
 */
export class AnswerTextMemo {
  private bytes: Buffer | undefined;
  private detectors: ValueMasker | undefined;
  private text = '';

  textOf(body: Buffer, detectors: ValueMasker | undefined): string {
    if (this.bytes !== undefined && this.detectors === detectors && this.bytes.equals(body)) return this.text;
    const text = body.toString('utf8');
    const masked = detectors ? detectors.mask(text) : text;
    if (masked === text) {
      this.bytes = Buffer.from(body);
      this.detectors = detectors;
      this.text = text;
    } else this.bytes = undefined;
    return masked;
  }
}

/** Append the request's `result`; a store failure is logged (the gate already refuses commands fail-closed). */
export function recordAnswer(sink: AnswerSink, decided: DecidedRequest, answer: Answer): void {
  const { status, body, textual = false, maskedValues = 0, bytes } = answer;
  const rec: { -readonly [K in keyof HttpResultBody]: HttpResultBody[K] } = {
    method: decided.req.method,
    path: decided.req.path,
    action: decided.action,
    status,
  };
  if (decided.commandSeq !== undefined) rec.commandSeq = decided.commandSeq;
  if (body !== undefined) {
    const capped = body.length > RECORDED_BODY_CAP ? body.subarray(0, RECORDED_BODY_CAP) : body;
    if (textual) {
      if (sink.lastText) rec.body = sink.lastText.textOf(capped, sink.detectors);
      else {
        const text = capped.toString('utf8');
        rec.body = sink.detectors ? sink.detectors.mask(text) : text;
      }
    }
    rec.bodyBytes = bytes ?? body.length;
    if (body.length > RECORDED_BODY_CAP || (bytes ?? 0) > RECORDED_BODY_CAP) rec.truncated = true;
  } else if (bytes !== undefined) rec.bodyBytes = bytes;
  if (maskedValues > 0) rec.maskedValues = maskedValues;
  try {
    sink.recorder.append('result', rec);
  } catch (err) {
    sink.log.warn('docker record failed', { err: String(err) });
  }
}
