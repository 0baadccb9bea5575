/**
 * Upstream health for `/readyz`: each configured listener's upstream is probed (connect and log in with the
 * gateway's credentials) at most once per `maxAgeMs`, however often `/readyz` is asked, and only while it is asked.
 * A change of an upstream's health is logged once, with the cause.
 */
import { type ListenerConfig, type Logger, type UpstreamProbeResult } from '@agentgate/core';
import { probeDockerUpstream } from '@agentgate/docker';
import { probePostgresUpstream } from '@agentgate/postgres';
import { probeSshUpstream } from '@agentgate/ssh';

/** A probe that takes longer than this counts as failed (`connect`). */
export const PROBE_TIMEOUT_MS = 5_000;

/** Probe one listener's upstream, bounded by PROBE_TIMEOUT_MS. */
export function probeUpstream(listener: ListenerConfig): Promise<UpstreamProbeResult> {
  const signal = AbortSignal.timeout(PROBE_TIMEOUT_MS);
  const started = Date.now();
  const timedOut = new Promise<UpstreamProbeResult>((resolve) =>
    signal.addEventListener('abort', () =>
      resolve({
        ok: false,
        stage: 'connect',
        message: `no answer within ${PROBE_TIMEOUT_MS / 1000}s`,
        latencyMs: Date.now() - started,
      }),
    ),
  );
  const probed = (() => {
    switch (listener.protocol) {
      case 'postgres':
        return probePostgresUpstream(listener, signal);
      case 'ssh':
        return probeSshUpstream(listener, signal);
      case 'docker':
        return probeDockerUpstream(listener, signal);
    }
  })();
  return Promise.race([probed, timedOut]);
}

export interface UpstreamReport extends UpstreamProbeResult {
  /** ISO 8601: when this result was measured. */
  readonly checkedAt: string;
}

export class UpstreamHealth {
  #last: { at: number; results: Record<string, UpstreamReport> } | undefined;
  #round: Promise<Record<string, UpstreamReport>> | undefined;

  constructor(
    private readonly listeners: readonly ListenerConfig[],
    private readonly log: Logger,
    private readonly maxAgeMs = 10_000,
    private readonly probe: (listener: ListenerConfig) => Promise<UpstreamProbeResult> = probeUpstream,
  ) {}

  /**
   * Each listener's upstream as last probed. When that is older than `maxAgeMs` a new round starts in the
   * background and this answers with the last one, so `/readyz` stays fast (readiness probes time out in about a
   * second) even while an upstream takes its 5 s to fail; only the very first call waits for a round.
   */
  current(): Promise<Record<string, UpstreamReport>> {
    const last = this.#last;
    if (last !== undefined && Date.now() - last.at < this.maxAgeMs) return Promise.resolve(last.results);
    this.#round ??= this.#probeAll().finally(() => (this.#round = undefined));
    return last === undefined ? this.#round : Promise.resolve(last.results);
  }

  async #probeAll(): Promise<Record<string, UpstreamReport>> {
    const entries = await Promise.all(
      this.listeners.map(async (listener): Promise<[string, UpstreamReport]> => {
        const result = await this.probe(listener);
        return [listener.name, { ...result, checkedAt: new Date().toISOString() }];
      }),
    );
    const results = Object.fromEntries(entries);
    for (const [name, report] of entries) {
      const before = this.#last?.results[name];
      if (before?.ok === report.ok) continue;
      if (report.ok) {
        if (before !== undefined)
          this.log.info('upstream healthy again', { listener: name, message: report.message });
      } else
        this.log.warn('upstream probe failed', {
          listener: name,
          stage: report.stage,
          message: report.message,
        });
    }
    this.#last = { at: Date.now(), results };
    return results;
  }
}
