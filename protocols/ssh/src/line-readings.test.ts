import { describe, it, expect } from '@jest/globals';
import { alternateReadings, shownOnScreen } from './line-readings.js';
import { TypedKeys } from './typed-keys.js';

describe('alternateReadings', () => {
  it('adds the text after prompt-like markers so a prompt cannot hide a command', () => {
    expect(alternateReadings('root@vm:~# rm -rf /x', null)).toContain('rm -rf /x');
    expect(alternateReadings('me@host:~$ rm -rf /x', null)).toContain('rm -rf /x');
  });

  it('reads no command after markers that are shell syntax (redirects, comments, percentages)', () => {
    for (const line of [
      'echo hi > /tmp/out',
      'ls 2> /dev/null',
      'make >> build.log',
      'cmd &> /tmp/all',
      'echo a # note',
      'echo 50% done',
      'echo cost $ 5',
    ])
      expect(alternateReadings(line, line)).toEqual([]);
    expect(alternateReadings('# rm -rf /x', null)).toContain('rm -rf /x');
    expect(alternateReadings('[me@host dir]$ rm -rf /x', null)).toContain('rm -rf /x');
    expect(alternateReadings('host% rm -rf /x > /dev/null', null)).toEqual(['rm -rf /x > /dev/null']);
  });

  it('adds each screen row and the typed keys', () => {
    expect(alternateReadings('paste-1\nrm -rf /x', 'echo ok')).toEqual(
      expect.arrayContaining(['paste-1', 'rm -rf /x', 'echo ok']),
    );
    expect(alternateReadings('ls', 'ls')).toEqual([]);
  });
});

describe('shownOnScreen', () => {
  it('finds the characters in order, other text in between', () => {
    expect(shownOnScreen('rm -rf /x', 'λ rmOUT -rf /x')).toBe(true);
    expect(shownOnScreen('hunter2-pw', '**********')).toBe(false);
    expect(shownOnScreen('abc', 'xaxbxcx')).toBe(true);
    expect(shownOnScreen('abc', 'acb')).toBe(false);
    expect(shownOnScreen('é日', 'é 日本')).toBe(true);
    expect(shownOnScreen('', 'anything')).toBe(true);
  });
});

describe('TypedKeys', () => {
  const typed = (...chunks: (string | number[])[]): TypedKeys => {
    const k = new TypedKeys();
    for (const c of chunks) k.add(typeof c === 'string' ? Buffer.from(c, 'utf8') : Buffer.from(c));
    return k;
  };

  it('applies the editing a terminal does itself', () => {
    expect(typed('echo abc', [0x7f], 'd').text()).toBe('echo abd');
    expect(typed('rm -rf /x', [0x15], 'ls').text()).toBe('ls');
    expect(typed('echo one two  ', [0x17]).text()).toBe('echo one ');
    expect(typed('echo é', [0x08]).text()).toBe('echo ');
  });

  it('knows nothing once other control keys appear', () => {
    const k = typed('echo x', '\x1b[A');
    expect(k.plain).toBe(false);
    expect(k.text()).toBeNull();
    expect(typed('ls\t').text()).toBeNull();
    k.clear();
    expect(k.text()).toBe('');
  });
});
