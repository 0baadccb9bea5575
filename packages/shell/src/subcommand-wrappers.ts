import { NPX, RUNNER, type WrapperSpec } from './wrapper-spec.js';

/**
 * Subcommands that run the command after them (`npm exec rm x`, `perf stat rm x`, `ip netns exec NS rm x`).
 * A subcommand is found wherever it appears among the program's words (not only first), so that global options
 * with values before it cannot hide it.
 */
export const SUBCOMMAND_WRAPPERS: ReadonlyMap<string, readonly (readonly [string, WrapperSpec])[]> = new Map<
  string,
  readonly (readonly [string, WrapperSpec])[]
>([
  [
    'npm',
    [
      ['exec', NPX],
      ['x', NPX],
    ],
  ],
  [
    'pnpm',
    [
      ['exec', RUNNER],
      ['dlx', RUNNER],
    ],
  ],
  [
    'yarn',
    [
      ['exec', RUNNER],
      ['dlx', RUNNER],
    ],
  ],
  ['bun', [['x', RUNNER]]],
  [
    'uv',
    [
      ['run', RUNNER],
      ['tool run', RUNNER],
    ],
  ],
  ['pipx', [['run', RUNNER]]],
  ['poetry', [['run', RUNNER]]],
  ['pdm', [['run', RUNNER]]],
  ['hatch', [['run', RUNNER]]],
  ['conda', [['run', RUNNER]]],
  ['mamba', [['run', RUNNER]]],
  ['micromamba', [['run', RUNNER]]],
  ['bundle', [['exec', RUNNER]]],
  ['cabal', [['exec', RUNNER]]],
  ['stack', [['exec', RUNNER]]],
  ['rbenv', [['exec', RUNNER]]],
  ['pyenv', [['exec', RUNNER]]],
  ['nodenv', [['exec', RUNNER]]],
  ['asdf', [['exec', RUNNER]]],
  [
    'mise',
    [
      ['exec', RUNNER],
      ['x', RUNNER],
    ],
  ],
  ['direnv', [['exec', { operandsBefore: 1 }]]],
  ['rustup', [['run', { operandsBefore: 1 }]]],
  ['xdotool', [['exec', { flagLongs: ['--sync'] }]]],
  ['nix', [['develop', { shellStringLongs: ['--command'], shellStringLetters: 'c' }]]],
  [
    'ip',
    [
      ['netns exec', { optionalOperandBefore: true }],
      ['vrf exec', { operandsBefore: 1 }],
    ],
  ],
  [
    'perf',
    [
      ['stat', RUNNER],
      ['record', RUNNER],
      ['trace', RUNNER],
      ['sched record', RUNNER],
      ['lock record', RUNNER],
      ['mem record', RUNNER],
      ['c2c record', RUNNER],
      ['kmem record', RUNNER],
      ['kvm record', RUNNER],
      ['ftrace', RUNNER],
    ],
  ],
  ['git', [['bisect run', RUNNER]]],
]);
