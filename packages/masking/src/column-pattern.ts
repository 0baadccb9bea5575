/**
 * Column patterns from the config: `column`, `table.column` or `schema.table.column`, each part a glob where `*`
 * matches any run of characters and `?` one character, compared case-insensitively (PostgreSQL folds unquoted
 * identifiers to lower case; quoted mixed-case names are matched the same way on purpose: masking errs wide).
 */
import type { ColumnSource } from '@agentgate/core';

type PartMatcher = (name: string) => boolean;

export interface ColumnPattern {
  readonly text: string;
  /** Exact match of a real source column. */
  matches(source: ColumnSource): boolean;
  /** As `matches`, but a `*` in the query stands for "some name": true when any name there could match. */
  overlaps(source: ColumnSource): boolean;
}

function globPart(glob: string): PartMatcher {
  const lower = glob.toLowerCase();
  if (lower === '*') return () => true;
  if (!/[*?]/.test(lower)) return (name) => name.toLowerCase() === lower;
  const source = lower
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  const regex = new RegExp(`^${source}$`, 's');
  return (name) => regex.test(name.toLowerCase());
}

export function compileColumnPattern(text: string): ColumnPattern {
  const parts = text.split('.');
  // A bare column name means that column in any table of any schema; `table.column` means any schema.
  const [schemaGlob, tableGlob, columnGlob] =
    parts.length >= 3
      ? [parts[0]!, parts[1]!, parts.slice(2).join('.')]
      : parts.length === 2
        ? ['*', parts[0]!, parts[1]!]
        : ['*', '*', parts[0]!];
  const schema = globPart(schemaGlob);
  const table = globPart(tableGlob);
  const column = globPart(columnGlob);
  return {
    text,
    matches: (source) => column(source.column) && table(source.table) && schema(source.schema),
    overlaps: (source) =>
      (source.column === '*' || column(source.column)) &&
      (source.table === '*' || table(source.table)) &&
      (source.schema === '*' || schema(source.schema)),
  };
}
