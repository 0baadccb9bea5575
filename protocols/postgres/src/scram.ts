/**
 * SCRAM-SHA-256 client (RFC 5802 / RFC 7677; PostgreSQL docs "SASL Authentication"). PostgreSQL ignores the
 * SCRAM user name (it uses the startup user), so the client-first message carries `n=*`.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { AgentgateError } from '@agentgate/core';

const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

export class ScramClient {
  private readonly clientNonce: string;
  private readonly clientFirstBare: string;
  private serverSignature: Buffer | undefined;

  /** `nonce` and `user` are for test vectors only. */
  constructor(
    private readonly password: string,
    fixed: { nonce?: string; user?: string } = {},
  ) {
    this.clientNonce = fixed.nonce ?? randomBytes(18).toString('base64');
    this.clientFirstBare = `n=${fixed.user ?? '*'},r=${this.clientNonce}`;
  }

  get clientFirstMessage(): string {
    return `n,,${this.clientFirstBare}`;
  }

  /** Answer the server-first message with the client-final message. */
  clientFinal(serverFirst: string): string {
    const attrs = parseAttributes(serverFirst);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (
      !nonce?.startsWith(this.clientNonce) ||
      salt === undefined ||
      !Number.isInteger(iterations) ||
      iterations < 1
    ) {
      throw new AgentgateError(
        'UPSTREAM_UNAVAILABLE',
        'agentgate: upstream sent an invalid SCRAM server-first message',
      );
    }
    const saltedPassword = pbkdf2Sync(
      this.password.normalize('NFKC'),
      Buffer.from(salt, 'base64'),
      iterations,
      32,
      'sha256',
    );
    const clientKey = hmac(saltedPassword, 'Client Key');
    const serverKey = hmac(saltedPassword, 'Server Key');
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const clientSignature = hmac(sha256(clientKey), authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    this.serverSignature = hmac(serverKey, authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Check the server-final message so a server that does not know the password cannot pose as the upstream. */
  verifyServerFinal(serverFinal: string): void {
    const v = parseAttributes(serverFinal).get('v');
    const expected = this.serverSignature;
    if (
      v === undefined ||
      expected === undefined ||
      !timingSafeEqualBuffers(Buffer.from(v, 'base64'), expected)
    ) {
      throw new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: upstream SCRAM server signature mismatch');
    }
  }
}

function timingSafeEqualBuffers(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function parseAttributes(text: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) attrs.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return attrs;
}

/** md5 password hash: 'md5' + md5(md5(password + user) + salt) (PostgreSQL docs "AuthenticationMD5Password"). */
export function md5Password(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5')
    .update(password + user)
    .digest('hex');
  return (
    'md5' +
    createHash('md5')
      .update(Buffer.concat([Buffer.from(inner), salt]))
      .digest('hex')
  );
}
