import type { Command } from 'commander';
import { loadConfig } from '@agentgate/config';
import { createJsonLogger } from '@agentgate/core';
import type { RunningGateway } from '../gateway.js';
import { CliError } from '../cli-util.js';
import { oneAtATime } from '../one-at-a-time.js';
import { startRetention } from '../retention.js';

export function registerServeCommands(program: Command): void {
  program
    .command('serve')
    .description('run the gateway: every configured listener and the admin API')
    .requiredOption('--config <file>', 'configuration file (YAML)')
    .option('--reindex', "build the console's session index again from the transcript store")
    .action(async (opts: { config: string; reindex?: boolean }) => {
      const log = createJsonLogger({
        level: (process.env['AGENTGATE_LOG_LEVEL'] as 'info' | undefined) ?? 'info',
      });
      // SIGHUP (systemctl reload): re-read the file; rules, masking and approvals change in place, a bad file changes
      // nothing.
      // Taken from the first moment: SIGHUP's default would end the process while it is still starting.
      let gateway: RunningGateway | undefined = undefined;
      let reloadWhenStarted = false;
      const reload = oneAtATime(() => {
        const running = gateway!;
        return loadConfig(opts.config)
          .then((next) => running.reload(next))
          .then(
            (outcome) => {
              const absent = outcome.absentListeners;
              log.info('configuration reloaded', {
                file: opts.config,
                rules: outcome.rules,
                masking: outcome.masking,
                identity: outcome.identity,
                ...(outcome.allow === undefined ? {} : { allow: outcome.allow }),
                ...(absent === undefined ? {} : { rulesForListenersNotRunning: absent }),
              });
              if (absent !== undefined) {
                log.warn(
                  'reloaded rules name listeners that are not running (listeners change only at a restart)',
                  {
                    rules: absent,
                    running: running.config.listeners.map((l) => l.name),
                  },
                );
              }
              if (outcome.needsRestart.length > 0) {
                log.warn('configuration changes that take effect only after a restart', {
                  sections: outcome.needsRestart,
                });
              }
            },
            (err: unknown) =>
              log.error('configuration reload failed; the running configuration stays', {
                error: err instanceof Error ? err.message : String(err),
              }),
          );
      });
      const onReload = (): void => {
        if (gateway === undefined) reloadWhenStarted = true;
        else reload();
      };
      process.on('SIGHUP', onReload);
      // A file-size limit (systemd LimitFSIZE=, ulimit -f) reached by the store would raise SIGXFSZ, whose default
      // kills the process and every session with it. Ignored, the write fails with EFBIG and the store fails like on
      // a full disk: failMode decides, and the gateway stays up.
      process.on('SIGXFSZ', () => {});
      const config = await loadConfig(opts.config);
      // Loaded on demand: the engines pull in WASM parsers and ssh2, which the read-side commands never need.
      const { startGateway } = await import('../gateway.js');
      gateway = await startGateway(config, { log, ...(opts.reindex === true ? { reindex: true } : {}) });
      const retention = config.store.retention
        ? startRetention(gateway.store, config.store.retention, log.child({ component: 'retention' }))
        : undefined;
      if (reloadWhenStarted) onReload();
      // SIGTERM (systemctl stop/restart, a rolling restart): drain — stop accepting, let open sessions finish for
      // at most shutdown.drainTimeout, end the rest, flush the store. A second SIGTERM or SIGINT ends them at once.
      const running = gateway;
      let signals = 0;
      const stopped = new Promise<void>((resolve) => {
        const onSignal = (signal: string): void => {
          signals++;
          log.info('signal received', { signal, ...(signals > 1 ? { action: 'stop now' } : {}) });
          if (signals === 1) {
            void retention?.stop();
            running.drain().then(resolve, resolve);
          } else void running.stop();
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      });
      await stopped;
      process.off('SIGHUP', onReload);
      await retention?.stop();
      // Stopped and flushed: nothing is left to do, so a handle something forgot to close must not keep the process
      // (and systemd's stop) waiting.
      setTimeout(() => {
        log.warn('the process did not exit after the gateway stopped; exiting');
        process.exit(0);
      }, 5_000).unref();
    });

  program
    .command('check-config')
    .description('validate a configuration file; prints OK or every error')
    .requiredOption('--config <file>', 'configuration file (YAML)')
    .option('--probe', "also connect to each listener's upstream and log in with the configured credentials")
    .action(async (opts: { config: string; probe?: boolean }) => {
      const config = await loadConfig(opts.config);
      process.stdout.write(
        `OK: ${config.file}: ${config.listeners.length} listener(s), ${config.rules.length} rule(s), ${config.masking.length} masking rule(s)\n`,
      );
      if (config.rules.length === 0)
        process.stderr.write(
          'warning: no rules are configured: every command is decided by its listener default (allow unless set to deny)\n',
        );
      if (opts.probe !== true) return;
      // Loaded on demand, like serve: the protocol packages are large.
      const { probeUpstream } = await import('../upstream-health.js');
      const results = await Promise.all(
        config.listeners.map(async (l) => [l, await probeUpstream(l)] as const),
      );
      for (const [listener, r] of results)
        process.stdout.write(
          `${r.ok ? 'ok    ' : 'FAILED'} ${listener.name} (${listener.protocol}): ${r.ok ? r.message : `${r.stage}: ${r.message}`} [${r.latencyMs} ms]\n`,
        );
      const failed = results.filter(([, r]) => !r.ok).length;
      if (failed > 0) throw new CliError(`${failed} of ${results.length} upstream(s) failed the probe`, 1);
    });
}
