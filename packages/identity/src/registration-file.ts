/**
 * SSH key registrations on disk, so they outlive a restart: one JSON document, replaced whole on every change
 * (written to a temporary file, synced, renamed over the old one, the directory synced), mode 0600. A crash leaves
 * either the old document or the new one, never a mix.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { AgentgateError } from '@agentgate/core';
import type {
  RegisteredWith,
  SshKeyRegistrationStore,
  StoredRegistration,
  StoredRevocation,
} from './registration-store.js';

export type { RegisteredWith, StoredRegistration } from './registration-store.js';

const VERSION = 1;

export class RegistrationFile implements SshKeyRegistrationStore {
  readonly shared = false;

  /** Writes run one after another; each writes the whole state it was given. */
  #writing: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  /** The stored registrations; none when the file does not exist. Throws CONFIG_INVALID for a file it cannot read. */
  async read(): Promise<StoredRegistration[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw this.unreadable((err as Error).message);
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw this.unreadable('it is not JSON');
    }
    const registrations = (doc as { version?: unknown; registrations?: unknown } | null)?.registrations;
    if ((doc as { version?: unknown } | null)?.version !== VERSION || !Array.isArray(registrations))
      throw this.unreadable(`expected {"version": ${VERSION}, "registrations": [...]}`);
    return registrations.map((entry, index) => this.checked(entry, index));
  }

  saveRegistration(_registration: StoredRegistration, all: readonly StoredRegistration[]): Promise<void> {
    return this.write(all);
  }

  saveRevocations(
    _revocations: readonly StoredRevocation[],
    all: readonly StoredRegistration[],
  ): Promise<void> {
    return this.write(all);
  }

  /** Replace the file with `registrations`; resolves once they are durable. */
  write(registrations: readonly StoredRegistration[]): Promise<void> {
    const text = JSON.stringify({ version: VERSION, registrations }, null, 1) + '\n';
    const next = this.#writing.catch(() => undefined).then(() => this.#replace(text));
    this.#writing = next;
    return next;
  }

  async #replace(text: string): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temporary = join(dir, `.${basename(this.path)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const file = await open(temporary, 'wx', 0o600);
      try {
        await file.writeFile(text, 'utf8');
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temporary, this.path);
    } catch (err) {
      await rm(temporary, { force: true });
      throw err;
    }
    const directory = await open(dir, 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  }

  private checked(entry: unknown, index: number): StoredRegistration {
    const e = entry as Record<string, unknown> | null;
    const ok =
      e !== null &&
      typeof e === 'object' &&
      typeof e['publicKey'] === 'string' &&
      typeof e['identity'] === 'string' &&
      Array.isArray(e['groups']) &&
      e['groups'].every((g) => typeof g === 'string') &&
      typeof e['registeredAt'] === 'number' &&
      typeof e['expiresAt'] === 'number' &&
      (e['registeredWith'] === undefined || isRegisteredWith(e['registeredWith']));
    if (!ok) throw this.unreadable(`registrations[${index}] is not a registration`);
    return e as unknown as StoredRegistration;
  }

  private unreadable(why: string): AgentgateError {
    return new AgentgateError(
      'CONFIG_INVALID',
      `the SSH key registrations file ${this.path} cannot be read: ${why}; repair it, or remove it to drop every registration`,
    );
  }
}

function isRegisteredWith(value: unknown): value is RegisteredWith {
  const v = value as Record<string, unknown> | null;
  if (v === null || typeof v !== 'object') return false;
  return (
    (v['kind'] === 'token' && typeof v['sha256'] === 'string') ||
    (v['kind'] === 'oidc' && typeof v['issuer'] === 'string')
  );
}
