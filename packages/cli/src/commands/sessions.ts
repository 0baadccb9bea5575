import type { Command } from 'commander';
import { exportAsciicast, exportJsonl } from '@agentgate/transcript';
import { CliError, formatTable, iso, printJson } from '../cli-util.js';
import { withStore } from '../store-access.js';
import { replaySession } from '../replay.js';

export function registerSessionCommands(program: Command): void {
  const sessions = program.command('sessions').description('recorded sessions');
  sessions
    .command('list')
    .description('list recorded sessions, oldest first')
    .requiredOption('--config <file>', 'configuration file (YAML)')
    .option('--json', 'one JSON document on stdout')
    .option('--protocol <p>', 'only this protocol')
    .option('--identity <name>', 'only this identity')
    .action(async (opts: { config: string; json?: boolean; protocol?: string; identity?: string }) => {
      await withStore(opts.config, async (store) => {
        const list = store.listSessions({
          ...(opts.protocol ? { protocol: opts.protocol } : {}),
          ...(opts.identity ? { identity: opts.identity } : {}),
        });
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
  sessions
    .command('show <id>')
    .description("a session's summary and events")
    .requiredOption('--config <file>', 'configuration file (YAML)')
    .option('--json', 'one JSON document on stdout')
    .action(async (id: string, opts: { config: string; json?: boolean }) => {
      await withStore(opts.config, async (store) => {
        const summary = store.getSession(id);
        if (!summary) throw new CliError(`no session ${id}`);
        const events = [...store.events(id)];
        if (opts.json) return printJson({ ...summary, events });
        process.stdout.write(
          formatTable(
            ['FIELD', 'VALUE'],
            Object.entries(summary).map(([k, v]) => [
              k,
              typeof v === 'number' && k.endsWith('At') ? iso(v) : JSON.stringify(v),
            ]),
          ),
        );
        process.stdout.write('\n');
        for (const e of events) {
          const { session: _s, seq, ts, type, prev: _p, hash: _h, ...body } = e;
          process.stdout.write(
            `${String(seq).padStart(5)} ${iso(ts)} ${type.padEnd(18)} ${JSON.stringify(body)}\n`,
          );
        }
      });
    });

  program
    .command('replay <id>')
    .description(
      'play a session back: terminal playback (ssh), SQL timeline (postgres), API timeline (docker)',
    )
    .requiredOption('--config <file>', 'configuration file (YAML)')
    .option('--speed <n>', 'playback speed factor for terminal output (0 = no delays)', '1')
    .action(async (id: string, opts: { config: string; speed: string }) => {
      const speed = Number(opts.speed);
      if (!Number.isFinite(speed) || speed < 0) throw new CliError('--speed must be a number >= 0', 2);
      await withStore(opts.config, async (store) => {
        const summary = store.getSession(id);
        if (!summary) throw new CliError(`no session ${id}`);
        await replaySession(summary, store.events(id), { speed, out: process.stdout });
      });
    });

  program
    .command('export <id>')
    .description('export a session: jsonl (raw events) or asciicast (terminal recording, asciicast v2)')
    .requiredOption('--config <file>', 'configuration file (YAML)')
    .requiredOption('--format <format>', 'jsonl or asciicast')
    .action(async (id: string, opts: { config: string; format: string }) => {
      if (opts.format !== 'jsonl' && opts.format !== 'asciicast')
        throw new CliError('--format must be jsonl or asciicast', 2);
      await withStore(opts.config, async (store) => {
        if (!store.getSession(id)) throw new CliError(`no session ${id}`);
        if (opts.format === 'jsonl')
          for (const line of exportJsonl(store.events(id))) process.stdout.write(line);
        else process.stdout.write(exportAsciicast(store.events(id)));
      });
    });

  program
    .command('verify')
    .description('check every hash chain and signed checkpoint; exit 1 on any break')
    .requiredOption('--config <file>', 'configuration file (YAML)')
    .option('--json', 'one JSON document on stdout')
    .action(async (opts: { config: string; json?: boolean }) => {
      const report = await withStore(opts.config, (store) => store.verify());
      if (opts.json) printJson(report);
      else {
        process.stdout.write(
          `${report.ok ? 'OK' : 'BROKEN'}: ${report.sessions} session(s), ${report.events} event(s), ${report.checkpoints} checkpoint(s)\n`,
        );
        for (const p of report.problems) {
          process.stdout.write(
            `  ${p.session}${p.seq !== undefined ? `#${p.seq}` : ''}: ${p.kind}: ${p.detail}\n`,
          );
        }
      }
      if (!report.ok) process.exitCode = 1;
    });
}
