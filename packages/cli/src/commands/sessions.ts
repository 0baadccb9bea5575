import type { Command } from 'commander';
import {
  exportAsciicast,
  exportJsonl,
  hasTerminalOutput,
  type SessionFilter,
  type StoreVerifyReport,
} from '@agentgate/transcript';
import { CliError, formatTable, iso, printJson } from '../cli-util.js';
import { colourFor, OutputWriter } from '../output.js';
import { describeFleetReport, verifyFleetCommand } from '../fleet-verify.js';
import { replaySession } from '../replay.js';
import { sessionSourceOptions, withSessionSource, type SessionSourceOptions } from '../session-source.js';
import { storeOptions, withReadableStore, type StoreOptions } from '../store-access.js';
import { parseCount, parseTimeArg } from '../time-arg.js';
import { trustedKeys } from '../verify-keys.js';

interface ListOptions extends SessionSourceOptions {
  json?: boolean;
  protocol?: string;
  identity?: string;
  listener?: string;
  since?: string;
  until?: string;
  limit?: string;
  denied?: boolean;
}

function sessionFilter(opts: ListOptions): SessionFilter {
  const filter: SessionFilter = {};
  if (opts.protocol !== undefined) filter.protocol = opts.protocol;
  if (opts.identity !== undefined) filter.identity = opts.identity;
  if (opts.listener !== undefined) filter.listener = opts.listener;
  if (opts.since !== undefined) filter.since = parseTimeArg(opts.since, '--since');
  if (opts.until !== undefined) filter.until = parseTimeArg(opts.until, '--until');
  if (opts.limit !== undefined) filter.limit = parseCount(opts.limit, '--limit');
  if (opts.denied) filter.denied = true;
  return filter;
}

