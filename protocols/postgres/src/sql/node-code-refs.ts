/**
 * Code references one node of a statement contributes (code-collector.ts): the relations a statement writes,
 * maintains or refreshes, and the operators, casts and attribute-notation calls an expression uses, including the
 * comparisons PostgreSQL applies where none is written.
 */
import { lastName } from './code-collector.js';
import type { RelationEffect } from './code-refs.js';
import { statementEffects } from './effects.js';
import type { MutableFacts, WalkContext } from './walk-context.js';

type Node = Record<string, unknown>;

/** The relations a statement writes, maintains or refreshes (its reads are collected as the walk finds them). */
export function collectTargets(nodeType: string, body: Node, f: MutableFacts, ctx: WalkContext): void {
  const target = (rangeVar: unknown, effect: RelationEffect, cascade = false): void => {
    const rel = rangeVar as Node | undefined;
    if (typeof rel?.['relname'] === 'string')
      ctx.code.relation(rel['relname'].toLowerCase(), effect, f.index, cascade);
  };
  switch (nodeType) {
    case 'InsertStmt':
      target(body['relation'], 'insert');
      if ((body['onConflictClause'] as Node | undefined)?.['action'] === 'ONCONFLICT_UPDATE')
        target(body['relation'], 'update');
      break;
    case 'UpdateStmt':
      target(body['relation'], 'update');
      break;
    case 'DeleteStmt':
      target(body['relation'], 'delete');
      break;
    case 'MergeStmt':
      for (const effect of statementEffects(nodeType, body))
        target(body['relation'], effect.command.toLowerCase() as RelationEffect);
      break;
    case 'CopyStmt':
      if (body['is_from'] === true) target(body['relation'], 'insert');
      break;
    case 'TruncateStmt':
      for (const r of (body['relations'] as Node[] | undefined) ?? [])
        target(r['RangeVar'], 'truncate', body['behavior'] === 'DROP_CASCADE');
      break;
    case 'RefreshMatViewStmt':
      target(body['relation'], 'refresh');
      break;
    case 'VacuumStmt': {
      const rels = (body['rels'] as Node[] | undefined) ?? [];
      // VACUUM / ANALYZE without a list processes every table.
      if (rels.length === 0) ctx.code.relation('*', 'maintain', f.index);
      for (const r of rels) target((r['VacuumRelation'] as Node | undefined)?.['relation'], 'maintain');
      break;
    }
    case 'ClusterStmt':
      if (body['relation'] === undefined) ctx.code.relation('*', 'maintain', f.index);
      else target(body['relation'], 'maintain');
      break;
    case 'ReindexStmt':
      if (body['relation'] === undefined) ctx.code.relation('*', 'maintain', f.index);
      else target(body['relation'], 'maintain');
      break;
    case 'AlterTableStmt':
    case 'IndexStmt':
      target(body['relation'], 'maintain');
      break;
  }
}

/** Operators that PostgreSQL applies by name where none is written (btree/hash equality and ordering). */
const IMPLICIT_EQUALITY = ['='];
const IMPLICIT_ORDERING = ['<', '>'];
const BETWEEN_OPERATORS = ['>=', '<=', '<', '>'];

/** Code references in one node: operators, casts, attribute-notation calls, implicit comparisons. */
export function collectNode(nodeType: string, node: Node, f: MutableFacts, ctx: WalkContext): void {
  const code = ctx.code;
  const operators = (ops: readonly string[]): void => {
    for (const op of ops) code.operator(op, f.index);
  };
  switch (nodeType) {
    case 'A_Expr': {
      const kind = String(node['kind']);
      if (kind.includes('BETWEEN')) operators(BETWEEN_OPERATORS);
      else {
        const op = lastName(node['name']);
        if (op !== undefined) code.operator(op, f.index);
      }
      break;
    }
    case 'SubLink': {
      const op = lastName(node['operName']);
      if (op !== undefined) code.operator(op, f.index);
      break;
    }
    case 'SortBy': {
      const op = lastName(node['useOp']);
      operators(op === undefined ? IMPLICIT_ORDERING : [op]);
      break;
    }
    case 'TypeCast': {
      const type = lastName((node['typeName'] as Node | undefined)?.['names']);
      if (type !== undefined) code.type(type, f.index);
      break;
    }
    case 'ColumnRef': {
      // `row.f` is f(row) when the row has no column f (PostgreSQL docs "Function Call": attribute notation).
      const fields = (node['fields'] as unknown[] | undefined) ?? [];
      const name = fields.length >= 2 ? lastName(fields) : undefined;
      if (name !== undefined) code.attributeCall(name, f.index);
      break;
    }
    case 'A_Indirection':
      for (const item of (node['indirection'] as Node[] | undefined) ?? []) {
        const s = item['String'] as Node | undefined;
        if (typeof s?.['sval'] === 'string') code.attributeCall(s['sval'].toLowerCase(), f.index);
      }
      break;
    case 'JoinExpr':
      if (node['usingClause'] !== undefined || node['isNatural'] === true) operators(IMPLICIT_EQUALITY);
      break;
    case 'CaseExpr':
      if (node['arg'] !== undefined) operators(IMPLICIT_EQUALITY);
      break;
    case 'MinMaxExpr': // GREATEST / LEAST
      operators(IMPLICIT_ORDERING);
      break;
    case 'SelectStmt': {
      const setOperation = node['op'] !== undefined && node['op'] !== 'SETOP_NONE' && node['all'] !== true;
      if (node['groupClause'] !== undefined || node['distinctClause'] !== undefined || setOperation)
        operators(IMPLICIT_EQUALITY);
      break;
    }
    case 'WindowDef':
      if (node['partitionClause'] !== undefined) operators(IMPLICIT_EQUALITY);
      break;
  }
}
