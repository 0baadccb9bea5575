/** The `redact` config section → the entries in force and the Redactor over them. */
import type { RedactConfig, Redactor } from '@agentgate/core';
import { detectorByName } from '../detectors.js';
import { DEFAULT_REDACTIONS, detectorEntry, type RedactionEntry } from './entries.js';
import { createRedactorFromEntries } from './redactor.js';

/** Built-in entries are recorded as `default:NAME`, so they never collide with an operator's names. */
export const DEFAULT_PREFIX = 'default:';

export function redactionEntries(config: RedactConfig): RedactionEntry[] {
  const entries: RedactionEntry[] = [];
  if (config.defaults) {
    for (const [name, entry] of Object.entries(DEFAULT_REDACTIONS)) {
      if (!config.disable.includes(name)) entries.push({ name: DEFAULT_PREFIX + name, ...entry });
    }
  }
  for (const entry of config.entries) {
    if (entry.pattern !== undefined)
      entries.push({ name: entry.name, pattern: entry.pattern, ignoreCase: entry.ignoreCase === true });
    for (const detector of entry.detectors ?? []) {
      const definition = detectorByName(detector);
      if (definition === undefined) throw new Error(`redact entry ${entry.name}: no detector ${detector}`);
      entries.push(detectorEntry(definition, entry.name));
    }
  }
  return entries;
}

export function createRedactor(config: RedactConfig): Redactor {
  return createRedactorFromEntries(redactionEntries(config));
}
