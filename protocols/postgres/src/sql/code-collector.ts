/**
 * Collects, while the walker visits a parse tree, the references through which a statement reaches code in the
 * catalog (code-refs.ts), and the code it stores for later under names (definitions).
 *
 * A reference found inside stored code (a function body, a view's query, a rule's actions, a column default of a
 * new table…) is not run by the statement: it belongs to that definition only. Statements that store code and
 * run it at once (CREATE INDEX evaluates its expressions, ALTER TABLE validates constraints and fills defaults,
 * CREATE MATERIALIZED VIEW runs its query) put it in both places.
 */
import { RefSink, type CodeDefinition, type ForeignKeyLink, type RelationEffect } from './code-refs.js';

type Node = Record<string, unknown>;

/** Statements whose relations are read by the statement itself. */
export const QUERY_STATEMENTS: ReadonlySet<string> = new Set([
  'SelectStmt',
  'InsertStmt',
  'UpdateStmt',
  'DeleteStmt',
  'MergeStmt',
  'CopyStmt',
  'ReturnStmt',
  'PLAssignStmt',
  'CallStmt',
]);

/**
 * Statements that fire no event trigger (PostgreSQL docs "Event Trigger Firing Matrix": queries, transaction and
 * session commands, and commands on shared objects). Every other statement counts as DDL and runs the event
 * triggers' functions.
 */
const NOT_DDL: ReadonlySet<string> = new Set([
  'SelectStmt',
  'InsertStmt',
  'UpdateStmt',
  'DeleteStmt',
  'MergeStmt',
  'CopyStmt',
  'TruncateStmt',
  'TransactionStmt',
  'VariableSetStmt',
  'VariableShowStmt',
  'ExplainStmt',
  'PrepareStmt',
  'ExecuteStmt',
  'DeallocateStmt',
  'DeclareCursorStmt',
  'FetchStmt',
  'ClosePortalStmt',
  'LockStmt',
  'ListenStmt',
  'UnlistenStmt',
  'NotifyStmt',
  'DiscardStmt',
  'DoStmt',
  'CallStmt',
  'CheckPointStmt',
  'VacuumStmt',
  'ClusterStmt',
  'ReindexStmt',
  'LoadStmt',
  'ConstraintsSetStmt',
  'ReturnStmt',
  'PLAssignStmt',
  'CreatedbStmt',
  'DropdbStmt',
  'AlterDatabaseStmt',
  'AlterDatabaseSetStmt',
  'AlterDatabaseRefreshCollStmt',
  'CreateRoleStmt',
  'AlterRoleStmt',
  'AlterRoleSetStmt',
  'DropRoleStmt',
  'GrantRoleStmt',
  'CreateTableSpaceStmt',
  'DropTableSpaceStmt',
  'AlterTableSpaceOptionsStmt',
  'AlterSystemStmt',
  'CreateEventTrigStmt',
  'AlterEventTrigStmt',
]);

/** DefineStmt options that name a function (CREATE OPERATOR, AGGREGATE, TYPE, TEXT SEARCH…). */
const FUNCTION_OPTIONS: ReadonlySet<string> = new Set([
  'function',
  'procedure',
  'sfunc',
  'finalfunc',
  'combinefunc',
  'serialfunc',
  'deserialfunc',
  'msfunc',
  'minvfunc',
  'mfinalfunc',
  'restrict',
  'join',
  'input',
  'output',
  'receive',
  'send',
  'typmod_in',
  'typmod_out',
  'analyze',
  'subscript',
  'subtype_diff',
  'canonical',
]);

const RENAMED_ROUTINES = new Set([
  'OBJECT_FUNCTION',
  'OBJECT_PROCEDURE',
  'OBJECT_ROUTINE',
  'OBJECT_AGGREGATE',
]);
const RENAMED_RELATIONS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE']);
const RENAMED_TYPES = new Set(['OBJECT_TYPE', 'OBJECT_DOMAIN']);

interface OpenDefinition {
  readonly subjects: string[];
  readonly from: number;
  readonly refs: RefSink;
  /** The statement also runs the code now. */
  readonly executes: boolean;
  readonly children: { parent: string; child: string }[];
  readonly foreignKeys: ForeignKeyLink[];
  eventTrigger: boolean;
}

/** The last element of a name list (`schema.name` → `name`), lower case. */
export function lastName(list: unknown): string | undefined {
  if (!Array.isArray(list) || list.length === 0) return undefined;
  const s = (list[list.length - 1] as Node)['String'] as Node | undefined;
  return typeof s?.['sval'] === 'string' ? s['sval'].toLowerCase() : undefined;
}

function relationOf(rangeVar: unknown): string | undefined {
  const name = (rangeVar as Node | undefined)?.['relname'];
  return typeof name === 'string' ? name.toLowerCase() : undefined;
}

function typeNameOf(typeName: unknown): string | undefined {
  return lastName((typeName as Node | undefined)?.['names']);
}

export class CodeCollector {
  /** References the statements run now. */
  readonly refs = new RefSink();
  readonly definitions: CodeDefinition[] = [];
  private readonly open: OpenDefinition[] = [];

