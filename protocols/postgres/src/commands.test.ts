import { describe, expect, it } from '@jest/globals';
import type { SqlStatementFacts } from '@agentgate/core';
import type { CommandAnalysis, SessionAnalysis } from './analysis.js';
import { analysedCommand, unknownPortalCommand, type CommandContext } from './commands.js';

const SELECT: SqlStatementFacts = {
  command: 'SELECT',
  tables: ['accounts'],
  functions: [],
  unfilteredWrite: false,
  text: 'SELECT * FROM accounts WHERE id = $1',
  dynamic: false,
};

/** A session analysis that answers every command with `result` (as a plain value with `plain`), and remembers the parameters it was given. */
function context(
  result: CommandAnalysis,
  plain = false,
): { ctx: CommandContext; seen: (readonly unknown[] | undefined)[] } {
  const seen: (readonly unknown[] | undefined)[] = [];
  const analysis: SessionAnalysis = {
    analyze: (_texts, params) => {
      seen.push(params);
      return plain ? result : Promise.resolve(result);
    },
    transactionEnded: () => undefined,
    close: () => undefined,
  };
  return { ctx: { analysis, unknownMatchesAll: false, database: 'app', user: 'devin' }, seen };
}

describe('commands', () => {
  it("records a Query's detail as the database and user only", async () => {
    const { ctx, seen } = context({ statements: [SELECT] });
    const { command, secrets } = await analysedCommand(ctx, ['SELECT 1'], undefined, 1);
    expect(seen).toEqual([undefined]);
    expect(JSON.stringify(command)).toBe(
      JSON.stringify({
        protocol: 'postgres',
        text: 'SELECT 1',
        statements: [SELECT],
        unknownMatchesAll: false,
        detail: { database: 'app', user: 'devin' },
      }),
    );
    expect(secrets).toEqual([]);
  });

  it('builds the command without a promise when the analysis came without one', async () => {
    const plain = analysedCommand(context({ statements: [SELECT] }, true).ctx, ['SELECT 1'], undefined, 1);
    expect(plain).not.toBeInstanceOf(Promise);
    const waited = analysedCommand(context({ statements: [SELECT] }).ctx, ['SELECT 1'], undefined, 1);
    expect(waited).toBeInstanceOf(Promise);
    expect(JSON.stringify((await waited).command)).toBe(
      JSON.stringify((plain as Awaited<typeof plain>).command),
    );
  });

  it("records an Execute's portal, statement and Bind parameters, in that order, after the database and user", async () => {
    const { ctx, seen } = context({ statements: [SELECT] });
    const portal = { portal: 'p1', statementName: 's1', params: ['10', null] };
    const { command } = await analysedCommand(ctx, [SELECT.text], portal, 3);
    expect(seen).toEqual([['10', null]]);
    // Key order is what the recorded JSON (and so the event's hash) carries.
    expect(JSON.stringify(command.detail)).toBe(
      '{"database":"app","user":"devin","portal":"p1","statementName":"s1","params":["10",null]}',
    );
  });

  it('records the redacted parameters in place of the sent ones, and keeps what the analysis refused', async () => {
    const { ctx } = context({
      statements: [SELECT],
      recordedParams: ['[REDACTED]'],
      recordedText: 'SELECT dblink_connect($1)',
      secrets: ['password=p4ss'],
      unanalysable: 'refused for the test',
    });
    const portal = { portal: '', statementName: null, params: ['password=p4ss'] };
    const { command, secrets } = await analysedCommand(ctx, ['SELECT dblink_connect($1)'], portal, 1);
    expect(command.detail).toEqual({
      database: 'app',
      user: 'devin',
      portal: '',
      statementName: null,
      params: ['[REDACTED]'],
    });
    expect(command.recordedText).toBe('SELECT dblink_connect($1)');
    expect(command.unanalysable).toBe('refused for the test');
    expect(secrets).toEqual(['password=p4ss']);
    // The parameters the client sent are not changed in place.
    expect(portal.params).toEqual(['password=p4ss']);
  });

  it('joins the texts a portal may run', async () => {
    const { ctx } = context({ statements: [SELECT, SELECT] });
    const portal = { portal: '', statementName: 's', params: [] };
    const { command } = await analysedCommand(ctx, ['SELECT 1', 'DROP TABLE t'], portal, 1);
    expect(command.text).toBe('SELECT 1;\nDROP TABLE t');
  });

  it('describes an Execute of an unknown portal as unanalysable, with the same detail', () => {
    const { ctx } = context({ statements: [] });
    const { command } = unknownPortalCommand(ctx, { portal: 'ghost', statementName: null, params: [] });
    expect(command.unanalysable).toBe('Execute of unknown portal "ghost"');
    expect(JSON.stringify(command.detail)).toBe(
      '{"database":"app","user":"devin","portal":"ghost","statementName":null,"params":[]}',
    );
  });
});
