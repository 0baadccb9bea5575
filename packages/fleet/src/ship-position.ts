/**
 * The shipper's acknowledged position: the last commit-feed position whose events and checkpoints the fleet
 * database has committed, kept in a small file beside the store. It is written after the database acknowledged
 * (never before), atomically (a temp file renamed over it), so after a crash it is at most a little behind what
 * was shipped, and re-shipping from there inserts nothing twice.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';

export interface ShipPosition {
  /** the store's identity (its commit feed's storeId): positions of another store mean other commits */
  readonly storeId: string | undefined;
  readonly position: number;
}

/** Where a store's position file lives: in the store's directory. */
export function positionFileFor(storePath: string): string {
  const dir = extname(storePath) ? dirname(storePath) : storePath;
  return join(dir, 'fleet-position.json');
}

export async function readShipPosition(file: string): Promise<ShipPosition | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as { storeId?: unknown; position?: unknown };
    if (typeof parsed.position !== 'number' || !Number.isInteger(parsed.position) || parsed.position < 0)
      return undefined;
    return {
      storeId: typeof parsed.storeId === 'string' ? parsed.storeId : undefined,
      position: parsed.position,
    };
  } catch {
    // A damaged file: shipping again from the start inserts nothing twice.
    return undefined;
  }
}

export async function writeShipPosition(file: string, value: ShipPosition & { node: string }): Promise<void> {
  const temp = `${file}.tmp`;
  await writeFile(temp, JSON.stringify({ ...value, at: new Date().toISOString() }) + '\n', { mode: 0o600 });
  await rename(temp, file);
}
