/**
 * A fleet replica's SSH key registrations live in the fleet database (docs/configuration.md, `fleet`), on the
 * process's pool and LISTEN connection, instead of the file beside the store.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from '@agentgate/core';
import { FleetSshKeys } from '@agentgate/fleet';
import type { SshKeyRegistrationStore } from '@agentgate/identity';
import type { RunningShipper } from './fleet-shipping.js';

export function fleetSshKeys(
  shipper: RunningShipper,
  node: string,
  localFile: string,
  log: Logger,
): SshKeyRegistrationStore & { close(): void } {
  const flog = log.child({ component: 'fleet', node });
  if (localRegistrations(localFile) > 0)
    flog.warn(
      'fleet: SSH key registrations are kept in the fleet database; the ones in the local file are not used (register those keys again with ssh-login)',
      { file: localFile },
    );
  return new FleetSshKeys({ db: shipper.db, notifications: shipper.notifications, node, log: flog });
}

/** How many registrations the replica's own file lists (0 when there is none, or it cannot be read). */
function localRegistrations(file: string): number {
  try {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { registrations?: unknown };
    return Array.isArray(doc.registrations) ? doc.registrations.length : 0;
  } catch {
    return 0;
  }
}
