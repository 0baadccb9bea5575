import { lstat, readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { loadStoreLocation } from '@agentgate/config';
import { parseDuration } from '@agentgate/core';
import { generateSigningKeyPair, hashStaticToken, mintToken } from '@agentgate/identity';
import { rotateSigningKey, storeLockHolder } from '@agentgate/transcript';
import { CliError } from '../cli-util.js';
import { readStdin, tokenText } from '../token-source.js';

export function registerKeyCommands(program: Command): void {
  const keys = program
    .command('keys')
    .description('signing keys: the local test identity provider, the gateway');

  // A local test IdP: a private JWK to sign tokens with and the JWKS a config's `identity.oidc[].jwks` points at.
  keys
    .command('generate')
    .description('write a new private signing JWK (and optionally its public JWKS) for the local test IdP')
    .requiredOption('--out <file>', 'private JWK file to write (mode 0600)')
    .option('--jwks <file>', 'public JWKS file to write')
    .option('--alg <alg>', 'ES256, RS256 or EdDSA', 'ES256')
    .option('--force', 'overwrite files that exist')
    .action(
      async (opts: { out: string; jwks?: string; alg: 'ES256' | 'RS256' | 'EdDSA'; force?: boolean }) => {
        if (!['ES256', 'RS256', 'EdDSA'].includes(opts.alg))
          throw new CliError('--alg must be ES256, RS256 or EdDSA', 2);
        const { privateJwk, jwks } = await generateSigningKeyPair(opts.alg);
        // Check both before writing either, so a refusal leaves nothing half-replaced.
        const flag = opts.force ? 'w' : 'wx';
        if (!opts.force)
          for (const file of [opts.out, opts.jwks]) if (file !== undefined) await refuseExisting(file);
        await writeFile(opts.out, JSON.stringify(privateJwk, null, 2) + '\n', { mode: 0o600, flag }).catch(
          writeError,
        );
        if (opts.jwks)
          await writeFile(opts.jwks, JSON.stringify(jwks, null, 2) + '\n', { flag }).catch(writeError);
        process.stdout.write(`wrote ${opts.out}${opts.jwks ? ` and ${opts.jwks}` : ''}\n`);
      },
    );

  keys
    .command('rotate')
    .description(
      "replace the gateway's signing key; the old public key stays in the file and keeps verifying",
    )
    .option('--config <file>', 'configuration file: its signingKey is rotated')
    .option('--key <file>', 'the signing key file itself')
    .action(async (opts: { config?: string; key?: string }) => {
      if ((opts.config === undefined) === (opts.key === undefined))
        throw new CliError('give --config FILE or --key FILE', 2);
      let path = opts.key;
      let running: { pid: number } | undefined;
      if (opts.config !== undefined) {
        const location = await loadStoreLocation(opts.config);
        if (location.signingKey === undefined) throw new CliError(`${location.file} names no signingKey`);
        path = location.signingKey;
        running = await storeLockHolder(location.store.path);
      }
      const rotated = await rotateSigningKey(path!);
      process.stdout.write(
        `rotated ${path}: signing with ${rotated.kid} from the next start; ${rotated.previousKid} stays in the file ` +
          `as a verification key (the JWKS endpoint serves both)\n` +
          (running
            ? `the running gateway (pid ${running.pid}) signs with ${rotated.previousKid} until it is restarted\n`
            : ''),
      );
    });

  const token = program.command('token').description('tokens: mint test tokens, hash service tokens');
  token
    .command('mint')
    .description('mint a signed OIDC-style JWT from the local test identity provider')
    .requiredOption('--key <file>', 'private JWK file (from keys generate)')
    .requiredOption('--sub <name>', 'subject: the identity name')
    .option('--groups <list>', 'comma-separated groups', '')
    .option('--ttl <duration>', 'lifetime', '1h')
    .option('--iss <url>', 'issuer', 'agentgate-local')
    .option('--aud <aud>', 'audience', 'agentgate')
    .action(
      async (opts: { key: string; sub: string; groups: string; ttl: string; iss: string; aud: string }) => {
        const privateJwk = JSON.parse(await readFile(opts.key, 'utf8')) as object;
        const minted = await mintToken({
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
        process.stdout.write(minted + '\n');
      },
    );
  token
    .command('hash')
    .description(
      'print the sha256 of a service token as identity.tokens[].sha256 wants it (token from stdin)',
    )
    .option('--token-file <file>', 'read the token from this file instead of stdin')
    .action(async (opts: { tokenFile?: string }) => {
      const from = opts.tokenFile === undefined ? 'stdin' : `--token-file ${opts.tokenFile}`;
      let raw: string;
      try {
        raw =
          opts.tokenFile === undefined || opts.tokenFile === '-'
            ? await readStdin()
            : await readFile(opts.tokenFile, 'utf8');
      } catch (err) {
        throw new CliError(`${from}: ${(err as Error).message}`);
      }
      // Hashed by the same function the gateway hashes a presented token with.
      process.stdout.write(hashStaticToken(tokenText(raw, from)) + '\n');
    });
}

async function refuseExisting(file: string): Promise<void> {
  try {
    await lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new CliError(`${file}: ${(err as Error).message}`);
  }
  throw new CliError(`${file} exists; give --force to overwrite it`);
}

function writeError(err: unknown): never {
  if ((err as NodeJS.ErrnoException).code === 'EEXIST')
    throw new CliError(
      `${(err as { path?: string }).path ?? 'the file'} exists; give --force to overwrite it`,
    );
  throw err;
}
