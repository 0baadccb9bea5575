import { describe, expect, it } from '@jest/globals';
import type { ShellSimpleCommand } from '@agentgate/core';
import { checkAssigningExpansion, checkHookAssignment, type ShParamExp } from './assignments.js';
import { spanText, splitLong, type CommandCollector } from './command-collector.js';
import { expandFind } from './find-exec.js';
import { parseShell, walk, type ShAssign, type ShNode } from './mvdan-sh.js';
import { expandAlias, expandShell, expandSuLike, expandTrap } from './shell-code-arguments.js';
import { expandSubcommandWrapper, expandWrapper } from './wrapper-unwrapping.js';
import { wrapperSpec } from './wrappers.js';
import { SourceText, type ResolvedWord } from './words.js';

/**
 * The pieces the collector delegates to, each against a collector that records what it is told: `code@N` is text
 * analysed as shell code at depth N, `run` a wrapped command, `unknown` a program whose code cannot be seen.
 */
function recording(): { collector: CommandCollector; calls: string[] } {
  const calls: string[] = [];
  const collector: CommandCollector = {
    commands: [] as ShellSimpleCommand[],
    analyzeSource: (text, depth) => void calls.push(`code@${depth} ${text}`),
    analyzeApart: (text, depth) => {
      calls.push(`apart@${depth} ${text}`);
      return [
        { program: ':', argv: [':'], text: ':' },
        { program: 'id', argv: ['id'], text: 'id' },
      ];
    },
    emitWrapped: (inner) => void calls.push(`run ${inner.map((w) => w.value).join(' ')}`),
    pushUnknown: (words, from) =>
      void calls.push(
        `unknown ${words
          .slice(from)
          .map((w) => w.value)
          .join(' ')}`,
      ),
    sink: (words, text) => ({
      shell: (word) => void calls.push(`sink shell ${word.value}`),
      shellWords: (code) => void calls.push(`sink words ${code.map((w) => w.value).join(' ')}`),
      command: (inner) => void calls.push(`sink run ${inner.map((w) => w.value).join(' ')}`),
      program: (word) => void calls.push(`sink program ${word.value}`),
      unknown: () =>
        void calls.push(`sink unknown ${words.length > 0 ? words.map((w) => w.value).join(' ') : text}`),
    }),
  };
  return { collector, calls };
}

/** Space-separated words; `$x` is an unquoted (splitting) expansion, `"$x"` a quoted one. */
function words(line: string): { words: ResolvedWord[]; source: SourceText } {
  const result: ResolvedWord[] = [];
  let offset = 0;
  for (const part of line.split(' ')) {
    const quoted = part.startsWith('"$');
    const value = quoted ? part.slice(1, -1) : part;
    const dynamic = value.includes('$');
    result.push({ value, dynamic, splits: dynamic && !quoted, start: offset, end: offset + part.length });
    offset += part.length + 1;
  }
  return { words: result, source: new SourceText(line) };
}

function wrapped(line: string): string[] {
  const { collector, calls } = recording();
  const { words: argv, source } = words(line);
  expandWrapper(collector, wrapperSpec(argv[0]!.value)!, argv, source, 0);
  return calls;
}

describe('wrapper unwrapping', () => {
  it('skips options with values and finds the command', () => {
    expect(wrapped('sudo -u root rm x')).toEqual(['run rm x']);
    expect(wrapped('timeout -s KILL 5 rm x')).toEqual(['run rm x']);
    expect(wrapped('nice -5 rm x')).toEqual(['run rm x']);
  });

  it('runs no command for an option that only prints', () => {
    expect(wrapped('sudo -l')).toEqual([]);
  });

  it('analyses shell-code and split-string options one level deeper', () => {
    expect(wrapped('flock f -c id')).toEqual(['code@1 id']);
    expect(wrapped('env -S id')).toEqual(['code@1 id']);
  });

  it('treats every later operand as a possible command after an option it does not know', () => {
    expect(wrapped('bwrap --bind / / rm x')).toEqual(['run / / rm x', 'run / rm x', 'run rm x', 'run x']);
  });

  it('counts a splitting expansion among the options as unknown from there on', () => {
    expect(wrapped('sudo $opts rm x')).toEqual(['unknown $opts rm x']);
    expect(wrapped('sudo -u $user rm x')).toEqual(['unknown $user rm x']);
  });

  it('hands a command-variable assignment to the sink and an interactive shell counts as unknown', () => {
    expect(wrapped('env PAGER=id git log')).toEqual(['sink shell id', 'run git log']);
    expect(wrapped('sudo -s')).toEqual(['unknown sudo -s']);
  });

  it('finds a subcommand wrapper anywhere among the words', () => {
    const { collector, calls } = recording();
    const { words: argv, source } = words('npm --prefix dir exec rm y');
    expect(expandSubcommandWrapper(collector, 'npm', argv, source, 0)).toBe(true);
    expect(calls).toEqual(['run rm y']);
    expect(expandSubcommandWrapper(collector, 'ls', words('ls exec').words, source, 0)).toBe(false);
  });
});

