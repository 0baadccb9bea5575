import { describe, expect, it } from '@jest/globals';
import { mayExpandHistory } from './history-expansion.js';

describe('mayExpandHistory', () => {
  it.each(['!!', '!-2', 'echo !$', 'ls !x', '^ls^rm', '  ^a^b^', 'echo "!!"', 'a;!ls'])(
    '%j may be rewritten from the history',
    (line) => expect(mayExpandHistory(line)).toBe(true),
  );
  it.each([
    'ls -l',
    '[ ! -f x ]',
    'if ! true; then :; fi',
    '[[ a != b ]]',
    'echo $! ${!name}',
    "echo '!!'",
    'echo \\!!',
    'echo "hi!"',
    'echo hi!',
    'shopt -s extglob; ls !(x)',
  ])('%j is left alone by bash', (line) => expect(mayExpandHistory(line)).toBe(false));
});
