import { describe, expect, it } from '@jest/globals';
import { safeReturnTo } from './return-to.js';

const origin = 'https://agentgate.example.com';

describe('safeReturnTo', () => {
  it('keeps a path of this console with its query and fragment', () => {
    expect(safeReturnTo('/sessions?identity=devin#top', origin)).toBe('/sessions?identity=devin#top');
    expect(safeReturnTo('/approvals/01M93WMXHYW6C5KTJ8M29Z48D7', origin)).toBe(
      '/approvals/01M93WMXHYW6C5KTJ8M29Z48D7',
    );
  });

  it.each([
    null,
    undefined,
    '',
    'https://evil.example/',
    '//evil.example/',
    '/\\evil.example/',
    // A browser drops tabs and newlines from a Location before resolving it: these are `//evil.example`.
    '/\t/evil.example/',
    '/\n/evil.example/',
    '/\r\n/evil.example/',
    '\t//evil.example/',
    'javascript:alert(1)',
  ])('sends %j to the overview', (value) => {
    expect(safeReturnTo(value, origin)).toBe('/');
  });

  it('what it keeps resolves to this origin, as a browser resolves it', () => {
    for (const value of ['/a/../..//evil.example', '/./\u0009/evil.example', '/%2F%2Fevil.example']) {
      const kept = safeReturnTo(value, origin);
      expect(new URL(kept.replace(/[\t\n\r]/g, ''), origin).origin).toBe(origin);
    }
  });
});
