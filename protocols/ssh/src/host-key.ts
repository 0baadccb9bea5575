import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';
import { AgentgateError } from '@agentgate/core';

/**
 * The gateway's own SSH host key (docs/configuration.md, "SSH listeners"): an ed25519 key in OpenSSH format, created on first start
 * with mode 0600 so the listener keeps one identity across restarts.
 */
export async function loadOrCreateHostKey(path: string): Promise<Buffer> {
  try {
    const pem = await readFile(path);
    const parsed = ssh2.utils.parseKey(pem);
    if (parsed instanceof Error)
      throw new AgentgateError('CONFIG_INVALID', `${path}: not an SSH private key (${parsed.message})`);
    return pem;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'agentgate host key' });
  await mkdir(dirname(path), { recursive: true });
  // `wx`: never overwrite a key another process created between our read and write.
  await writeFile(path, pair.private, { mode: 0o600, flag: 'wx' }).catch(
    async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    },
  );
  await chmod(path, 0o600);
  await writeFile(`${path}.pub`, pair.public + '\n', { mode: 0o644 }).catch(() => undefined);
  return readFile(path);
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