  /** Where a reference found now goes: the innermost definition, and the executed set if every one runs now. */
  private forEachTarget(add: (sink: RefSink) => void): void {
    const top = this.open[this.open.length - 1];
    if (top !== undefined) add(top.refs);
    if (this.open.every((d) => d.executes)) add(this.refs);
  }

  call(name: string, argc: number, variadicCall: boolean, origin: number): void {
    this.forEachTarget((s) => s.calls.push({ name, argc, variadicCall, origin }));
  }

  /** `row.name`: a call of name(row) when no column of that name exists. */
  attributeCall(name: string, origin: number): void {
    this.forEachTarget((s) => s.calls.push({ name, argc: 1, variadicCall: false, attribute: true, origin }));
  }

  operator(name: string, origin: number): void {
    this.forEachTarget((s) => s.operators.push({ name, origin }));
  }

  type(name: string, origin: number): void {
    this.forEachTarget((s) => s.types.push({ name, origin }));
  }

  relation(name: string, effect: RelationEffect, origin: number, cascade = false): void {
    const ref = cascade ? { name, effect, origin, cascade } : { name, effect, origin };
    this.forEachTarget((s) => s.relations.push(ref));
  }

  /** A statement of this node type starts at `origin`: event triggers, and the code it stores. */
  enter(nodeType: string, body: Node, origin: number): OpenDefinition | undefined {
    if (!NOT_DDL.has(nodeType)) this.forEachTarget((s) => s.ddl.push(origin));
    const definition = this.definitionOf(nodeType, body, origin);
    if (definition !== undefined) this.open.push(definition);
    return definition;
  }

  /** The statement's walk is done; `end` is the number of facts so far. */
  leave(definition: OpenDefinition | undefined, end: number): void {
    if (definition === undefined) return;
    this.open.pop();
    const out: {
      -readonly [K in keyof CodeDefinition]: CodeDefinition[K];
    } = {
      subjects: definition.subjects,
      from: definition.from,
      to: Math.max(definition.from, end),
      refs: definition.refs.freeze(),
    };
    if (definition.children.length > 0) out.children = definition.children;
    if (definition.foreignKeys.length > 0) out.foreignKeys = definition.foreignKeys;
    if (definition.eventTrigger) out.eventTrigger = true;
    this.definitions.push(out);
  }

  private definitionOf(nodeType: string, body: Node, origin: number): OpenDefinition | undefined {
    const start = (subjects: (string | undefined)[], executes: boolean): OpenDefinition => ({
      subjects: subjects.filter((s): s is string => s !== undefined),
      // The defining statement itself is not part of what it stores.
      from: origin + 1,
      refs: new RefSink(),
      executes,
      children: [],
      foreignKeys: [],
      eventTrigger: false,
    });
    const storedCall = (d: OpenDefinition, name: string | undefined): void => {
      if (name !== undefined) d.refs.calls.push({ name, argc: -1, variadicCall: false, origin });
    };
    switch (nodeType) {
      case 'CreateFunctionStmt':
        return start([lastName(body['funcname'])], false);
      case 'ViewStmt':
        return start([relationOf(body['view'])], false);
      case 'RuleStmt':
        return start([relationOf(body['relation'])], false);
      case 'CreatePolicyStmt':
      case 'AlterPolicyStmt':
        return start([relationOf(body['table'])], false);
      case 'CreateTrigStmt': {
        const d = start([relationOf(body['relation'])], false);
        storedCall(d, lastName(body['funcname']));
        return d;
      }
      case 'CreateEventTrigStmt': {
        const d = start([], false);
        d.eventTrigger = true;
        storedCall(d, lastName(body['funcname']));
        return d;
      }
      case 'CreateStmt':
        return this.tableDefinition(start([relationOf(body['relation'])], false), body);
      case 'CreateForeignTableStmt':
        return this.tableDefinition(
          start([relationOf((body['base'] as Node | undefined)?.['relation'])], false),
          (body['base'] as Node | undefined) ?? {},
        );
      case 'AlterTableStmt':
        return this.alterTableDefinition(start([relationOf(body['relation'])], true), body);
      case 'IndexStmt':
        return start([relationOf(body['relation'])], true);
      case 'CreateStatsStmt':
        return start(
          ((body['relations'] as Node[] | undefined) ?? []).map((r) => relationOf(r['RangeVar'])),
          false,
        );
      case 'CreateDomainStmt':
        return start([lastName(body['domainname'])], false);
      case 'AlterDomainStmt':
        return start([lastName(body['typeName'])], true);
      case 'CreateTableAsStmt':
        return body['objtype'] === 'OBJECT_MATVIEW'
          ? start([relationOf((body['into'] as Node | undefined)?.['rel'])], true)
          : undefined;
      case 'DefineStmt': {
        const d = start([lastName(body['defnames'])], false);
        for (const item of (body['definition'] as Node[] | undefined) ?? []) {
          const def = item['DefElem'] as Node | undefined;
          if (def === undefined || !FUNCTION_OPTIONS.has(String(def['defname']))) continue;
          storedCall(d, functionNameOf(def['arg']));
        }
        return d;
      }
      case 'CreateCastStmt': {
        const d = start([typeNameOf(body['targettype']), typeNameOf(body['sourcetype'])], false);
        storedCall(d, lastName((body['func'] as Node | undefined)?.['objname']));
        return d;
      }
      case 'CreateTransformStmt': {
        const d = start([typeNameOf(body['type_name'])], false);
        storedCall(d, lastName((body['fromsql'] as Node | undefined)?.['objname']));
        storedCall(d, lastName((body['tosql'] as Node | undefined)?.['objname']));
        return d;
      }
      case 'RenameStmt':
        this.rename(body, origin);
        return undefined;
      case 'CreateExtensionStmt':
      case 'AlterExtensionStmt':
      case 'AlterExtensionContentsStmt':
        this.definitions.push({
          subjects: [],
          from: origin + 1,
          to: origin + 1,
          refs: new RefSink().freeze(),
          opaque: 'an extension script ran in this transaction',
        });
        return undefined;
      default:
        return undefined;
    }
  }

