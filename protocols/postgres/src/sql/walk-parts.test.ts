/** The pieces of the statement walk on their own: its state (walk-context.ts), node code references, routine bodies. */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { collectNode, collectTargets } from './node-code-refs.js';
import { loadPgParser, parseSql } from './pg-parser.js';
import { analyzeRoutineBody } from './plpgsql-bodies.js';
import {
  copyFacts,
  lowerName,
  names,
  newContext,
  newFacts,
  pushEffect,
  pushFacts,
  relationName,
  rollUp,
  type MutableFacts,
  type WalkContext,
} from './walk-context.js';

type Node = Record<string, unknown>;

beforeAll(async () => {
  await loadPgParser();
});

/** The one statement of `sql`, its node type and body, with fresh facts for it in a fresh context. */
function statement(sql: string): { type: string; body: Node; f: MutableFacts; ctx: WalkContext } {
  const stmt = parseSql(sql).stmts?.[0]?.stmt;
  const type = Object.keys(stmt ?? {})[0]!;
  const ctx = newContext();
  const f = newFacts(type, { text: sql, span: undefined });
  pushFacts(ctx, f);
  return { type, body: stmt![type] as Node, f, ctx };
}

describe('walk context', () => {
  it('numbers facts as they are pushed and rolls tables and functions up', () => {
    const ctx = newContext();
    const parent = newFacts('SELECT', { text: 'SELECT 1', span: 0 });
    const child = newFacts('DELETE', { text: 'DELETE FROM t', span: undefined });
    pushFacts(ctx, parent);
    pushFacts(ctx, child);
    expect([parent.index, child.index]).toEqual([0, 1]);
    child.tables.add('t');
    child.functions.add('f');
    rollUp(parent, child);
    expect([...parent.tables, ...parent.functions]).toEqual(['t', 'f']);
    const copy = copyFacts(child, 'COPY PROGRAM');
    expect({ command: copy.command, text: copy.text, tables: [...copy.tables] }).toEqual({
      command: 'COPY PROGRAM',
      text: 'DELETE FROM t',
      tables: ['t'],
    });
  });

  it('pushes a derived effect with its own tables, or the statement’s when it names none', () => {
    const ctx = newContext();
    const f = newFacts('MERGE', { text: 'MERGE …', span: 0 });
    f.tables.add('target');
    pushFacts(ctx, f);
    pushEffect(f, { command: 'DELETE', unfilteredWrite: true }, ctx);
    pushEffect(f, { command: 'TRUNCATE', tables: ['other'], unfilteredWrite: false, dynamic: true }, ctx);
    const derived = ctx.facts.slice(1).map((d) => [d.command, [...d.tables], d.unfilteredWrite, d.dynamic]);
    expect(derived).toEqual([
      ['DELETE', ['target'], true, false],
      ['TRUNCATE', ['other'], false, true],
    ]);
  });

  it('reads name lists and relation names as rules speak of them', () => {
    expect(names([{ String: { sval: 'Public' } }, { String: { sval: 'F' } }, { A_Star: {} }])).toEqual([
      'Public',
      'F',
    ]);
    expect(names(undefined)).toEqual([]);
    expect(lowerName(['Public', 'F'])).toBe('public.f');
    expect(relationName({ relname: 'users', schemaname: 'app' })).toBe('app.users');
    expect(relationName({ relname: 'users' })).toBe('users');
  });
});

describe('node code references', () => {
  const relations = (ctx: WalkContext): string[] =>
    ctx.code.refs.relations.map((r) => `${r.effect}:${r.name}${r.cascade ? ' cascade' : ''}`);

  it('reports the relations a statement writes or maintains', () => {
    const upsert = statement('INSERT INTO Users VALUES (1) ON CONFLICT (id) DO UPDATE SET n = 1');
    collectTargets(upsert.type, upsert.body, upsert.f, upsert.ctx);
    expect(relations(upsert.ctx)).toEqual(['insert:users', 'update:users']);
    const truncate = statement('TRUNCATE a, b CASCADE');
    collectTargets(truncate.type, truncate.body, truncate.f, truncate.ctx);
    expect(relations(truncate.ctx)).toEqual(['truncate:a cascade', 'truncate:b cascade']);
    const vacuum = statement('VACUUM');
    collectTargets(vacuum.type, vacuum.body, vacuum.f, vacuum.ctx);
    expect(relations(vacuum.ctx)).toEqual(['maintain:*']);
  });

  it('reports operators written and implied, casts and attribute calls', () => {
    const { f, ctx } = statement('SELECT 1');
    collectNode('A_Expr', { kind: 'AEXPR_BETWEEN' }, f, ctx);
    collectNode('SortBy', {}, f, ctx);
    collectNode('TypeCast', { typeName: { names: [{ String: { sval: 'mytype' } }] } }, f, ctx);
    collectNode('ColumnRef', { fields: [{ String: { sval: 'u' } }, { String: { sval: 'purge' } }] }, f, ctx);
    const refs = ctx.code.refs;
    expect(refs.operators.map((o) => o.name)).toEqual(['>=', '<=', '<', '>', '<', '>']);
    expect(refs.types.map((t) => t.name)).toEqual(['mytype']);
    expect(refs.calls.map((c) => `${c.name}${c.attribute ? '@' : ''}`)).toEqual(['purge@']);
  });
});

describe('routine bodies', () => {
  function body(sql: string, optionsKey: 'options' | 'args', language: string) {
    const s = statement(sql);
    const nested: string[] = [];
    analyzeRoutineBody(s.body[optionsKey], language, s.f, s.ctx, (text) => void nested.push(text));
    return { nested, f: s.f, ctx: s.ctx };
  }

  it('hands an SQL body to the nested analysis, and counts a body in another language as dynamic', () => {
    const sql = body("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DELETE FROM t'", 'options', 'sql');
    expect(sql.nested).toEqual(['DELETE FROM t']);
    const python = body("CREATE FUNCTION f() RETURNS void LANGUAGE plpython3u AS 'pass'", 'options', 'sql');
    expect([python.nested, python.f.dynamic]).toEqual([[], true]);
  });

  it('reads PL/pgSQL: a literal EXECUTE is analysed, a computed one is a dynamic EXECUTE fact', () => {
    const literal = body("DO $$BEGIN EXECUTE 'DROP TABLE t'; END$$", 'args', 'plpgsql');
    expect(literal.nested).toEqual(['DROP TABLE t']);
    const computed = body("DO $$BEGIN EXECUTE 'DROP TABLE ' || 't'; END$$", 'args', 'plpgsql');
    expect(computed.nested).toEqual(["SELECT 'DROP TABLE ' || 't'"]);
    const dynamic = computed.ctx.facts.filter((fact) => fact.dynamic).map((fact) => fact.command);
    expect(dynamic).toEqual(['EXECUTE']);
  });
});
