import { describe, expect, it } from '@jest/globals';
import { analyzeArgv, analyzeShellCommand, initShellAnalyzer, MAX_COMMAND_BYTES } from './index.js';

function programs(text: string): (string | null)[] {
  const analysis = analyzeShellCommand(text);
  expect(analysis.error).toBeUndefined();
  return analysis.commands.map((command) => command.program);
}

function commandFor(text: string, program: string | null) {
  const found = analyzeShellCommand(text).commands.find((command) => command.program === program);
  expect(found).toBeDefined();
  return found!;
}

describe('analyzeShellCommand: structure', () => {
  it('finds commands in pipelines, lists, subshells and groups', () => {
    expect(programs('ls -l | grep x && rm a || echo no; touch b')).toEqual([
      'ls',
      'grep',
      'rm',
      'echo',
      'touch',
    ]);
    expect(programs('(rm a; rm b) && { cp c d; }')).toEqual(['rm', 'rm', 'cp']);
    expect(programs('! rm x & wait')).toEqual(['rm', 'wait']);
  });

  it('finds command substitutions anywhere: args, double quotes, assignments, redirections, heredocs', () => {
    expect(programs('echo "$(rm -rf /)"')).toEqual(['echo', 'rm']);
    expect(programs('echo `id`')).toEqual(['echo', 'id']);
    expect(programs('x=$(rm y) ls')).toEqual(['ls', 'rm']);
    expect(programs('x=$(rm y)')).toEqual(['rm']);
    expect(programs('cat > "$(mktemp)" < /etc/passwd')).toEqual(['cat', 'mktemp']);
    expect(programs('cat <<EOF\nhello $(whoami)\nEOF\n')).toEqual(['cat', 'whoami']);
    expect(programs('echo ${x:-$(rm y)} $((1 + $(wc -l < f)))')).toEqual(['echo', 'rm', 'wc']);
    expect(programs('export A=$(id) B')).toEqual(['export', 'id']);
  });

  it('finds process substitutions', () => {
    expect(programs('diff <(ls a) >(tee b)')).toEqual(['diff', 'ls', 'tee']);
  });

  it('finds commands in if/while/until/for/case bodies and functions', () => {
    expect(programs('if test -f a; then rm a; elif b; then c; else d; fi')).toEqual([
      'test',
      'rm',
      'b',
      'c',
      'd',
    ]);
    expect(programs('while read l; do rm "$l"; done < f')).toEqual(['read', 'rm']);
    expect(programs('until false; do sleep 1; done')).toEqual(['false', 'sleep']);
    expect(programs('for f in *.o; do rm $f; done; for ((i=0;i<3;i++)); do echo $i; done')).toEqual([
      'rm',
      'echo',
    ]);
    expect(programs('case $x in a) rm a;; *) echo b;; esac')).toEqual(['rm', 'echo']);
    expect(programs('cleanup() { rm -rf /tmp/x; }; cleanup')).toEqual(['rm', 'cleanup']);
    expect(programs('time rm x; coproc cat x; [[ -f x ]] && rm y')).toEqual(['rm', 'cat', 'rm']);
  });

  it('keeps the simple command text as written, including its redirections', () => {
    const command = commandFor('ls; \\rm -rf "/tmp/a b" 2>/dev/null; echo', 'rm');
    expect(command.text).toBe('\\rm -rf "/tmp/a b" 2>/dev/null');
    expect(command.argv).toEqual(['rm', '-rf', '/tmp/a b']);
  });
});

describe('analyzeShellCommand: quoting and program names', () => {
  it.each([
    ["r''m -rf /", 'rm'],
    ['\\rm x', 'rm'],
    ['"rm" x', 'rm'],
    ['\'r\'"m" x', 'rm'],
    ['/bin/rm -r x', 'rm'],
    ['./../usr/bin/rm x', 'rm'],
    ["$'r\\x6d' x", 'rm'],
    ["$'\\162m' x", 'rm'],
    ['r\\\nm x', 'rm'],
  ])('%j runs %s', (text, program) => {
    expect(programs(text)[0]).toBe(program);
  });

  it('resolves arguments as bash does', () => {
    expect(commandFor(`printf '%s' "a\\"b" 'c\\d' e\\ f "$'x'" $'t\\tu' "\\q"`, 'printf').argv).toEqual([
      'printf',
      '%s',
      'a"b',
      'c\\d',
      'e f',
      "$'x'",
      't\tu',
      '\\q',
    ]);
  });

  it.each([
    ['$X a'],
    ['${X} b'],
    ['"$X" b'],
    ['$(echo rm) -rf /'],
    ['`echo rm` -rf /'],
    ['/bin/r? x'],
    ['/bin/r[m] x'],
    ['{rm,-rf,/tmp/x}'],
    ['r$((0))m x'],
  ])('%j has an unknown program', (text) => {
    expect(programs(text)[0]).toBeNull();
  });

  it('treats `[` and `[[` as what they are', () => {
    expect(programs('[ -f x ] && rm x')).toEqual(['[', 'rm']);
  });

  it('handles non-ASCII text (byte offsets)', () => {
    const command = commandFor('echo "héllo wörld" ; rm ü', 'rm');
    expect(command.text).toBe('rm ü');
    expect(commandFor('echo "héllo wörld" ; rm ü', 'echo').argv).toEqual(['echo', 'héllo wörld']);
  });
});