  private tableDefinition(d: OpenDefinition, body: Node): OpenDefinition {
    const table = d.subjects[0];
    if (table === undefined) return d;
    for (const parent of (body['inhRelations'] as Node[] | undefined) ?? []) {
      const name = relationOf(parent['RangeVar']);
      if (name !== undefined) d.children.push({ parent: name, child: table });
    }
    for (const element of (body['tableElts'] as Node[] | undefined) ?? []) {
      const column = element['ColumnDef'] as Node | undefined;
      const constraints = column ? ((column['constraints'] as Node[] | undefined) ?? []) : [element];
      for (const c of constraints) addForeignKey(d, table, c['Constraint'] as Node | undefined);
    }
    return d;
  }

  private alterTableDefinition(d: OpenDefinition, body: Node): OpenDefinition {
    const table = d.subjects[0];
    if (table === undefined) return d;
    for (const item of (body['cmds'] as Node[] | undefined) ?? []) {
      const cmd = item['AlterTableCmd'] as Node | undefined;
      const def = cmd?.['def'] as Node | undefined;
      switch (cmd?.['subtype']) {
        case 'AT_AttachPartition': {
          const child = relationOf((def?.['PartitionCmd'] as Node | undefined)?.['name']);
          if (child !== undefined) d.children.push({ parent: table, child });
          break;
        }
        case 'AT_AddInherit': {
          const parent = relationOf(def?.['RangeVar']);
          if (parent !== undefined) d.children.push({ parent, child: table });
          break;
        }
        case 'AT_AddConstraint':
          addForeignKey(d, table, def?.['Constraint'] as Node | undefined);
          break;
        case 'AT_AddColumn':
          for (const c of ((def?.['ColumnDef'] as Node | undefined)?.['constraints'] as Node[] | undefined) ??
            [])
            addForeignKey(d, table, c['Constraint'] as Node | undefined);
          break;
      }
    }
    return d;
  }

  /** `ALTER FUNCTION a RENAME TO b`: calls of `b` reach what `a` named (and relations, types likewise). */
  private rename(body: Node, origin: number): void {
    const to = typeof body['newname'] === 'string' ? body['newname'].toLowerCase() : undefined;
    const kind = String(body['renameType']);
    const object = body['object'] as Node | undefined;
    let from: string | undefined;
    if (RENAMED_ROUTINES.has(kind))
      from = lastName((object?.['ObjectWithArgs'] as Node | undefined)?.['objname']);
    else if (RENAMED_RELATIONS.has(kind)) from = relationOf(body['relation']);
    else if (RENAMED_TYPES.has(kind)) from = lastName((object?.['List'] as Node | undefined)?.['items']);
    if (from === undefined || to === undefined) return;
    this.definitions.push({
      subjects: [from, to],
      from: origin + 1,
      to: origin + 1,
      refs: new RefSink().freeze(),
      renames: [{ from, to }],
    });
  }
}

function addForeignKey(d: OpenDefinition, table: string, constraint: Node | undefined): void {
  if (constraint?.['contype'] !== 'CONSTR_FOREIGN') return;
  const referenced = relationOf(constraint['pktable']);
  if (referenced === undefined) return;
  d.foreignKeys.push({
    referenced,
    referencing: table,
    onDelete: String(constraint['fk_del_action'] ?? 'a'),
    onUpdate: String(constraint['fk_upd_action'] ?? 'a'),
  });
  // A write to the referenced table reaches this table's code (cascaded rows).
  if (!d.subjects.includes(referenced)) d.subjects.push(referenced);
}

/** `FUNCTION = s.f` is a TypeName, a List of names or a String in DefineStmt options. */
function functionNameOf(arg: unknown): string | undefined {
  const node = arg as Node | undefined;
  const typeName = node?.['TypeName'] as Node | undefined;
  if (typeName !== undefined) return lastName(typeName['names']);
  const list = node?.['List'] as Node | undefined;
  if (list !== undefined) return lastName(list['items']);
  const s = node?.['String'] as Node | undefined;
  return typeof s?.['sval'] === 'string' ? s['sval'].toLowerCase() : undefined;
}
