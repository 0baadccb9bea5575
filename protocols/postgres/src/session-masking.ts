/**
 * One session's masking: the result filter built for its masker, prepared before the first ReadyForQuery, rebuilt
 * when a reload changed the masking rules, and asked about each allowed statement before it is forwarded.
 */
import type { Identity, Logger } from '@agentgate/core';
import type { EngineShared } from './engine-shared.js';
import { passThroughFilter, type ResultFilter, type StatementCheckResult } from './result-filter.js';
import type { Refusal } from './startup.js';

const NO_PLAN: StatementCheckResult = { plan: undefined };

export class SessionMasking {
  private current: ResultFilter = passThroughFilter;
  /** The masking generation `current` was built for (MaskingService.generation). */
  private generation = 0;

  constructor(
    private readonly shared: EngineShared,
    private readonly identity: Identity,
    private readonly database: string,
    private readonly log: Logger,
  ) {}

  get filter(): ResultFilter {
    return this.current;
  }

  /** A reload changed the masking rules since the filter was built. */
  get changed(): boolean {
    return (this.shared.deps.masking.generation ?? 0) !== this.generation;
  }

  /** Build and prepare the filter for the masking rules as they stand now; a refusal ends the session. */
  async load(): Promise<Refusal | undefined> {
    const { listener, deps } = this.shared;
    const generation = deps.masking.generation ?? 0;
    const masker = deps.masking.forSession(this.identity, listener.name);
    let filter = passThroughFilter;
    if (masker.active) {
      if (!this.shared.resultFilter)
        return {
          sqlstate: '0A000',
          message: 'agentgate: masking applies to this session but is not available for postgres',
        };
      filter = this.shared.resultFilter({ masker, listener: listener.name, database: this.database });
    }
    if (filter.prepare) {
      try {
        await filter.prepare();
      } catch (err) {
        this.log.error('preparing result masking failed', { err });
        return { sqlstate: 'XX000', message: 'agentgate: masking could not be prepared for this session' };
      }
    }
    this.current = filter;
    this.generation = generation;
    return undefined;
  }

  /** The filter's say on an allowed statement: a refusal, or the plan for its results. */
  async check(texts: readonly string[]): Promise<StatementCheckResult> {
    const filter = this.current;
    const check = filter.checkStatement;
    if (!filter.active || !check) return NO_PLAN;
    // A prepared name the gateway is unsure of carries every text it has seen: the filter merges all their plans
    // conservatively (an array), so whichever text the server runs, its masked outputs are covered.
    const plans: unknown[] = [];
    for (const text of texts) {
      let result: StatementCheckResult;
      try {
        result = await check.call(filter, text);
      } catch (err) {
        this.log.error('masking check failed', { err });
        return { refusal: 'agentgate: refused: the result could not be checked for masked columns' };
      }
      if ('refusal' in result) return result;
      plans.push(result.plan);
    }
    return { plan: plans.length <= 1 ? plans[0] : plans };
  }
}
