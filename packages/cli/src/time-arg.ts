import { parseDuration } from '@agentgate/core';
import { CliError } from './cli-util.js';

/**
 * A point in time given on the command line: an ISO date or time (`2026-01-31`, `2026-01-31T12:00:00Z`; a date
 * alone is midnight UTC) or a duration before now (`24h`, `7d`, `1h30m`). Usage error (exit 2) otherwise.
 */
export function parseTimeArg(text: string, option: string, now = Date.now()): number {
  const trimmed = text.trim();
  try {
    return now - parseDuration(trimmed);
  } catch {
    // not a duration: an ISO time?
  }
  const ms = /^\d{4}-\d{2}-\d{2}/.test(trimmed) ? Date.parse(trimmed) : NaN;
  if (Number.isNaN(ms)) {
    throw new CliError(
      `${option}: expected an ISO date or time (2026-01-31, 2026-01-31T12:00:00Z) or a duration before now (24h, 7d), found ${JSON.stringify(text)}`,
      2,
    );
  }
  return ms;
}

/** A positive integer option. */
export function parseCount(text: string, option: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1)
    throw new CliError(`${option}: expected a positive integer, found ${JSON.stringify(text)}`, 2);
  return n;
}
