/**
 * Statement node → command words in the family of PostgreSQL's command tags (src/backend/tcop/cmdtag.c,
 * CreateCommandTag()). Rules match by leading words, so every drop starts with `DROP`, every alter with `ALTER`.
 */
type Body = Record<string, unknown>;

/** `OBJECT_MATVIEW` → `MATERIALIZED VIEW`, `OBJECT_FOREIGN_TABLE` → `FOREIGN TABLE`. */
export function objectTypeWords(objtype: unknown): string {
  if (typeof objtype !== 'string') return 'OBJECT';
  const bare = objtype.replace(/^OBJECT_/, '');
  const special: Record<string, string> = {
    MATVIEW: 'MATERIALIZED VIEW',
    FDW: 'FOREIGN DATA WRAPPER',
    FOREIGN_SERVER: 'SERVER',
    TSCONFIGURATION: 'TEXT SEARCH CONFIGURATION',
    TSDICTIONARY: 'TEXT SEARCH DICTIONARY',
    TSPARSER: 'TEXT SEARCH PARSER',
    TSTEMPLATE: 'TEXT SEARCH TEMPLATE',
    OPCLASS: 'OPERATOR CLASS',
    OPFAMILY: 'OPERATOR FAMILY',
    EVENT_TRIGGER: 'EVENT TRIGGER',
    LARGEOBJECT: 'LARGE OBJECT',
    TABCONSTRAINT: 'TABLE',
    COLUMN: 'TABLE',
    ROLE: 'ROLE',
  };
  return special[bare] ?? bare.replace(/_/g, ' ');
}

const TRANSACTION_WORDS: Record<string, string> = {
  TRANS_STMT_BEGIN: 'BEGIN',
  TRANS_STMT_START: 'START TRANSACTION',
  TRANS_STMT_COMMIT: 'COMMIT',
  TRANS_STMT_ROLLBACK: 'ROLLBACK',
  TRANS_STMT_SAVEPOINT: 'SAVEPOINT',
  TRANS_STMT_RELEASE: 'RELEASE',
  TRANS_STMT_ROLLBACK_TO: 'ROLLBACK',
  TRANS_STMT_PREPARE: 'PREPARE TRANSACTION',
  TRANS_STMT_COMMIT_PREPARED: 'COMMIT PREPARED',
  TRANS_STMT_ROLLBACK_PREPARED: 'ROLLBACK PREPARED',
};

const FIXED: Record<string, string> = {
  SelectStmt: 'SELECT',
  InsertStmt: 'INSERT',
  UpdateStmt: 'UPDATE',
  DeleteStmt: 'DELETE',
  MergeStmt: 'MERGE',
  TruncateStmt: 'TRUNCATE',
  CopyStmt: 'COPY',
  DoStmt: 'DO',
  ExplainStmt: 'EXPLAIN',
  PrepareStmt: 'PREPARE',
  ExecuteStmt: 'EXECUTE',
  DeallocateStmt: 'DEALLOCATE',
  AlterSystemStmt: 'ALTER SYSTEM',
  VariableShowStmt: 'SHOW',
  CreateStmt: 'CREATE TABLE',
  ViewStmt: 'CREATE VIEW',
  IndexStmt: 'CREATE INDEX',
  CreateSchemaStmt: 'CREATE SCHEMA',
  CreateSeqStmt: 'CREATE SEQUENCE',
  AlterSeqStmt: 'ALTER SEQUENCE',
  CreateTrigStmt: 'CREATE TRIGGER',
  CreateEventTrigStmt: 'CREATE EVENT TRIGGER',
  RuleStmt: 'CREATE RULE',
  CreatedbStmt: 'CREATE DATABASE',
  DropdbStmt: 'DROP DATABASE',
  DropRoleStmt: 'DROP ROLE',
  DropTableSpaceStmt: 'DROP TABLESPACE',
  DropOwnedStmt: 'DROP OWNED',
  DropSubscriptionStmt: 'DROP SUBSCRIPTION',
  DropUserMappingStmt: 'DROP USER MAPPING',
  ReassignOwnedStmt: 'REASSIGN OWNED',
  LockStmt: 'LOCK TABLE',
  CallStmt: 'CALL',
  ListenStmt: 'LISTEN',
  UnlistenStmt: 'UNLISTEN',
  NotifyStmt: 'NOTIFY',
  DeclareCursorStmt: 'DECLARE CURSOR',
  ClosePortalStmt: 'CLOSE CURSOR',
  DiscardStmt: 'DISCARD',
  LoadStmt: 'LOAD',
  CheckPointStmt: 'CHECKPOINT',
  ClusterStmt: 'CLUSTER',
  ReindexStmt: 'REINDEX',
  CommentStmt: 'COMMENT',
  SecLabelStmt: 'SECURITY LABEL',
  ConstraintsSetStmt: 'SET CONSTRAINTS',
  RefreshMatViewStmt: 'REFRESH MATERIALIZED VIEW',
  CreateForeignServerStmt: 'CREATE SERVER',
  AlterForeignServerStmt: 'ALTER SERVER',
  CreateFdwStmt: 'CREATE FOREIGN DATA WRAPPER',
  AlterFdwStmt: 'ALTER FOREIGN DATA WRAPPER',
  CreateForeignTableStmt: 'CREATE FOREIGN TABLE',
  ImportForeignSchemaStmt: 'IMPORT FOREIGN SCHEMA',
  CreatePLangStmt: 'CREATE LANGUAGE',
  CompositeTypeStmt: 'CREATE TYPE',
  CreateEnumStmt: 'CREATE TYPE',
  CreateRangeStmt: 'CREATE TYPE',
  AlterEnumStmt: 'ALTER TYPE',
  CreateAmStmt: 'CREATE ACCESS METHOD',
  CreateStatsStmt: 'CREATE STATISTICS',
  AlterDatabaseSetStmt: 'ALTER DATABASE',
  AlterDatabaseRefreshCollStmt: 'ALTER DATABASE',
  AlterRoleSetStmt: 'ALTER ROLE',
  AlterDefaultPrivilegesStmt: 'ALTER DEFAULT PRIVILEGES',
  AlterTableMoveAllStmt: 'ALTER TABLE',
  AlterExtensionContentsStmt: 'ALTER EXTENSION',
  AlterObjectDependsStmt: 'ALTER',
  CreateOpClassStmt: 'CREATE OPERATOR CLASS',
  CreateOpFamilyStmt: 'CREATE OPERATOR FAMILY',
  AlterOpFamilyStmt: 'ALTER OPERATOR FAMILY',
  AlterTSDictionaryStmt: 'ALTER TEXT SEARCH DICTIONARY',
  AlterTSConfigurationStmt: 'ALTER TEXT SEARCH CONFIGURATION',
};

