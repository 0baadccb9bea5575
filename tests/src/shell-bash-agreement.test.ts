/**
 * The shell analyzer must read words exactly as a real shell does, or a rule on `rm` could be walked around with
 * quoting. Each line is given to real bash/dash as `set -- LINE` (expansion and quote removal without running
 * anything) and the resulting argv compared with ours; then each line is run for real under a PATH of recording
 * stubs to prove the programs we report are the ones the shell runs.
 */
import { describe, expect, it, beforeAll, afterAll } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeShellCommand } from '@agentgate/shell';

const QUOTED_LINES = [
  `r''m -rf /tmp/x`,
  `\\rm "a b" 'c d' e\\ f`,
  `"r"'m' "\\$HOME" '\\$HOME' "a\\\\b" "\\q"`,
  `$'r\\x6d' $'a\\tb' $'\\101\\u00e9' $'it\\'s'`,
  `echo "x"y'z' "" '' "ü ß"`,
  `printf '%s\\n' a\\\nb "tab\there"`,
  `ls -- -x "--" '{a,b}' "*" '[ab]' \\* \\?`,
];

function shellArgv(shell: string, line: string): string[] {
  const out = execFileSync(shell, ['-c', `set -- ${line}\nprintf '%s\\0' "$@"`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

describe('shell analyzer agrees with real shells on quoting', () => {
  it.each(QUOTED_LINES)('%j', (line) => {
    const analysis = analyzeShellCommand(line);
    expect(analysis.error).toBeUndefined();
    expect(analysis.commands[0]!.argv).toEqual(shellArgv('bash', line));
  });

  it('dash agrees on POSIX quoting', () => {
    for (const line of QUOTED_LINES.filter((l) => !l.includes("$'"))) {
      expect(analyzeShellCommand(line).commands[0]!.argv).toEqual(shellArgv('dash', line));
    }
  });
});

describe('the programs reported are the programs bash runs', () => {
  let dir: string;
  let log: string;
  const STUBS = ['rm', 'ls', 'cat', 'id', 'grep', 'touch', 'whoami', 'echo'];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'agentgate-shell-'));
    log = join(dir, 'ran.log');
    for (const name of STUBS) {
      // Each stub records its name and does nothing else; bash builtins are disabled below so stubs are used.
      writeFileSync(join(dir, name), `#!/bin/sh\necho ${name} >> "${log}"\nprintf "%s\\n" "$*"\n`);
      chmodSync(join(dir, name), 0o755);
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    `r''m -rf /nonexistent`,
    `ls | grep x && cat y; echo "$(id)"`,
    `x=$(whoami) touch z`,
    `sh -c 'rm a; ls' && bash -c "cat \\$(id)"`,
    `env -i PATH="$PATH" nice -n 1 timeout 5 rm q`,
    `for f in a b; do cat "$f"; done; if ls; then rm z; fi`,
    `find /dev/null -maxdepth 0 -exec cat {} \\; -exec rm {} +`,
    `echo a | xargs -I{} rm {}`,
  ])('%j', (line) => {
    if (existsSync(log)) rmSync(log);
    const script = `enable -n echo\nexport PATH=${dir}:$PATH\n${line}\n`;
    execFileSync('bash', ['-c', script], { env: { PATH: `${dir}:/usr/bin:/bin` }, stdio: 'ignore' });
    const ran = [...new Set(readFileSync(log, 'utf8').trim().split('\n'))].sort();
    const reported = analyzeShellCommand(line)
      .commands.map((c) => c.program)
      .filter((p): p is string => p !== null && STUBS.includes(p));
    expect([...new Set(reported)].sort()).toEqual(ran);
  });
});
