/**
 * Row effects that a statement has besides its own command (protocols/postgres/README.md "Effects"): each becomes
 * a statement fact of its own, so a rule naming DELETE matches a MERGE whose action deletes, a TRUNCATE, or a
 * large-object unlink. A derived fact carries the enclosing statement's tables, functions and text, as the nested
 * statements of a writable CTE do; only the command (and whether the write is unfiltered) differs.
 */
import { containsNode } from './constants.js';

type Node = Record<string, unknown>;

export interface DerivedEffect {
  readonly command: string;
  readonly unfilteredWrite: boolean;
  /** Replaces the enclosing statement's tables (an effect on one named relation, e.g. pg_largeobject). */
  readonly tables?: readonly string[];
  /** Whose rows cannot be known before it runs (a subscription's, a publication of all tables). */
  readonly dynamic?: boolean;
}

const COLUMN_REFERENCES = new Set(['ColumnRef', 'CurrentOfExpr']);

const MERGE_COMMANDS: Record<string, string> = {
  CMD_INSERT: 'INSERT',
  CMD_UPDATE: 'UPDATE',
  CMD_DELETE: 'DELETE',
};

/** The effects of one statement node beyond its own command, in the order they are written. */
export function statementEffects(nodeType: string, body: Node): DerivedEffect[] {
  switch (nodeType) {
    case 'MergeStmt':
      return mergeEffects(body);
    case 'InsertStmt': {
      const conflict = body['onConflictClause'] as Node | undefined;
      // ON CONFLICT … DO UPDATE updates the conflicting rows (only those).
      return conflict?.['action'] === 'ONCONFLICT_UPDATE'
        ? [{ command: 'UPDATE', unfilteredWrite: false }]
        : [];
    }
    case 'TruncateStmt':
      return [{ command: 'DELETE', unfilteredWrite: true }];
    case 'CopyStmt':
      if (body['relation'] === undefined) return []; // COPY (query): the query is a statement of its own
      return [{ command: body['is_from'] === true ? 'INSERT' : 'SELECT', unfilteredWrite: false }];
    case 'CreateTableAsStmt': {
      const into = body['into'] as Node | undefined;
      return into?.['skipData'] === true ? [] : [{ command: 'INSERT', unfilteredWrite: false }];
    }
    case 'SelectStmt': {
      const into = body['intoClause'] as Node | undefined;
      // SELECT … INTO t: the server runs it as CREATE TABLE t AS, which fills t.
      return into?.['rel'] === undefined
        ? []
        : [
            { command: 'CREATE TABLE AS', unfilteredWrite: false },
            { command: 'INSERT', unfilteredWrite: false },
          ];
    }
    case 'RefreshMatViewStmt':
      // The rows are replaced: all removed, the query's rows inserted (WITH NO DATA only empties it).
      return body['skipData'] === true
        ? [{ command: 'DELETE', unfilteredWrite: true }]
        : [
            { command: 'DELETE', unfilteredWrite: true },
            { command: 'INSERT', unfilteredWrite: false },
          ];
    case 'CreatePublicationStmt':
      return publicationEffects(body);
    case 'AlterPublicationStmt':
      return body['action'] === 'AP_DropObjects' ? [] : publicationEffects(body);
    case 'CreateSubscriptionStmt':
    case 'AlterSubscriptionStmt':
      // A subscription applies the publisher's INSERT/UPDATE/DELETE to local tables of its choosing.
      return [{ command: 'INSERT', unfilteredWrite: true, tables: [], dynamic: true }];
    default:
      return [];
  }
}

function mergeEffects(body: Node): DerivedEffect[] {
  const joinFilters = containsNode(body['joinCondition'], COLUMN_REFERENCES);
  const out: DerivedEffect[] = [];
  for (const item of (body['mergeWhenClauses'] as Node[] | undefined) ?? []) {
    const clause = item['MergeWhenClause'] as Node | undefined;
    const command = MERGE_COMMANDS[String(clause?.['commandType'])];
    if (clause === undefined || command === undefined) continue; // DO NOTHING
    const filtered = joinFilters || containsNode(clause['condition'], COLUMN_REFERENCES);
    out.push({ command, unfilteredWrite: command !== 'INSERT' && !filtered });
  }
  return out;
}

/** Publishing tables lets every subscriber read them; ALL TABLES / TABLES IN SCHEMA reads ones not named. */
function publicationEffects(body: Node): DerivedEffect[] {
  const objects = (body['pubobjects'] as Node[] | undefined) ?? [];
  const named = objects.every(
    (o) => (o['PublicationObjSpec'] as Node | undefined)?.['pubobjtype'] === 'PUBLICATIONOBJ_TABLE',
  );
  const everything = body['for_all_tables'] === true || !named;
  return [
    everything
      ? { command: 'SELECT', unfilteredWrite: false, dynamic: true }
      : { command: 'SELECT', unfilteredWrite: false },
  ];
}

/**
 * Built-in functions (pg_catalog) that write rows: large objects live in pg_largeobject, and setval moves a
 * sequence. Rules can also name these functions with `functions:`; this makes `commands: [DELETE]` match
 * `lo_unlink`. Other built-ins with effects outside the data (pg_terminate_backend, pg_reload_conf, lo_export's
 * server file…) are matched by name only.
 */
const LARGE_OBJECT_WRITES: Record<string, string> = {
  lo_unlink: 'DELETE',
  lo_import: 'INSERT',
  lo_create: 'INSERT',
  lo_creat: 'INSERT',
  lo_from_bytea: 'INSERT',
  lo_put: 'UPDATE',
  lowrite: 'UPDATE',
  lo_truncate: 'UPDATE',
  lo_truncate64: 'UPDATE',
};

export function builtinFunctionEffects(
  schema: string | undefined,
  name: string,
  args: readonly unknown[],
): DerivedEffect[] {
  if (schema !== undefined && schema !== 'pg_catalog') return [];
  const largeObject = LARGE_OBJECT_WRITES[name];
  if (largeObject !== undefined) {
    return [{ command: largeObject, unfilteredWrite: false, tables: ['pg_largeobject'] }];
  }
  if (name === 'setval') {
    const sequence = sequenceName(args[0]);
    return [{ command: 'UPDATE', unfilteredWrite: false, tables: sequence === undefined ? [] : [sequence] }];
  }
  return [];
}

/** `'public.seq'` / `'"My Seq"'::regclass` → the relation name as rules spell it; undefined unless a string. */
function sequenceName(arg: unknown): string | undefined {
  let node = arg as Node | undefined;
  const cast = node?.['TypeCast'] as Node | undefined;
  if (cast !== undefined) node = cast['arg'] as Node | undefined;
  const sval = ((node?.['A_Const'] as Node | undefined)?.['sval'] as Node | undefined)?.['sval'];
  if (typeof sval !== 'string') return undefined;
  return sval
    .split('.')
    .map((part) =>
      part.startsWith('"') ? part.replace(/^"|"$/g, '').replace(/""/g, '"') : part.toLowerCase(),
    )
    .join('.');
}
