/**
 * A sign-in in progress, sealed into the browser's own login cookie (AES-256-GCM under a key of this process):
 * the server keeps nothing per login started, so requests that start sign-ins and never finish fill no table and
 * push no one else's sign-in out. A restart makes the sign-ins in progress fail, as it signs everyone out.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export interface PendingLogin {
  /** What the IdP must echo back, bound to this browser by the cookie. */
  readonly state: string;
  readonly codeVerifier: string;
  readonly nonce: string;
  readonly returnTo: string;
  /** ms since the epoch */
  readonly expiresAt: number;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

export class LoginSealer {
  readonly #key = randomBytes(32);

  seal(login: PendingLogin): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const sealed = Buffer.concat([cipher.update(JSON.stringify(login), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString('base64url');
  }

  /** The login this process sealed, or undefined for anything else (absent, altered, another process's). */
  open(cookie: string | undefined): PendingLogin | undefined {
    if (cookie === undefined) return undefined;
    const bytes = Buffer.from(cookie, 'base64url');
    if (bytes.length <= IV_BYTES + TAG_BYTES) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, bytes.subarray(0, IV_BYTES));
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
      const text = Buffer.concat([
        decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
      return JSON.parse(text) as PendingLogin;
    } catch {
      return undefined;
    }
  }
}
