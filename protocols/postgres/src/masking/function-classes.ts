/**
 * Functions, views and types the lineage analysis treats specially, by what they do with the values they are given
 * or hold (PostgreSQL's xml.c, dblink, large objects, statistics views).
 */
/**
 * Functions whose arguments leave through another channel (ParameterStatus, NOTIFY, files, other servers) or become
 * state another query reads back unmasked: a sequence's value (currval, last_value), an advisory lock's key and a
 * large object's OID (pg_locks, pg_largeobject_metadata).
 */
export const SIDE_CHANNEL_FUNCTIONS = new Set([
  'set_config',
  'setval',
  'pg_advisory_lock',
  'pg_advisory_lock_shared',
  'pg_advisory_xact_lock',
  'pg_advisory_xact_lock_shared',
  'pg_try_advisory_lock',
  'pg_try_advisory_lock_shared',
  'pg_try_advisory_xact_lock',
  'pg_try_advisory_xact_lock_shared',
  'lo_create',
  'lo_import',
  'pg_notify',
  'dblink',
  'dblink_exec',
  'dblink_send_query',
  'dblink_open',
  'lo_from_bytea',
  'lo_put',
  'lo_export',
  'pg_file_write',
  'pg_logical_emit_message',
]);

/**
 * Functions that run SQL given as text: query_to_xml family (xml.c), ts_stat (its query's tsvectors come back as
 * words) and two-argument ts_rewrite (its query's rows rewrite the tsquery returned). The SQL argument is analysed.
 */
export function sqlArgumentIndex(fn: string, argCount: number): number | undefined {
  switch (fn) {
    case 'query_to_xml':
    case 'query_to_xmlschema':
    case 'query_to_xml_and_xmlschema':
    case 'ts_stat':
      return 0;
    case 'ts_rewrite':
      // ts_rewrite(query, target, substitute) takes no SQL; ts_rewrite(query, 'SELECT target, substitute …') does.
      return argCount === 2 ? 1 : undefined;
    default:
      return undefined;
  }
}

/** Functions that read whole relations named by an argument (xml.c): a literal table name is charged, else refused. */
export const TABLE_READING_FUNCTIONS = new Set([
  'table_to_xml',
  'table_to_xmlschema',
  'table_to_xml_and_xmlschema',
]);

/** Functions that dump data the analysis cannot attribute (a schema, a database, an open cursor). */
export const DATA_DUMPING_FUNCTIONS = new Set([
  'schema_to_xml',
  'schema_to_xmlschema',
  'schema_to_xml_and_xmlschema',
  'database_to_xml',
  'database_to_xmlschema',
  'database_to_xml_and_xmlschema',
  'cursor_to_xml',
  'cursor_to_xmlschema',
]);

/** System views that hold column values (planner statistics samples, other sessions' query texts). */
export const DATA_HOLDING_VIEWS = new Set([
  'pg_stats',
  'pg_stats_ext',
  'pg_stats_ext_exprs',
  'pg_statistic',
  'pg_statistic_ext_data',
  'pg_stat_statements',
]);

/** Cast targets that keep a value as text: no conversion error can quote it. */
export const TEXT_TYPES = new Set([
  'text',
  'varchar',
  'bpchar',
  'char',
  'name',
  'citext',
  'character varying',
  'character',
]);
