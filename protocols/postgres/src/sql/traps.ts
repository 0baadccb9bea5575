/**
 * Built-in refusals (docs/configuration.md, "PostgreSQL match keys"). The gateway splits and reads the client's text with the server's default
 * lexing: standard_conforming_strings=on and a UTF-8 client_encoding. If a client could switch either, the server
 * would read later text differently from the gateway (`'\'; DROP TABLE t; --'` is one string literal with
 * standard strings on, and a DROP with them off; some multibyte encodings hide a quote inside a character), so
 * every way of changing them is refused: SET [LOCAL|SESSION], SET … TO DEFAULT, SET … FROM CURRENT, RESET,
 * set_config(), ALTER ROLE/DATABASE/SYSTEM … SET, a function's SET clause, and UPDATE pg_settings.
 * Setting them to the values the gateway assumes is allowed (pg_dump scripts do it). RESET ALL and DISCARD ALL
 * are allowed: they return to the session's start values, which the wire engine checks at startup.
 */
type Node = Record<string, unknown>;

/** Reads a constant's text (constants.ts constantText, with the walker's bookkeeping). */
export type ConstantReader = (node: unknown) => string | undefined;

const SAFE_VALUES: Record<string, ReadonlySet<string>> = {
  standard_conforming_strings: new Set(['on', 'true', 'yes', '1']),
  // PostgreSQL accepts these spellings for UTF8 (pg_char_to_encoding ignores case and punctuation).
  client_encoding: new Set(['utf8', 'utf-8', 'unicode']),
};

/** set_config() settings that rules see as their SQL command. */
export const SET_CONFIG_COMMANDS: Record<string, string> = {
  role: 'SET ROLE',
  session_authorization: 'SET SESSION AUTHORIZATION',
};

function refusal(setting: string): string {
  return (
    `agentgate: changing ${setting} is refused: the gateway reads SQL as the server does with ` +
    'standard_conforming_strings=on and client_encoding=UTF8'
  );
}

export function checkVariableSet(body: Node, refusals: string[], constantText: ConstantReader): void {
  const name = typeof body['name'] === 'string' ? body['name'].toLowerCase() : '';
  const safe = SAFE_VALUES[name];
  if (safe === undefined) return;
  const args = (body['args'] as unknown[] | undefined) ?? [];
  const value = body['kind'] === 'VAR_SET_VALUE' && args.length === 1 ? constantText(args[0]) : undefined;
  if (value === undefined || !safe.has(value.toLowerCase())) refusals.push(refusal(name));
}

/**
 * set_config(name, value, is_local): returns the lower-cased setting name when it is a constant; refuses a
 * computed name (it could be any setting) and unsafe values of the guarded settings.
 */
export function checkSetConfig(
  args: readonly unknown[],
  refusals: string[],
  constantText: ConstantReader,
): string | undefined {
  const name = constantText(args[0])?.toLowerCase();
  if (name === undefined) {
    refusals.push(
      'agentgate: set_config() with a computed setting name is refused: the gateway cannot check it',
    );
    return undefined;
  }
  const safe = SAFE_VALUES[name];
  if (safe !== undefined) {
    const value = constantText(args[1]);
    if (value === undefined || !safe.has(value.toLowerCase())) refusals.push(refusal(name));
  }
  return name;
}

/** UPDATE pg_settings calls set_config for each row (system_views.sql, rule pg_settings_u). */
export function refuseSettingsWrite(update: Node, refusals: string[]): void {
  const rel = update['relation'] as Node | undefined;
  if (rel?.['relname'] === 'pg_settings') {
    refusals.push('agentgate: UPDATE pg_settings is refused: use SET, which the gateway can check');
  }
}
