/**
 * A listener's caps on connections that have not authenticated yet (docs/configuration.md, Docker listeners).
 * Engine-neutral: the engine reports when a connection authenticated (`ConnectionControl`).
 */
import type { Logger, UnauthenticatedLimits } from '@agentgate/core';

/** One connection counted as unauthenticated until it authenticates or closes. */
export interface Admission {
  authenticated(): void;
  closed(): void;
}

/** How often, at most, refusals over the caps are logged (with the number refused since the last line). */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/**
 * The listener's caps on connections that have not authenticated yet, in total and per source address, like
 * OpenSSH's MaxStartups and PerSourceMaxStartups: a connection over either is closed as soon as it is accepted, so
 * clients that never authenticate cannot hold every slot of the listener, nor one source all of its own.
 */
export class UnauthenticatedConnections {
  private total = 0;
  private readonly bySource = new Map<string, number>();
  private refusedSinceLog = 0;
  private logTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly limits: UnauthenticatedLimits,
    private readonly log: Logger,
  ) {}

  /** Count a new connection, or null when a cap is reached (the caller closes it). */
  admit(source: string): Admission | null {
    const fromSource = this.bySource.get(source) ?? 0;
    if (this.total >= this.limits.maxConnections || fromSource >= this.limits.maxPerSource) {
      this.refused(source, this.total >= this.limits.maxConnections ? 'listener' : 'source');
      return null;
    }
    this.total++;
    this.bySource.set(source, fromSource + 1);
    let counted = true;
    const release = (): void => {
      if (!counted) return;
      counted = false;
      this.total--;
      const left = (this.bySource.get(source) ?? 1) - 1;
      if (left === 0) this.bySource.delete(source);
      else this.bySource.set(source, left);
    };
    return { authenticated: release, closed: release };
  }

  close(): void {
    clearTimeout(this.logTimer);
    this.logTimer = undefined;
  }

  private refused(source: string, cap: 'listener' | 'source'): void {
    if (this.logTimer !== undefined) {
      this.refusedSinceLog++;
      return;
    }
    this.log.warn('connection refused: too many unauthenticated connections', {
      source,
      cap,
      maxConnections: this.limits.maxConnections,
      maxPerSource: this.limits.maxPerSource,
    });
    const flush = (): void => {
      this.logTimer = undefined;
      if (this.refusedSinceLog === 0) return;
      this.log.warn('connections refused: too many unauthenticated connections', {
        refused: this.refusedSinceLog,
        periodMs: REFUSAL_LOG_INTERVAL_MS,
      });
      this.refusedSinceLog = 0;
      this.logTimer = setTimeout(flush, REFUSAL_LOG_INTERVAL_MS).unref();
    };
    this.logTimer = setTimeout(flush, REFUSAL_LOG_INTERVAL_MS).unref();
  }
}