describe('shell-code arguments', () => {
  const run = (expand: typeof expandShell, line: string): string[] => {
    const { collector, calls } = recording();
    const { words: argv, source } = words(line);
    expand(collector, argv, source, 2);
    return calls;
  };

  it('reads `sh -c STRING` and counts a script or stdin as unknown', () => {
    expect(run(expandShell, 'sh -ec id')).toEqual(['code@3 id']);
    expect(run(expandShell, 'bash -o pipefail -c id')).toEqual(['code@3 id']);
    expect(run(expandShell, 'sh script.sh')).toEqual(['unknown sh script.sh']);
  });

  it('reads `su -c` wherever it appears, and su without it as an interactive shell', () => {
    expect(run(expandSuLike, 'su root -c id')).toEqual(['code@3 id']);
    expect(run(expandSuLike, 'su --command=id')).toEqual(['code@3 id']);
    expect(run(expandSuLike, 'su -')).toEqual(['unknown su -']);
  });

  it('reads trap handlers and alias values', () => {
    expect(run(expandTrap, 'trap id EXIT')).toEqual(['code@3 id']);
    expect(run(expandTrap, 'trap -p')).toEqual([]);
    expect(run(expandAlias, 'alias ls=id')).toEqual(['code@3 id']);
    expect(run(expandAlias, 'alias $x')).toEqual(['unknown alias $x']);
  });
});

describe('find -exec', () => {
  const found = (line: string): string[] => {
    const { collector, calls } = recording();
    const { words: argv, source } = words(line);
    expandFind(collector, argv, source, 0);
    return calls;
  };

  it('runs each -exec family action up to its terminator', () => {
    expect(found('find . -exec rm {} ; -okdir id +')).toEqual(['run rm {}', 'run id']);
  });

  it('accepts a quoted predicate value and counts any other expansion as unknown', () => {
    expect(found('find . -name "$x" -exec id ;')).toEqual(['run id']);
    expect(found('find . $action')).toEqual(['unknown $action']);
  });
});

describe('assignments', () => {
  function nodeOf<T extends ShNode>(text: string, type: string): { node: T; source: SourceText } {
    let node: ShNode | undefined;
    walk(parseShell(text), (n) => {
      if (n.type === type && !node) node = n;
    });
    return { node: node as T, source: new SourceText(text) };
  }

  it('analyses PROMPT_COMMAND as code and a prompt string as a heredoc of its own', () => {
    const { collector, calls } = recording();
    const prompt = nodeOf<ShAssign>("PROMPT_COMMAND='id'", 'Assign');
    checkHookAssignment(collector, prompt.node, prompt.source, 0);
    const ps1 = nodeOf<ShAssign>("PS1='$(id) $ '", 'Assign');
    checkHookAssignment(collector, ps1.node, ps1.source, 0);
    expect(calls).toEqual([
      'code@1 id',
      'apart@1 : <<AGENTGATE_PROMPT_END\n$(id) $ \nAGENTGATE_PROMPT_END\n',
    ]);
    expect(collector.commands).toEqual([{ program: 'id', argv: ['id'], text: 'id' }]);
  });

  it('counts BASH_ENV as unknown and judges `${PAGER:=cmd}` like an assignment', () => {
    const { collector, calls } = recording();
    const env = nodeOf<ShAssign>('BASH_ENV=/tmp/x', 'Assign');
    checkHookAssignment(collector, env.node, env.source, 0);
    expect(collector.commands).toEqual([
      { program: null, argv: ['BASH_ENV=/tmp/x'], text: 'BASH_ENV=/tmp/x' },
    ]);
    const expansion = nodeOf<ShParamExp>('echo ${PAGER:=id}', 'ParamExp');
    checkAssigningExpansion(collector, expansion.node, expansion.source, 0);
    expect(calls).toEqual(['sink shell id']);
  });
});

describe('collector helpers', () => {
  it('split long options and slice the source under words', () => {
    expect(splitLong('--user=root')).toEqual(['--user', 'root']);
    expect(splitLong('--user')).toEqual(['--user', undefined]);
    const { words: argv, source } = words('sudo rm x');
    expect(spanText(argv.slice(1), source)).toBe('rm x');
    expect(spanText([], source)).toBe('');
  });
});
