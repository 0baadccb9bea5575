/**
 * Where a command gets a token without putting it on the command line (argv is visible to every user in `ps`):
 * `--token-file FILE` (`-` for stdin) or the AGENTGATE_TOKEN environment variable; `--token TOKEN` is still
 * accepted.
 */
import { readFile } from 'node:fs/promises';
import { CliError } from './cli-util.js';

export interface TokenOptions {
  token?: string;
  tokenFile?: string;
}

export const tokenOptionHelp = {
  token: 'your OIDC or service token (visible in ps: prefer --token-file or AGENTGATE_TOKEN)',
  tokenFile: 'read the token from this file (- for stdin)',
};

export async function resolveToken(opts: TokenOptions): Promise<string> {
  if (opts.token !== undefined && opts.tokenFile !== undefined)
    throw new CliError('give --token or --token-file, not both', 2);
  if (opts.tokenFile !== undefined)
    return tokenText(await readTokenFile(opts.tokenFile), `--token-file ${opts.tokenFile}`);
  if (opts.token !== undefined) return tokenText(opts.token, '--token');
  const fromEnv = process.env['AGENTGATE_TOKEN'];
  if (fromEnv !== undefined && fromEnv !== '') return tokenText(fromEnv, 'AGENTGATE_TOKEN');
  throw new CliError('no token: give --token-file FILE (- for stdin) or set AGENTGATE_TOKEN', 2);
}

async function readTokenFile(file: string): Promise<string> {
  try {
    return file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(`--token-file ${file}: ${(err as Error).message}`);
  }
}

/**
 * The token as clients send it: one line ending (as `echo` and editors add) is not part of it. Whitespace around
 * it or inside it cannot be sent reliably (an HTTP header drops it), so it is an error rather than a silent
 * mismatch.
 */
export function tokenText(raw: string, from: string): string {
  const token = raw.replace(/\r?\n$/, '');
  if (token === '') throw new CliError(`${from}: the token is empty`);
  if (/\s/.test(token)) {
    const where = /^\s|\s$/.test(token)
      ? 'leading or trailing whitespace'
      : 'whitespace or a line break inside';
    throw new CliError(`${from}: the token has ${where}; tokens are sent as one word`);
  }
  return token;
}

/** All of stdin; from a terminal, one line read without echo. */
export async function readStdin(): Promise<string> {
  const stdin = process.stdin;
  if (stdin.isTTY) return readLineWithoutEcho();
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function readLineWithoutEcho(): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write('token (not echoed): ');
  return new Promise((resolve, reject) => {
    let line = '';
    const finish = (): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
    };
    const onData = (data: Buffer): void => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          finish();
          resolve(line);
          return;
        }
        if (ch === '\u0003') {
          finish();
          reject(new CliError('interrupted'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1);
        else line += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}
