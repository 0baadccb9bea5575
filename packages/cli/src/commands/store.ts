/** Store lifecycle: `agentgate backup` (a consistent copy of a live store) and `agentgate prune`. */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { isAgentgateError } from '@agentgate/core';
import {
  loadSigningKey,
  openStoreForReading,
  openTranscriptStore,
  readSigningKeyPublicJwks,
  VerificationKeys,
  type PruneOutcome,
  type StoreForReading,
} from '@agentgate/transcript';
import { CliError, iso, printJson } from '../cli-util.js';
import {
  locateStore,
  storeOptions,
  withReadableStore,
  type LocatedStore,
  type StoreOptions,
} from '../store-access.js';
import { parseTimeArg } from '../time-arg.js';
import { trustedKeys } from '../verify-keys.js';

/** Written beside the copy: where and when it was made, and what checking it found. */
export const backupManifestName = 'agentgate-backup.json';

export function registerStoreCommands(program: Command): void {
  storeOptions(program.command('backup'))
    .description(
      'copy the store (live or not) into a new directory, compacted, and check that the copy verifies',
    )
    .requiredOption('--to <dir>', 'directory for the copy: new or empty')
    .option('--jwks <file|url>', "the gateway's public keys to check the copy's signatures with")
    .option('--json', 'one JSON document on stdout')
    .action(async (opts: StoreOptions & { to: string; jwks?: string; json?: boolean }) => {
      const located = await withReadableStore(opts, async (store, where) => {
        await store.backup(opts.to);
        return where;
      });
      const copy = await openStoreForReading(opts.to);
      let summary: Record<string, unknown>;
      try {
        const keys = await backupKeys(opts.jwks, located, copy);
        const report = await copy.verify((jws) => keys.verifyCompact(jws));
        summary = {
          backup: opts.to,
          source: located.path,
          createdAt: new Date().toISOString(),
          ok: report.ok,
          sessions: report.sessions,
          events: report.events,
          checkpoints: report.checkpoints,
          problems: report.problems,
          pruned: report.pruned.sessions,
          keys: keys.list(),
        };
      } finally {
        await copy.close();
      }
      await writeFile(join(opts.to, backupManifestName), JSON.stringify(summary, null, 2) + '\n');
      if (opts.json) printJson(summary);
      else {
        process.stdout.write(
          `backup of ${located.path} written to ${opts.to}: ${summary['ok'] ? 'OK' : 'BROKEN'}: ` +
            `${String(summary['sessions'])} session(s), ${String(summary['events'])} event(s), ${String(summary['checkpoints'])} checkpoint(s)\n`,
        );
        for (const p of summary['problems'] as {
          session: string;
          seq?: number;
          kind: string;
          detail: string;
        }[])
          process.stdout.write(
            `  ${p.session}${p.seq !== undefined ? `#${p.seq}` : ''}: ${p.kind}: ${p.detail}\n`,
          );
      }
      if (!summary['ok']) process.exitCode = 1;
    });

  program
    .command('prune')
    .description(
      'remove whole, ended sessions older than a date that a backup or export holds (signed record kept)',
    )
    .requiredOption('--before <time>', 'sessions that ended before: ISO time or a duration before now (90d)')
    .option(
      '--covered-by <path>',
      'a backup (agentgate backup --to), a directory of backups, or of JSONL exports; repeatable',
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option('--config <file>', 'configuration file: its store and signingKey are used')
    .option('--store <path>', 'the transcript store (with --signing-key)')
    .option('--signing-key <file>', "the gateway's signing key, which signs the prune record (with --store)")
    .option('--dry-run', 'list what would be pruned; change nothing')
    .option('--json', 'one JSON document on stdout')
    .action(
      async (opts: {
        before: string;
        coveredBy?: string[];
        config?: string;
        store?: string;
        signingKey?: string;
        dryRun?: boolean;
        json?: boolean;
      }) => {
        const before = parseTimeArg(opts.before, '--before');
        const coveredBy = opts.coveredBy ?? [];
        if (coveredBy.length === 0)
          throw new CliError(
            '--covered-by PATH is required: sessions are pruned only once a backup or export holds them',
            2,
          );
        if (opts.store !== undefined && opts.signingKey === undefined)
          throw new CliError('--store needs --signing-key FILE (the prune record is signed)', 2);
        const located = await locateStore({
          ...(opts.store !== undefined ? { store: opts.store } : {}),
          ...(opts.config !== undefined ? { config: opts.config } : {}),
        });
        if (!existsSync(located.path)) throw new CliError(`transcript store ${located.path} does not exist`);
        const keyPath = opts.signingKey ?? located.config?.signingKey;
        if (keyPath === undefined)
          throw new CliError(`${located.config?.file ?? 'the configuration'} names no signingKey`);
        const store = await openTranscriptStore({
          path: located.path,
          failMode: located.config?.store.failMode ?? 'closed',
          checkpointIntervalMs: 0,
          signer: await loadSigningKey(keyPath),
        }).catch((err: unknown) => {
          if (isAgentgateError(err) && err.code === 'CONFLICT')
            throw new CliError(
              `${err.message}. A running gateway prunes its own store with store.retention; stop it to prune by hand`,
            );
          throw err;
        });
        let outcome: PruneOutcome;
        try {
          outcome = await store.prune({
            before,
            coveredBy,
            by: 'agentgate prune',
            ...(opts.dryRun ? { dryRun: true } : {}),
          });
        } finally {
          await store.close();
        }
        if (opts.json)
          printJson({ before: new Date(before).toISOString(), dryRun: opts.dryRun === true, ...outcome });
        else process.stdout.write(describePrune(outcome, before, opts.dryRun === true));
      },
    );
}

/** For the copy: --jwks, else the configuration's signing key when it is there, else the keys the copy records. */
async function backupKeys(
  jwks: string | undefined,
  located: LocatedStore,
  copy: StoreForReading,
): Promise<VerificationKeys> {
  const keyPath = located.config?.signingKey;
  const keyFileReadable =
    keyPath !== undefined && (await readSigningKeyPublicJwks(keyPath).catch(() => undefined)) !== undefined;
  if (jwks !== undefined || keyFileReadable) return trustedKeys(jwks, located, copy.keyHistory());
  return trustedKeys(undefined, { path: copy.path }, copy.keyHistory());
}

function describePrune(outcome: PruneOutcome, before: number, dryRun: boolean): string {
  const lines = [
    `${dryRun ? 'would prune' : 'pruned'} ${outcome.pruned.length} session(s) that ended before ${iso(before)}` +
      (dryRun ? '' : ` (${outcome.records} signed prune record(s))`),
  ];
  for (const s of outcome.pruned)
    lines.push(
      `  ${s.session}  ${s.protocol}  ${s.identity}  ended ${iso(s.endedAt)}  in ${outcome.evidence[s.session] ?? '?'}`,
    );
  if (outcome.notCovered.length > 0) {
    lines.push(`kept ${outcome.notCovered.length} session(s) no backup or export given holds intact:`);
    for (const id of outcome.notCovered) lines.push(`  ${id}`);
  }
  if (outcome.unsigned.length > 0) {
    lines.push(
      `kept ${outcome.unsigned.length} session(s) whose end is not signed (agentgate verify says why):`,
    );
    for (const id of outcome.unsigned) lines.push(`  ${id}`);
  }
  return lines.join('\n') + '\n';
}
