/**
 * ALTER TABLE and CREATE INDEX against the masking policy. These statements return no rows, but they can move masked
 * values where column masking does not see them, or have PostgreSQL quote them in an error:
 *
 * - a generated column computed from a masked column holds the value under a column name no rule names;
 * - `INHERIT parent` / `ATTACH PARTITION` make a masked relation's rows readable through the parent, whose
 *   RowDescription names the parent's (unmasked) columns;
 * - a CHECK constraint, a foreign key or a unique index is validated against every existing row, and its
 *   failure quotes the row's value (`Key (api_key)=(…) is not present`, `invalid input syntax for type integer`).
 *
 * The first two are refused; for the third the relation is charged as read (so error texts are scrubbed as for a
 * SELECT of it) and the expressions are analysed like any other (casts of masked values refused).
 */
import type { Node } from './lineage.js';

export interface AlterationChecks {
  /** The first masked column the expression's value is computed from, described, or undefined. */
  maskedSource(node: unknown, relation: Node): string | undefined;
  /** The relation (a RangeVar) has masked columns. */
  hasMasked(relation: Node): boolean;
  refuse(message: string): void;
}

export function checkAlterTable(stmt: Node, checks: AlterationChecks): void {
  const relation = stmt['relation'] as Node | undefined;
  if (!relation) return;
  const name = relationName(relation);
  const hasMasked = checks.hasMasked(relation);
  const cmds = ((stmt['cmds'] as Node[] | undefined) ?? []).map((c) => (c['AlterTableCmd'] ?? {}) as Node);
  for (const cmd of cmds) {
    const subtype = cmd['subtype'];
    if (subtype === 'AT_AlterColumnType' && hasMasked) {
      checks.refuse(`renaming or moving ${name}, which has masked columns, is refused`);
    } else if (subtype === 'AT_AddInherit' && hasMasked) {
      checks.refuse(
        `making ${name}, which has masked columns, inherit another table is refused (its rows would be read through the parent unmasked)`,
      );
    } else if (subtype === 'AT_AttachPartition') {
      const partition = (cmd['def'] as Node | undefined)?.['PartitionCmd'] as Node | undefined;
      const child = partition?.['name'] as Node | undefined;
      if (child && checks.hasMasked(child))
        checks.refuse(
          `attaching ${relationName(child)}, which has masked columns, as a partition is refused (its rows would be read through the parent unmasked)`,
        );
    } else {
      const source = checks.maskedSource(generatedExpression(cmd), relation);
      if (source !== undefined)
        checks.refuse(
          `a generated column computed from masked column ${source} is refused (it would hold the value unmasked)`,
        );
    }
  }
  // Constraint and default expressions: casts and function calls are found the same way as in a SELECT list.
  checks.maskedSource(
    cmds.map((c) => c['def']),
    relation,
  );
}

export function checkCreateIndex(stmt: Node, checks: AlterationChecks): void {
  const relation = stmt['relation'] as Node | undefined;
  if (!relation) return;
  checks.maskedSource([stmt['indexParams'], stmt['whereClause']], relation);
}

/** The expression of `ADD COLUMN … GENERATED ALWAYS AS (…)` or `ALTER COLUMN … SET EXPRESSION AS (…)`. */
function generatedExpression(cmd: Node): unknown {
  if (cmd['subtype'] === 'AT_SetExpression') return cmd['def'];
  if (cmd['subtype'] !== 'AT_AddColumn') return undefined;
  const column = (cmd['def'] as Node | undefined)?.['ColumnDef'] as Node | undefined;
  const constraints = (column?.['constraints'] as Node[] | undefined) ?? [];
  return constraints
    .map((c) => c['Constraint'] as Node | undefined)
    .filter((c) => c?.['contype'] === 'CONSTR_GENERATED')
    .map((c) => c?.['raw_expr']);
}

function relationName(rangeVar: Node): string {
  const name = String(rangeVar['relname']).toLowerCase();
  return typeof rangeVar['schemaname'] === 'string'
    ? `${rangeVar['schemaname'].toLowerCase()}.${name}`
    : name;
}