export function registerSessionCommands(program: Command): void {
  const sessions = program.command('sessions').description('recorded sessions');
  sessionSourceOptions(sessions.command('list'))
    .description('list recorded sessions, oldest first')
    .option('--json', 'one JSON document on stdout')
    .option('--since <time>', 'started at or after: ISO time or a duration before now (24h, 7d)')
    .option('--until <time>', 'started before: ISO time or a duration before now')
    .option('--limit <n>', 'only the most recent N matching sessions')
    .option('--protocol <p>', 'only this protocol')
    .option('--identity <name>', 'only this identity')
    .option('--listener <name>', 'only this listener')
    .option('--denied', 'only sessions in which something was denied')
    .action(async (opts: ListOptions) => {
      const filter = sessionFilter(opts);
      await withSessionSource(opts, async (source) => {
        const list = await source.listSessions(filter);
        if (opts.json) return printJson(list);
        process.stdout.write(
          formatTable(
            ['ID', 'LISTENER', 'PROTOCOL', 'IDENTITY', 'STARTED', 'ENDED', 'COMMANDS', 'DENIED'],
            list.map((s) => [
              s.id,
              s.listener,
              s.protocol,
              s.identity,
              iso(s.startedAt),
              iso(s.endedAt),
              String(s.commands),
              String(s.denied),
            ]),
          ),
        );
      });
    });
  sessionSourceOptions(sessions.command('show <id>'))
    .description("a session's summary and events")
    .option('--json', 'one JSON document on stdout')
    .action(async (id: string, opts: SessionSourceOptions & { json?: boolean }) => {
      await withSessionSource(opts, async (source) => {
        const summary = await source.getSession(id);
        if (!summary) throw source.noSession(id);
        if (opts.json) return printJson({ ...summary, events: [...(await source.events(id))] });
        const out = new OutputWriter();
        await out.write(
          formatTable(
            ['FIELD', 'VALUE'],
            Object.entries(summary).map(([k, v]) => [
              k,
              typeof v === 'number' && k.endsWith('At') ? iso(v) : JSON.stringify(v),
            ]),
          ),
        );
        await out.write('\n');
        for await (const page of source.eventPages(id))
          for (const e of page) {
            const { session: _s, seq, ts, type, prev: _p, hash: _h, ...body } = e;
            await out.write(
              `${String(seq).padStart(5)} ${iso(ts)} ${type.padEnd(18)} ${JSON.stringify(body)}\n`,
            );
          }
      });
    });

  sessionSourceOptions(program.command('replay <id>'))
    .description(
      'play a session back: terminal playback (ssh), SQL timeline (postgres), API timeline (docker)',
    )
    .option('--speed <n>', 'playback speed factor for terminal output (0 = no delays)', '1')
    .action(async (id: string, opts: SessionSourceOptions & { speed: string }) => {
      const speed = Number(opts.speed);
      if (!Number.isFinite(speed) || speed < 0) throw new CliError('--speed must be a number >= 0', 2);
      await withSessionSource(opts, async (source) => {
        const summary = await source.getSession(id);
        if (!summary) throw source.noSession(id);
        await replaySession(summary, await source.events(id), {
          speed,
          out: process.stdout,
          colour: colourFor(process.stdout),
        });
      });
    });

  sessionSourceOptions(program.command('export <id>'))
    .description('export a session: jsonl (raw events) or asciicast (terminal recording, asciicast v2)')
    .requiredOption('--format <format>', 'jsonl or asciicast')
    .action(async (id: string, opts: SessionSourceOptions & { format: string }) => {
      if (opts.format !== 'jsonl' && opts.format !== 'asciicast')
        throw new CliError('--format must be jsonl or asciicast', 2);
      await withSessionSource(opts, async (source) => {
        const summary = await source.getSession(id);
        if (!summary) throw source.noSession(id);
        const out = new OutputWriter();
        if (opts.format === 'jsonl') {
          for await (const page of source.eventPages(id))
            for (const line of exportJsonl(page)) await out.write(line);
          return;
        }
        const events = await source.events(id);
        if (!hasTerminalOutput(events)) {
          throw new CliError(
            `session ${id} (${summary.protocol}) has no terminal output to record as asciicast: ` +
              `use --format jsonl, or agentgate replay ${id}`,
          );
        }
        await out.write(exportAsciicast(events));
      });
    });

  storeOptions(program.command('verify'))
    .description('check every hash chain, signed checkpoint and prune record; exit 1 on any problem')
    .option(
      '--jwks <file|url>',
      "the gateway's public keys (its /.well-known/jwks.json) to check signatures with",
    )
    .option('--json', 'one JSON document on stdout')
    .option(
      '--fleet',
      "check the fleet database of --config's fleet section (every replica's record) and list what is only local",
    )
    .action(async (opts: StoreOptions & { jwks?: string; json?: boolean; fleet?: boolean }) => {
      if (opts.fleet) {
        const fleetReport = await verifyFleetCommand(opts);
        if (opts.json) printJson(fleetReport);
        else process.stdout.write(describeFleetReport(fleetReport));
        if (!fleetReport.ok) process.exitCode = 1;
        return;
      }
      const report = await withReadableStore(opts, async (store, located) => {
        const keys = await trustedKeys(opts.jwks, located, store.keyHistory());
        const verified = await store.verify((jws) => keys.verifyCompact(jws));
        return { ...verified, keys: keys.list() } satisfies StoreVerifyReport;
      });
      if (opts.json) printJson(report);
      else process.stdout.write(describeReport(report));
      if (!report.ok) process.exitCode = 1;
    });
}

function describeReport(report: StoreVerifyReport): string {
  const lines = [
    `${report.ok ? 'OK' : 'BROKEN'}: ${report.sessions} session(s), ${report.events} event(s), ${report.checkpoints} checkpoint(s)`,
  ];
  for (const p of report.problems)
    lines.push(`  ${p.session}${p.seq !== undefined ? `#${p.seq}` : ''}: ${p.kind}: ${p.detail}`);
  for (const prune of report.pruned.prunes) {
    lines.push(
      `pruned: ${prune.sessions.length} session(s) that ended before ${prune.before}, on ${prune.at} by ${prune.by}, ` +
        `signed by key ${prune.kids.join(', ')}`,
    );
  }
  const keys = report.keys ?? [];
  if (keys.length > 0)
    lines.push(`keys: ${keys.map((k) => `${k.kid} (${k.source}, ${k.verified} signature(s))`).join('; ')}`);
  if (keys.some((k) => k.source === 'store' && k.verified > 0)) {
    lines.push(
      "note: signatures were checked against public keys recorded in the store itself; --jwks with the gateway's published keys shows they are the gateway's",
    );
  }
  return lines.join('\n') + '\n';
}
