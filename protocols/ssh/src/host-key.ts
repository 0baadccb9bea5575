import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';
import { AgentgateError } from '@agentgate/core';

/** An OpenSSH key pair as text: the private key file and the `.pub` line. */
export interface HostKeyPair {
  readonly private: string;
  readonly public: string;
}

/**
 * ssh2's generator drops a public key's leading zero byte (mscdex/ssh2#1390): one ed25519 key in 256 comes out
 * malformed, and a listener with such a key resets every connection. A malformed pair is generated again; eight
 * in a row would mean a broken generator, not bad luck.
 */
const GENERATE_ATTEMPTS = 8;

const generateEd25519 = (): HostKeyPair =>
  ssh2.utils.generateKeyPairSync('ed25519', { comment: 'agentgate host key' });

/** A new ed25519 host key that ssh2 itself parses, private and public half. */
export function generateHostKey(generate: () => HostKeyPair = generateEd25519): HostKeyPair {
  for (let attempt = 0; attempt < GENERATE_ATTEMPTS; attempt++) {
    const pair = generate();
    if (
      !(ssh2.utils.parseKey(pair.private) instanceof Error) &&
      !(ssh2.utils.parseKey(pair.public) instanceof Error)
    )
      return pair;
  }
  throw new AgentgateError(
    'INTERNAL',
    `could not generate an SSH host key ssh2 can read (${GENERATE_ATTEMPTS} tries)`,
  );
}

/**
 * The gateway's own SSH host key (docs/configuration.md, "SSH listeners"): an ed25519 key in OpenSSH format, created on first start
 * with mode 0600 so the listener keeps one identity across restarts. A file that is not a usable key is refused
 * with what to do, so the listener does not start rather than reset every connection.
 */
export async function loadOrCreateHostKey(path: string): Promise<Buffer> {
  try {
    const pem = await readFile(path);
    const parsed = ssh2.utils.parseKey(pem);
    if (parsed instanceof Error)
      throw new AgentgateError(
        'CONFIG_INVALID',
        `${path}: not an SSH private key (${parsed.message}); ` +
          'give the listener a valid OpenSSH private key, or remove the file (and its .pub) to have a new one created',
      );
    return pem;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const pair = generateHostKey();
  await mkdir(dirname(path), { recursive: true });
  // `wx`: never overwrite a key another process created between our read and write; theirs is then the key.
  const created = await writeFile(path, pair.private, { mode: 0o600, flag: 'wx' }).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
      return false;
    },
  );
  if (!created) return loadOrCreateHostKey(path);
  await writeFile(`${path}.pub`, pair.public + '\n', { mode: 0o644 }).catch(() => undefined);
  return Buffer.from(pair.private);
}

/** `ssh-ed25519 AAAA… comment` → the wire-format key blob. */
export function parsePublicKeyLine(line: string): { algorithm: string; blob: Buffer } {
  const parts = line.trim().split(/\s+/);
  const algorithm = parts[0];
  const b64 = parts[1];
  if (algorithm === undefined || b64 === undefined || !/^[A-Za-z0-9+/=]+$/.test(b64)) {
    throw new AgentgateError('CONFIG_INVALID', `not an SSH public key line: "${line.slice(0, 40)}"`);
  }
  return { algorithm, blob: Buffer.from(b64, 'base64') };
}
