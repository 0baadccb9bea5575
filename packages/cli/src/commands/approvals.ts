import type { Command } from 'commander';
import { CliError, formatTable, printJson } from '../cli-util.js';
import { resolveToken, tokenOptionHelp, type TokenOptions } from '../token-source.js';

interface ApiOptions extends TokenOptions {
  admin: string;
  json?: boolean;
}

interface PendingRow {
  id: string;
  listener: string;
  protocol: string;
  identity: string;
  command: string;
  rule: string;
  requestedAt: string;
  expiresAt: string;
}

/** Call the admin approvals API (docs/cli.md, admin HTTP API); any non-2xx answer becomes a CliError with the server's message. */
async function callApi(
  opts: ApiOptions,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<unknown> {
  let url: URL;
  try {
    url = new URL(path, opts.admin);
  } catch {
    throw new CliError(
      `--admin: expected a URL such as http://127.0.0.1:9090, found ${JSON.stringify(opts.admin)}`,
    );
  }
  const token = await resolveToken(opts);
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new CliError(
      `cannot reach the admin API at ${url.origin}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`,
    );
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const message =
      parsed !== null &&
      typeof parsed === 'object' &&
      typeof (parsed as Record<string, unknown>)['message'] === 'string'
        ? (parsed as Record<string, string>)['message']
        : text.slice(0, 200);
    throw new CliError(`HTTP ${response.status}: ${message}`);
  }
  return parsed;
}

/** Shorten a one-line command for the table; `--json` keeps the full text. */
const clip = (text: string, max = 60): string => {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
};

function secondsLeft(expiresAt: string): string {
  const left = Math.round((Date.parse(expiresAt) - Date.now()) / 1000);
  return Number.isFinite(left) ? `${Math.max(0, left)}s` : '-';
}

/** `agentgate approvals list|approve ID|deny ID --admin URL [--token-file FILE] [--reason TEXT] [--json]`; the token may also come from AGENTGATE_TOKEN. */
export function registerApprovalsCommand(program: Command): void {
  const approvals = program.command('approvals').description('list and decide commands held for approval');
  const common = (command: Command): Command =>
    command
      .requiredOption('--admin <url>', 'admin API base URL, e.g. http://127.0.0.1:9090')
      .option('--token-file <file>', tokenOptionHelp.tokenFile)
      .option('--token <token>', tokenOptionHelp.token)
      .option('--json', 'print one JSON document');

  common(approvals.command('list').description('list pending approval requests')).action(
    async (opts: ApiOptions) => {
      const pending = await callApi(opts, 'GET', '/api/approvals');
      if (!Array.isArray(pending))
        throw new CliError('the admin API answered with something other than a list');
      if (opts.json) {
        printJson(pending);
        return;
      }
      if (pending.length === 0) {
        process.stdout.write('no pending approvals\n');
        return;
      }
      const rows = (pending as PendingRow[]).map((p) => [
        p.id,
        p.identity,
        `${p.listener} (${p.protocol})`,
        p.rule,
        secondsLeft(p.expiresAt),
        clip(p.command),
      ]);
      process.stdout.write(
        formatTable(['ID', 'IDENTITY', 'LISTENER', 'RULE', 'EXPIRES IN', 'COMMAND'], rows),
      );
    },
  );

  for (const verb of ['approve', 'deny'] as const) {
    common(
      approvals
        .command(`${verb} <id>`)
        .description(verb === 'approve' ? 'approve a held command' : 'reject a held command'),
    )
      .option('--reason <text>', 'why (recorded in the transcript)')
      .action(async (id: string, opts: ApiOptions & { reason?: string }) => {
        const settlement = (await callApi(
          opts,
          'POST',
          `/api/approvals/${encodeURIComponent(id)}/${verb}`,
          opts.reason === undefined ? {} : { reason: opts.reason },
        )) as {
          id: string;
          outcome: string;
          by?: string;
        };
        if (opts.json) printJson(settlement);
        else
          process.stdout.write(
            `${settlement.id} ${settlement.outcome}${settlement.by === undefined ? '' : ` by ${settlement.by}`}\n`,
          );
      });
  }
}