describe('analyzeShellCommand: code that runs code', () => {
  it.each(['sh', 'bash', 'dash', 'zsh', '/bin/bash'])('%s -c is analysed recursively', (shell) => {
    expect(programs(`${shell} -c 'rm -rf / ; ls'`).slice(1)).toEqual(['rm', 'ls']);
  });

  it('handles combined and long shell options and nesting', () => {
    expect(programs('bash -euxc "rm a" name arg')).toEqual(['bash', 'rm']);
    expect(programs('bash --norc -o pipefail -c "rm a"')).toEqual(['bash', 'rm']);
    expect(programs(`sh -c "bash -c 'sudo rm -rf /'"`)).toEqual(['sh', 'bash', 'sudo', 'rm']);
    expect(commandFor(`sh -c "echo \\$(rm x)"`, 'rm').text).toBe('rm x');
  });

  it('treats a shell reading a script or stdin as an unknown program', () => {
    expect(programs('curl -s http://127.0.0.1/x | sh')).toEqual(['curl', 'sh', null]);
    expect(programs('sh < script')).toEqual(['sh', null]);
    expect(programs('bash script.sh')).toEqual(['bash', null]);
    expect(programs('bash -s arg < f')).toEqual(['bash', null]);
    expect(programs('sh -c "$CMD"')).toEqual(['sh', null]);
  });

  it('treats other interpreters reading stdin or given code inline as unknown, but not script files', () => {
    expect(programs('python -')).toEqual(['python', null]);
    expect(programs('curl x | python3')).toEqual(['curl', 'python3', null]);
    expect(programs('perl < x.pl')).toEqual(['perl', null]);
    expect(programs("python3 -c 'print(1)'")).toEqual(['python3', null]);
    expect(programs('python3 -m http.server')).toEqual(['python3']);
    expect(programs('node -e "1"; node app.js; ruby x.rb')).toEqual(['node', null, 'node', 'ruby']);
  });

  it('analyses static eval text and marks dynamic eval, source and . as unknown', () => {
    expect(programs('eval "rm -rf /"')).toEqual(['eval', 'rm']);
    expect(programs('eval rm "$x"')).toEqual(['eval', null]);
    expect(programs('source ./env.sh')).toEqual(['source', null]);
    expect(programs('. ./env.sh')).toEqual(['.', null]);
  });

  it('analyses trap handlers and alias values', () => {
    expect(programs("trap 'rm -rf /tmp/x' EXIT")).toEqual(['trap', 'rm']);
    expect(programs('trap - EXIT')).toEqual(['trap']);
    expect(programs("alias ls='rm -rf'")).toEqual(['alias', 'rm']);
  });

  it('analyses code hidden in PROMPT_COMMAND and prompt strings, and redefinitions of names', () => {
    expect(programs("PROMPT_COMMAND='rm -rf /tmp/x'")).toEqual(['rm']);
    expect(programs("export PS1='$(rm -rf /tmp/x) \\u@\\h$ '")).toEqual(['export', 'rm']);
    expect(programs("PS1='\\u@\\h:\\w\\$ '")).toEqual([]);
    expect(programs('BASH_ENV=/tmp/evil bash -c true')).toEqual(['bash', 'true', null]);
    expect(programs('PROMPT_COMMAND="$X"')).toEqual([null]);
    expect(programs("PROMPT_COMMAND=('rm x' ls)")).toEqual([null]);
    expect(programs('hash -p /bin/rm ls')).toEqual(['hash', null]);
    expect(programs('hash -r')).toEqual(['hash']);
  });

  it.each([
    `printf -v 'a[$(rm x)]' y`,
    `test -v 'a[$(rm x)]'`,
    `[[ -v 'a[$(rm x)]' ]]`,
    `let 'a[$(rm x)]=1'`,
    "x='a[`rm x`]'; echo $((x))",
    `declare -i n='a[$(rm x)]'`,
  ])('counts text bash may evaluate as an array subscript with a command in it as unknown: %s', (text) => {
    expect(programs(text)).toContain(null);
  });
  it('counts a value expanded as a prompt (${x@P}) as unknown, other transformations not', () => {
    expect(programs("x='$(rm y)'; echo ${x@P}")).toEqual(['echo', null]);
    expect(programs('echo ${x@Q}')).toEqual(['echo']);
  });
  it('keeps ordinary brackets and real substitutions as they are', () => {
    expect(programs(`echo "a[$(date)]" '[x]' 'a[1]'`)).toEqual(['echo', 'date']);
    expect(programs(`grep '[$(]' f`)).toEqual(['grep']);
  });
  it('analyses mapfile callbacks, compgen/complete -C commands and -W words; fc re-runs history', () => {
    expect(programs(`mapfile -t -C 'rm x' -c 1 a`)).toEqual(['mapfile', 'rm']);
    expect(programs(`readarray -C'rm x' a`)).toEqual(['readarray', 'rm']);
    expect(programs(`mapfile -t a`)).toEqual(['mapfile']);
    // -d takes the C as its delimiter: no callback, and the next word is not code.
    expect(programs(`mapfile -dC -c 'rm x' a`)).toEqual(['mapfile']);
    expect(programs(`compgen -C 'rm x' w`)).toEqual(['compgen', 'rm']);
    expect(programs(`complete -o default -C 'rm x' ls`)).toEqual(['complete', 'rm']);
    expect(programs(`compgen -W '$(rm x) b' w`)).toEqual(['compgen', 'rm']);
    expect(programs(`compgen -W 'a b' w`)).toEqual(['compgen']);
    expect(programs(`fc -s ls=rm`)).toEqual(['fc', null]);
    expect(programs(`fc -l`)).toEqual(['fc']);
  });
  it('analyses a function bash imports from the environment (BASH_FUNC_name%%)', () => {
    expect(programs(`env 'BASH_FUNC_ls%%=() { rm x; }' bash -c ls`)).toEqual(['env', 'rm', 'bash', 'ls']);
    expect(programs(`env 'BASH_FUNC_ls()=() { rm x; }' bash`)).toContain('rm');
    // env takes any NAME=VALUE as an assignment, after `--` too; before it a `-` word is an option.
    expect(programs(`env -- -x=1 rm y`)).toContain('rm');
    expect(programs(`env "--split-string=$x"`)).toContain(null);
  });
  it('refuses absurd nesting', () => {
    let text = 'rm x';
    for (let i = 0; i < 12; i++) text = `sh -c ${JSON.stringify(text).replace(/\$/g, '\\$')}`;
    expect(analyzeShellCommand(text).error).toMatch(/nested/);
  });
});

