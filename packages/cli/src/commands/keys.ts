import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseDuration } from '@agentgate/core';
import { generateSigningKeyPair, mintToken } from '@agentgate/identity';

/** A local test IdP: a private JWK to sign tokens with and the JWKS a config's `identity.oidc[].jwks` points at. */
export function registerKeyCommands(program: Command): void {
  program
    .command('keys')
    .description('local test identity provider keys')
    .command('generate')
    .description('write a new private signing JWK (and optionally its public JWKS)')
    .requiredOption('--out <file>', 'private JWK file to write (mode 0600)')
    .option('--jwks <file>', 'public JWKS file to write')
    .option('--alg <alg>', 'ES256, RS256 or EdDSA', 'ES256')
    .action(async (opts: { out: string; jwks?: string; alg: 'ES256' | 'RS256' | 'EdDSA' }) => {
      const { privateJwk, jwks } = await generateSigningKeyPair(opts.alg);
      await writeFile(opts.out, JSON.stringify(privateJwk, null, 2) + '\n', { mode: 0o600 });
      if (opts.jwks) await writeFile(opts.jwks, JSON.stringify(jwks, null, 2) + '\n');
      process.stdout.write(`wrote ${opts.out}${opts.jwks ? ` and ${opts.jwks}` : ''}\n`);
    });

  program
    .command('token')
    .description('tokens from the local test identity provider')
    .command('mint')
    .description('mint a signed OIDC-style JWT')
    .requiredOption('--key <file>', 'private JWK file (from keys generate)')
    .requiredOption('--sub <name>', 'subject: the identity name')
    .option('--groups <list>', 'comma-separated groups', '')
    .option('--ttl <duration>', 'lifetime', '1h')
    .option('--iss <url>', 'issuer', 'agentgate-local')
    .option('--aud <aud>', 'audience', 'agentgate')
    .action(
      async (opts: { key: string; sub: string; groups: string; ttl: string; iss: string; aud: string }) => {
        const privateJwk = JSON.parse(await readFile(opts.key, 'utf8')) as object;
        const token = await mintToken({
          privateJwk,
          sub: opts.sub,
          groups: opts.groups
            .split(',')
            .map((g) => g.trim())
            .filter(Boolean),
          ttlSeconds: Math.round(parseDuration(opts.ttl) / 1000),
          issuer: opts.iss,
          audience: opts.aud,
        });
        process.stdout.write(token + '\n');
      },
    );
}
