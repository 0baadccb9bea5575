import { createHash } from 'node:crypto';
import { AgentgateError } from '@agentgate/core';

/** An SSH public key as written in authorized_keys, reduced to what matching needs. */
export interface SshPublicKey {
  /** The key type named inside the blob, e.g. `ssh-ed25519`. */
  readonly keyType: string;
  /** The SSH wire-format public key blob (RFC 4253 §6.6). */
  readonly blob: Buffer;
  readonly comment: string;
  /** `SHA256:<base64 without padding>`, as `ssh-keygen -l` prints it. */
  readonly fingerprint: string;
}

const ecdsaCurves: Record<string, string> = {
  'ecdsa-sha2-nistp256': 'nistp256',
  'ecdsa-sha2-nistp384': 'nistp384',
  'ecdsa-sha2-nistp521': 'nistp521',
};
const supportedKeyTypes = new Set(['ssh-ed25519', 'ssh-rsa', ...Object.keys(ecdsaCurves)]);

/** The OpenSSH SHA-256 fingerprint of a wire-format key blob. */
export function sshFingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/**
 * Parse one authorized_keys line (`[options] type base64 [comment]`, sshd(8) "AUTHORIZED_KEYS FILE FORMAT").
 * Options are skipped: agentgate decides with its own rules, not with sshd's key options.
 * Throws AgentgateError BAD_REQUEST when the line holds no supported, well-formed key.
 */
export function parseSshPublicKey(line: string): SshPublicKey {
  const fields = line.trim().split(/\s+/);
  const typeIndex = fields.findIndex((f) => supportedKeyTypes.has(f));
  const keyType = typeIndex >= 0 ? fields[typeIndex] : undefined;
  const base64 = typeIndex >= 0 ? fields[typeIndex + 1] : undefined;
  if (keyType === undefined || base64 === undefined) {
    throw new AgentgateError(
      'BAD_REQUEST',
      'not an ssh public key line of a supported type (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp*)',
    );
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64))
    throw new AgentgateError('BAD_REQUEST', 'ssh public key: invalid base64');
  const blob = Buffer.from(base64, 'base64');
  checkBlob(keyType, blob);
  return { keyType, blob, comment: fields.slice(typeIndex + 2).join(' '), fingerprint: sshFingerprint(blob) };
}

/** Validate the blob's structure (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709 §4) so garbage never enters a registry. */
function checkBlob(keyType: string, blob: Buffer): void {
  const reader = new SshWireReader(blob);
  const embeddedType = reader.string().toString('latin1');
  if (embeddedType !== keyType)
    throw new AgentgateError(
      'BAD_REQUEST',
      `ssh public key: blob holds ${embeddedType}, line says ${keyType}`,
    );
  if (keyType === 'ssh-ed25519') {
    if (reader.string().length !== 32)
      throw new AgentgateError('BAD_REQUEST', 'ssh public key: ed25519 key is not 32 bytes');
  } else if (keyType === 'ssh-rsa') {
    reader.string(); // e
    if (reader.string().length < 128)
      throw new AgentgateError('BAD_REQUEST', 'ssh public key: RSA modulus shorter than 1024 bits');
  } else {
    const curve = reader.string().toString('latin1');
    if (curve !== ecdsaCurves[keyType])
      throw new AgentgateError('BAD_REQUEST', `ssh public key: curve ${curve} does not match ${keyType}`);
    reader.string(); // Q
  }
  if (!reader.atEnd()) throw new AgentgateError('BAD_REQUEST', 'ssh public key: trailing bytes in key blob');
}

class SshWireReader {
  private offset = 0;
  constructor(private readonly buf: Buffer) {}

  string(): Buffer {
    if (this.offset + 4 > this.buf.length)
      throw new AgentgateError('BAD_REQUEST', 'ssh public key: truncated key blob');
    const length = this.buf.readUInt32BE(this.offset);
    const start = this.offset + 4;
    if (start + length > this.buf.length)
      throw new AgentgateError('BAD_REQUEST', 'ssh public key: truncated key blob');
    this.offset = start + length;
    return this.buf.subarray(start, start + length);
  }

  atEnd(): boolean {
    return this.offset === this.buf.length;
  }
}

/**
 * Whether a USERAUTH_REQUEST public key algorithm name fits a key type. RSA keys are offered under the
 * signature algorithm names rsa-sha2-256/512 (RFC 8332 §3), so the name alone does not equal the key type.
 */
export function algorithmFitsKeyType(algorithm: string, keyType: string): boolean {
  if (algorithm === keyType) return true;
  return keyType === 'ssh-rsa' && (algorithm === 'rsa-sha2-256' || algorithm === 'rsa-sha2-512');
}
