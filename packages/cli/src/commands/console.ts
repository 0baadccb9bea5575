import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { loadConfig } from '@agentgate/config';
import { parseDuration } from '@agentgate/core';
import { LINK_PURPOSE, MAX_LINK_TTL_SECONDS } from '@agentgate/console';
import { mintToken } from '@agentgate/identity';
import { CliError } from '../cli-util.js';

/**
 * `agentgate console link`: a one-time sign-in link for the web console, for setups whose IdP has no login page
 * (the local test IdP of `keys generate`). The link carries a short-lived JWT signed with that IdP's key; the
 * gateway verifies it like any token and lets it sign in once.
 */
export function registerConsoleCommands(program: Command): void {
  program
    .command('console')
    .description('the web console')
    .command('link')
    .description('print a one-time, short-lived sign-in link for the web console')
    .requiredOption('--config <file>', 'configuration file (YAML) with a console section')
    .requiredOption('--key <file>', 'private JWK of a configured identity.oidc issuer (from keys generate)')
    .requiredOption('--sub <name>', 'who signs in: the identity name')
    .option('--groups <list>', 'comma-separated groups', '')
    .option('--ttl <duration>', 'how long the link (and the console session it opens) lasts', '30m')
    .option('--iss <url>', 'issuer (default: the only identity.oidc issuer, else agentgate-local)')
    .option('--aud <aud>', 'audience (default: that issuer’s audience, else agentgate)')
    .action(
      async (opts: {
        config: string;
        key: string;
        sub: string;
        groups: string;
        ttl: string;
        iss?: string;
        aud?: string;
      }) => {
        const config = await loadConfig(opts.config);
        if (config.console === undefined)
          throw new CliError(`${config.file} has no console section: the gateway serves no console`);
        const ttlSeconds = Math.round(parseDuration(opts.ttl) / 1000);
        if (ttlSeconds <= 0 || ttlSeconds > MAX_LINK_TTL_SECONDS)
          throw new CliError('--ttl must be between 1s and 24h', 2);
        const only = config.identity.oidc.length === 1 ? config.identity.oidc[0] : undefined;
        const issuer = opts.iss ?? only?.issuer ?? 'agentgate-local';
        const issuerConfig = config.identity.oidc.find((o) => o.issuer === issuer);
        if (issuerConfig === undefined)
          throw new CliError(
            `issuer ${issuer} is not one of identity.oidc in ${config.file}; the link would not work`,
          );
        const privateJwk = JSON.parse(await readFile(opts.key, 'utf8')) as object;
        const token = await mintToken({
          privateJwk,
          sub: opts.sub,
          groups: opts.groups
            .split(',')
            .map((g) => g.trim())
            .filter(Boolean),
          ttlSeconds,
          issuer,
          audience: opts.aud ?? issuerConfig.audience,
          groupsClaim: issuerConfig.groupsClaim,
          extraClaims: { purpose: LINK_PURPOSE },
        });
        process.stdout.write(`${config.console.publicUrl}/auth/link?token=${token}\n`);
      },
    );
}
