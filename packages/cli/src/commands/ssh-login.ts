import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { CliError } from '../cli-util.js';
import { resolveToken, tokenOptionHelp, type TokenOptions } from '../token-source.js';

/**
 * Register an SSH public key with the gateway for a limited time (docs/clients.md, SSH clients): the OpenSSH client cuts passwords at
 * 1023 bytes, so a long OIDC token cannot be the password; the key acts as the token's identity instead.
 */
export function registerSshLoginCommand(program: Command): void {
  program
    .command('ssh-login')
    .description('register your SSH public key with the gateway as your token identity, for a limited time')
    .requiredOption('--admin <url>', 'admin API base URL, e.g. http://127.0.0.1:9090')
    .option('--token-file <file>', tokenOptionHelp.tokenFile)
    .option('--token <token>', tokenOptionHelp.token)
    .option('--key <file>', 'public key file', join(homedir(), '.ssh', 'id_ed25519.pub'))
    .option('--ttl <duration>', 'how long the key is accepted', '8h')
    .option('--json', 'print the registration as JSON')
    .action(async (opts: TokenOptions & { admin: string; key: string; ttl: string; json?: boolean }) => {
      const token = await resolveToken(opts);
      const publicKey = (await readFile(opts.key, 'utf8')).trim();
      const res = await fetch(new URL('/api/ssh-keys', opts.admin), {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ publicKey, ttl: opts.ttl }),
      });
      const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
      if (!res.ok)
        throw new CliError(`ssh-login failed: HTTP ${res.status}: ${String(body['message'] ?? '')}`);
      if (opts.json) process.stdout.write(JSON.stringify(body, null, 2) + '\n');
      else {
        process.stdout.write(
          `registered ${String(body['fingerprint'])} as ${String(body['identity'])} until ${String(body['expiresAt'])}\n`,
        );
        const shortened = body['ttlShortened'] as
          { asked: string; granted: string; reason: string } | undefined;
        if (shortened !== undefined)
          process.stderr.write(
            `note: the ttl was shortened from ${shortened.asked} to ${shortened.granted}: ${shortened.reason}\n`,
          );
      }
    });
}