/** `CreateExtensionStmt` → `CREATE EXTENSION`: the fallback for nodes without a special case. */
function wordsFromNodeName(nodeType: string): string {
  return nodeType
    .replace(/Stmt$/, '')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toUpperCase();
}

export function commandOf(nodeType: string, body: Body): string {
  switch (nodeType) {
    case 'DropStmt':
      return `DROP ${objectTypeWords(body['removeType'])}`;
    case 'AlterTableStmt':
      return `ALTER ${objectTypeWords(body['objtype'])}`;
    case 'RenameStmt':
      return `ALTER ${objectTypeWords(body['renameType'])}`;
    case 'AlterOwnerStmt':
    case 'AlterObjectSchemaStmt':
      return `ALTER ${objectTypeWords(body['objectType'])}`;
    case 'CreateTableAsStmt':
      return body['objtype'] === 'OBJECT_MATVIEW' ? 'CREATE MATERIALIZED VIEW' : 'CREATE TABLE AS';
    case 'CreateFunctionStmt':
      return body['is_procedure'] === true ? 'CREATE PROCEDURE' : 'CREATE FUNCTION';
    case 'AlterFunctionStmt':
      return `ALTER ${objectTypeWords(body['objtype'] ?? 'OBJECT_FUNCTION')}`;
    case 'DefineStmt':
      return `CREATE ${objectTypeWords(body['kind'])}`;
    case 'GrantStmt':
    case 'GrantRoleStmt':
      return body['is_grant'] === true ? 'GRANT' : 'REVOKE';
    case 'CreateRoleStmt':
      return body['stmt_type'] === 'ROLESTMT_USER'
        ? 'CREATE USER'
        : body['stmt_type'] === 'ROLESTMT_GROUP'
          ? 'CREATE GROUP'
          : 'CREATE ROLE';
    case 'AlterRoleStmt':
      return 'ALTER ROLE';
    case 'TransactionStmt':
      return TRANSACTION_WORDS[String(body['kind'])] ?? 'TRANSACTION';
    case 'VacuumStmt':
      return body['is_vacuumcmd'] === true ? 'VACUUM' : 'ANALYZE';
    case 'FetchStmt':
      return body['ismove'] === true ? 'MOVE' : 'FETCH';
    case 'VariableSetStmt':
      return variableSetCommand(body);
    default:
      return FIXED[nodeType] ?? wordsFromNodeName(nodeType);
  }
}

/** `SET ROLE`, `SET SESSION AUTHORIZATION` get their own words so rules can name them (cmdtag.c says SET). */
function variableSetCommand(body: Body): string {
  const kind = body['kind'];
  const name = typeof body['name'] === 'string' ? body['name'].toLowerCase() : '';
  const verb = kind === 'VAR_RESET' || kind === 'VAR_RESET_ALL' ? 'RESET' : 'SET';
  if (name === 'role') return `${verb} ROLE`;
  if (name === 'session_authorization') return `${verb} SESSION AUTHORIZATION`;
  if (name === 'transaction' || name === 'session characteristics') return `${verb} TRANSACTION`;
  return verb;
}