describe('analyzeShellCommand: wrappers', () => {
  it.each([
    ['sudo -u root -E rm -rf /', ['sudo', 'rm']],
    ['sudo -- rm x', ['sudo', 'rm']],
    ['sudo FOO=1 rm x', ['sudo', 'rm']],
    ['sudo -l rm', ['sudo']],
    ['sudo -s', ['sudo', null]],
    ['doas -u root rm x', ['doas', 'rm']],
    ['env -i A=1 B=2 rm x', ['env', 'rm']],
    ['env - PATH=/x -u HOME rm x', ['env', 'rm']],
    ["env -S 'rm -rf' /", ['env', 'rm']],
    ['xargs -0 -n1 -I{} rm {}', ['xargs', 'rm']],
    ['xargs -i{} rm {}', ['xargs', 'rm']],
    ['xargs', ['xargs']],
    ['nice -n 10 rm x', ['nice', 'rm']],
    ['nice -5 rm x', ['nice', 'rm']],
    ['nohup rm x &', ['nohup', 'rm']],
    ['timeout -s KILL 5 rm x', ['timeout', 'rm']],
    ['timeout --kill-after=1 5s rm x', ['timeout', 'rm']],
    ['/usr/bin/time -f %e rm x', ['time', 'rm']],
    ['exec -a name rm x', ['exec', 'rm']],
    ['exec >/tmp/log', ['exec']],
    ['command rm x', ['command', 'rm']],
    ['command -v rm', ['command']],
    ['builtin cd /', ['builtin', 'cd']],
    ['stdbuf -oL -e 0 rm x', ['stdbuf', 'rm']],
    ['chroot --userspec=a:b /mnt rm x', ['chroot', 'rm']],
    ['chroot /mnt', ['chroot', null]],
    ['ionice -c 3 rm x', ['ionice', 'rm']],
    ['ionice -p 42', ['ionice']],
    ['setsid -f rm x', ['setsid', 'rm']],
    ['taskset 0x3 rm x', ['taskset', 'rm']],
    ["flock /tmp/l -c 'rm x'", ['flock', 'rm']],
    ['flock -w 5 /tmp/l rm x', ['flock', 'rm']],
    ["su - root -c 'rm -rf /'", ['su', 'rm']],
    ['su root', ['su', null]],
    ['runuser -u app -- rm x', ['runuser', 'rm']],
    ["watch -n1 'ls | wc -l'", ['watch', 'ls', 'wc']],
    ['watch -x rm x', ['watch', 'rm']],
    ['busybox rm x', ['busybox', 'rm']],
    ['strace -f -o /tmp/t rm x', ['strace', 'rm']],
    ['sudo nice -n 5 timeout 10 xargs rm', ['sudo', 'nice', 'timeout', 'xargs', 'rm']],
    ['sudo "$X" rm', ['sudo', null]],
    ['sudo -u "$USER" rm x', ['sudo', 'rm']],
    ['env $VARS rm x', ['env', null]],
    ['env A="$x" rm x', ['env', 'rm']],
    ['env A=$x rm x', ['env', null]],
  ])('%j', (text, expected) => {
    expect(programs(text)).toEqual(expected);
  });

  it('gives the wrapped command its own text', () => {
    expect(commandFor('sudo -u root rm -rf / >/dev/null', 'rm').text).toBe('rm -rf /');
  });

  it('finds find -exec/-execdir/-ok commands', () => {
    const analysis = analyzeShellCommand(
      "find . -name '*.o' -exec rm -f {} \\; -execdir sh -c 'cat {}' ';' -ok mv {} x +",
    );
    expect(analysis.commands.map((c) => c.program)).toEqual(['find', 'rm', 'sh', 'cat', 'mv']);
    expect(analysis.commands[1]!.argv).toEqual(['rm', '-f', '{}']);
    expect(programs('find . -name "$pattern" -delete')).toEqual(['find']);
    expect(programs('find . $ACTIONS')).toEqual(['find', null]);
  });
});

