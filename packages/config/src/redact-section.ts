/**
 * The `redact` section: what is replaced before anything is recorded, logged or shown to approvers.
 *
 *   redact:
 *     defaults: true                 # the built-in credential shapes (docs/configuration.md lists them)
 *     disable: [login-password]      # built-in entries turned off by name
 *     entries:
 *       - name: ticket-token
 *         pattern: 'TKT-[0-9a-f]{32}'
 *       - name: personal-data
 *         detectors: [email, iban]
 *
 * `redact: false` is short for `defaults: false` with no entries.
 */
import type { RedactConfig, RedactEntryConfig } from '@agentgate/core';
import { DEFAULT_PREFIX, DEFAULT_REDACTION_NAMES, KNOWN_DETECTORS } from '@agentgate/masking';
import { child, type Checker } from './checker.js';
import { didYouMean } from './did-you-mean.js';

const ON: RedactConfig = { defaults: true, disable: [], entries: [] };

export function readRedact(checker: Checker, value: unknown): RedactConfig | undefined {
  if (value === undefined) return ON;
  if (value === false) return { defaults: false, disable: [], entries: [] };
  if (value === true) return ON;
  const m = checker.mapping(value, 'redact', ['defaults', 'disable', 'entries']);
  if (m === undefined) return undefined;
  const defaults = checker.boolean(m.defaults, 'redact.defaults', true);
  const disable = checker.list(
    m.disable,
    'redact.disable',
    (element, p) => {
      const name = checker.string(element, p);
      if (name === undefined || DEFAULT_REDACTION_NAMES.includes(name)) return name;
      const hint = didYouMean(name.replace(DEFAULT_PREFIX, ''), DEFAULT_REDACTION_NAMES);
      checker.report(
        p,
        `expected a built-in redaction (${DEFAULT_REDACTION_NAMES.join(', ')}), found "${name}"${hint === undefined ? '' : ` (did you mean "${hint}"?)`}`,
      );
      return undefined;
    },
    [],
  );
  const seen = new Map<string, string>();
  const entries = checker.list(
    m.entries,
    'redact.entries',
    (element, p) => readEntry(checker, element, p, seen),
    [],
  );
  if (defaults === undefined || disable === undefined || entries === undefined) return undefined;
  return { defaults, disable, entries };
}

function readEntry(
  checker: Checker,
  value: unknown,
  path: string,
  seen: Map<string, string>,
): RedactEntryConfig | undefined {
  const m = checker.mapping(value, path, ['name', 'pattern', 'ignoreCase', 'detectors']);
  if (m === undefined) return undefined;
  const name = checker.string(m.name, child(path, 'name'));
  if (name !== undefined) {
    const first = seen.get(name);
    if (name.startsWith(DEFAULT_PREFIX)) {
      checker.report(
        child(path, 'name'),
        `expected a name not starting with "${DEFAULT_PREFIX}" (kept for the built-in entries), found "${name}"`,
      );
    } else if (first !== undefined) {
      checker.report(
        child(path, 'name'),
        `expected a unique redaction name, found "${name}" again (first at ${first})`,
      );
    } else seen.set(name, child(path, 'name'));
  }
  let pattern = m.pattern === undefined ? undefined : checker.string(m.pattern, child(path, 'pattern'));
  const ignoreCase = checker.boolean(m.ignoreCase, child(path, 'ignoreCase'), false);
  if (pattern !== undefined) {
    try {
      const regex = new RegExp(pattern, ignoreCase ? 'gdi' : 'gd');
      if (regex.test('')) {
        checker.report(
          child(path, 'pattern'),
          `expected a regex that cannot match empty text, found ${JSON.stringify(pattern)}`,
        );
        pattern = undefined;
      }
    } catch (err) {
      checker.report(
        child(path, 'pattern'),
        `expected a JavaScript regular expression, found ${JSON.stringify(pattern)} (${(err as Error).message})`,
      );
      pattern = undefined;
    }
  }
  const detectors =
    m.detectors === undefined
      ? undefined
      : checker.list(m.detectors, child(path, 'detectors'), (element, p) => {
          const detector = checker.string(element, p);
          if (detector === undefined || KNOWN_DETECTORS.includes(detector)) return detector;
          const hint = didYouMean(detector, KNOWN_DETECTORS);
          checker.report(
            p,
            `expected a detector (${KNOWN_DETECTORS.join(', ')}), found "${detector}"${hint === undefined ? '' : ` (did you mean "${hint}"?)`}`,
          );
          return undefined;
        });
  if (
    m.pattern === undefined &&
    (m.detectors === undefined || (Array.isArray(m.detectors) && m.detectors.length === 0))
  ) {
    checker.report(path, 'expected a pattern or detectors, found neither');
    return undefined;
  }
  if (m.pattern !== undefined && m.detectors !== undefined) {
    checker.report(path, 'expected either a pattern or detectors, found both (make two entries)');
    return undefined;
  }
  if (name === undefined || ignoreCase === undefined) return undefined;
  if (pattern !== undefined) return { name, pattern, ...(ignoreCase ? { ignoreCase } : {}) };
  if (detectors !== undefined && detectors.length > 0) return { name, detectors };
  return undefined;
}