describe('analyzeShellCommand: errors', () => {
  it.each(["echo 'unterminated", 'if true; then', 'a && ', 'echo ${x', '(ls'])('%j is an error', (text) => {
    const analysis = analyzeShellCommand(text);
    expect(analysis.error).toMatch(/^cannot parse shell command: \d+:\d+: /);
    expect(analysis.commands).toEqual([]);
  });

  it('marks text that ended too early as incomplete (a shell would prompt for more)', () => {
    for (const text of ['if true; then', "echo 'x", 'ls |', 'a && ', 'echo ${x']) {
      expect(analyzeShellCommand(text)).toMatchObject({ commands: [], incomplete: true });
    }
    expect(analyzeShellCommand('echo )').incomplete).toBeUndefined();
    expect(analyzeShellCommand(`sh -c "echo 'x"`).incomplete).toBeUndefined();
    expect(analyzeShellCommand(`sh -c "echo 'x"`).error).toMatch(/cannot parse/);
  });

  it('accepts empty input and comments', () => {
    expect(analyzeShellCommand('').commands).toEqual([]);
    expect(programs('  # just a comment\n')).toEqual([]);
  });

  it('refuses pathological wrapper chains and command counts instead of slowing down', () => {
    expect(analyzeShellCommand('sudo '.repeat(40) + 'rm x').error).toMatch(/wrappers/);
    expect(analyzeShellCommand('a;'.repeat(10_001)).error).toMatch(/simple commands/);
    expect(programs('sudo '.repeat(20) + 'rm x').at(-1)).toBe('rm');
  });

  it('refuses oversized input', () => {
    expect(analyzeShellCommand('x'.repeat(MAX_COMMAND_BYTES + 1)).error).toMatch(/longer/);
  });
});

describe('analyzeArgv', () => {
  it('uses argv as given (no shell expansion) and unwraps', () => {
    const analysis = analyzeArgv(['sudo', '-u', 'x', 'sh', '-c', 'rm -rf "/a b"; $(id)']);
    expect(analysis.error).toBeUndefined();
    expect(analysis.commands.map((c) => c.program)).toEqual(['sudo', 'sh', 'rm', null, 'id']);
    expect(analysis.commands[2]).toEqual({
      program: 'rm',
      argv: ['rm', '-rf', '/a b'],
      text: 'rm -rf "/a b"',
    });
    expect(analysis.commands[1]!.text).toBe(`sh -c 'rm -rf "/a b"; $(id)'`);
  });

  it('does not glob or expand argv words', () => {
    expect(analyzeArgv(['/bin/r?', '$X']).commands).toEqual([
      { program: 'r?', argv: ['/bin/r?', '$X'], text: "'/bin/r?' '$X'" },
    ]);
    expect(analyzeArgv([]).commands).toEqual([]);
  });

  it('is ready after initShellAnalyzer', async () => {
    await initShellAnalyzer();
    expect(analyzeShellCommand('sudo rm -rf x').commands.map((c) => c.program)).toEqual(['sudo', 'rm']);
  });
});
