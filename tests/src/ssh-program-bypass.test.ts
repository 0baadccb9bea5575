/**
 * Programs that run other programs or inline code, against a real OpenSSH sshd with `programs: [rm]` denied: each
 * form first removes a file when run straight against sshd (so it is a real way to run rm), then is refused
 * through agentgate with the file left in place. Everyday uses of the same programs still run.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RuleConfig } from '@agentgate/core';
import {
  makeKeyPair,
  run,
  sshClientOptions,
  startSshd,
  startStandaloneSshGateway,
  type StandaloneSshGateway,
  type TestSshd,
} from './harness/sshd.js';

const rules: RuleConfig[] = [{ name: 'no-rm', protocol: 'ssh', match: { programs: ['rm'] }, action: 'deny' }];

let sshd: TestSshd;
let gw: StandaloneSshGateway;
let keys: string;
let agentKey: { path: string; publicKey: string };
let work: string;

function viaGateway(command: string, input?: string) {
  return run(
    'ssh',
    [...sshClientOptions(gw.port, agentKey.path), 'agent@127.0.0.1', command],
    input === undefined ? {} : { input },
  );
}

function direct(command: string, input?: string) {
  return run(
    'ssh',
    [...sshClientOptions(sshd.port, sshd.upstreamKeyPath), `${sshd.user}@127.0.0.1`, command],
    input === undefined ? {} : { input },
  );
}

beforeAll(async () => {
  sshd = await startSshd();
  keys = mkdtempSync(join(tmpdir(), 'agentgate-bypass-keys-'));
  agentKey = makeKeyPair(keys, 'agent');
  gw = await startStandaloneSshGateway({
    sshd,
    rules,
    identities: { keys: [{ name: 'devin', publicKey: agentKey.publicKey, groups: ['agents'] }], tokens: [] },
  });
  work = mkdtempSync(join(tmpdir(), 'agentgate-bypass-'));
  writeFileSync(join(work, 'readme'), 'root:x:0:0:root:/root:/bin/bash\n');
});

afterAll(async () => {
  await gw?.stop();
  await sshd?.stop();
  if (keys) rmSync(keys, { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

/** [name, command with VICTIM for the file to remove, stdin or null]. */
const forms: [string, string, string | null][] = [
  ['python3 -c', `python3 -c 'import os; os.remove("VICTIM")'`, null],
  ['perl -e', `perl -e 'unlink "VICTIM"'`, null],
  ['perl -M', `perl -MPOSIX -e 'unlink "VICTIM"'`, null],
  ['perl nested in sh -c', `sh -c "perl -e 'unlink q(VICTIM)'"`, null],
  ['PERL5DB', `env PERL5OPT=-d PERL5DB='unlink q(VICTIM)' perl /dev/null`, null],
  ['node -e', `node -e 'require("fs").rmSync("VICTIM")'`, null],
  ['awk system()', `awk 'BEGIN { system("rm VICTIM") }'`, null],
  ['awk output pipe', `awk 'BEGIN { printf "" | "rm VICTIM" }'`, null],
  ['awk running its input', `awk '{ system($0) }'`, 'rm VICTIM\n'],
  ['sed e command', `sed -n '1e rm VICTIM' WORK/readme`, null],
  ['sed s///e', `sed 's/^/rm /e'`, 'VICTIM\n'],
  ['git alias', `git -c alias.x='!rm VICTIM' x`, null],
  // git appends the host and the remote command: `#` keeps them away from rm.
  ['git core.sshCommand', `git -c core.sshCommand='rm VICTIM #' ls-remote ssh://h/r`, null],
  [
    'tar checkpoint action',
    `tar -cf /dev/null WORK/readme --checkpoint=1 --checkpoint-action=exec='rm VICTIM'`,
    null,
  ],
  ['tar compress program', `tar -cf WORK/x.tar --use-compress-program='rm VICTIM' WORK/readme`, null],
  ['zip -TT', `zip WORK/z.zip WORK/readme -T -TT 'rm VICTIM #'`, null],
  ['ssh ProxyCommand', `ssh -F /dev/null -o ProxyCommand='rm VICTIM' -o BatchMode=yes nowhere true`, null],
  ['sqlite3 .shell', `sqlite3 :memory: '.shell rm VICTIM'`, null],
  ['sqlite3 -cmd .system', `sqlite3 -cmd '.system rm VICTIM' :memory: 'select 1'`, null],
  ['socat EXEC address', `socat -u /dev/null EXEC:'rm VICTIM'`, null],
  ['script -c', `script -qc 'rm VICTIM' /dev/null`, null],
  ['ed shell escape on stdin', `ed`, '!rm VICTIM\nq\n'],
  ['vim ex mode', `vim -es -c '!rm VICTIM' -c 'qa!'`, null],
  // less puts the file name at %s: `#` keeps it away from rm.
  ['LESSOPEN', `LESSOPEN='rm VICTIM # %s' less WORK/readme`, null],
  // refused before too: they must stay refused
  ['tclsh on stdin', `tclsh`, 'file delete VICTIM\n'],
  ['find -exec', `find VICTIM -exec rm {} ';'`, null],
  ['xargs', `xargs rm`, 'VICTIM\n'],
  ['env -S', `env -S 'rm VICTIM'`, null],
  ['busybox rm', `busybox rm VICTIM`, null],
  ['flock -c', `flock WORK/lock -c 'rm VICTIM'`, null],
  // bash evaluates an array subscript in arithmetic, command substitutions included, wherever the text ends up
  ['printf -v subscript', `printf -v 'a[$(rm VICTIM)]' x`, null],
  ['test -v subscript', `test -v 'a[$(rm VICTIM)]'`, null],
  ['let subscript', `let 'a[$(rm VICTIM)]=1'`, null],
  ['a value used in arithmetic', `x='a[$(rm VICTIM)]'; echo $((x))`, null],
  ['a value compared with -eq', `x='a[$(rm VICTIM)]'; [[ $x -eq 1 ]]`, null],
  ['a value expanded as a prompt', `x='$(rm VICTIM)'; echo \${x@P}`, null],
  ['mapfile -C callback', `mapfile -C 'rm VICTIM #' -c 1 a <<< x`, null],
  ['compgen -C', `compgen -C 'rm VICTIM #' x`, null],
  ['compgen -W', `compgen -W '$(rm VICTIM)' x`, null],
  // `history -s` replaces the line it is on, hence twice
  [
    'fc -s re-running the history',
    `set -o history; history -s 'rm VICTIM'; history -s 'rm VICTIM'; fc -s`,
    null,
  ],
  ['a function imported from the environment', `env 'BASH_FUNC_ls%%=() { rm VICTIM; }' bash -c ls`, null],
];

describe('programs that run rm for you are refused when rm is denied', () => {
  it.each(forms)('%s', async (name, template, input) => {
    const fill = (victim: string) => template.replaceAll('VICTIM', victim).replaceAll('WORK', work);
    const slug = name.replace(/\W+/g, '-');
    // Straight against sshd the form removes the file: it is a real way to run rm.
    const control = join(work, `control-${slug}`);
    writeFileSync(control, 'x');
    await direct(fill(control), input?.replaceAll('VICTIM', control) ?? undefined);
    expect(existsSync(control)).toBe(false);
    // Through agentgate it is refused and the file stays.
    const victim = join(work, `victim-${slug}`);
    writeFileSync(victim, 'keep me');
    const r = await viaGateway(fill(victim), input?.replaceAll('VICTIM', victim) ?? undefined);
    expect(r.stderr).toContain('agentgate: denied by rule no-rm');
    expect(r.code).toBe(126);
    expect(readFileSync(victim, 'utf8')).toBe('keep me');
  });
});

describe('history expansion in a shell reading a script', () => {
  it('refuses a line bash would rewrite from its history (^ls^rm)', async () => {
    const script = (victim: string) => `set -o history -H\nls ${victim}\n^ls^rm\n`;
    const control = join(work, 'control-history');
    writeFileSync(control, 'x');
    await run('ssh', [...sshClientOptions(sshd.port, sshd.upstreamKeyPath), '-T', `${sshd.user}@127.0.0.1`], {
      input: script(control),
    });
    expect(existsSync(control)).toBe(false);
    const victim = join(work, 'victim-history');
    writeFileSync(victim, 'keep me');
    const r = await run('ssh', [...sshClientOptions(gw.port, agentKey.path), '-T', 'agent@127.0.0.1'], {
      input: script(victim),
    });
    expect(r.stderr).toContain('agentgate: denied by rule no-rm');
    expect(readFileSync(victim, 'utf8')).toBe('keep me');
  });
});

describe('everyday uses of the same programs still run', () => {
  it.each([
    [`awk -F: '$1 == "root" { print $7 }' WORK/readme`, '/bin/bash\n'],
    [`sed -n 's/^root:.*:\\([^:]*\\)$/\\1/p' WORK/readme`, '/bin/bash\n'],
    [`python3 WORK/hello.py`, 'hello\n'],
    [`perl WORK/hello.pl`, 'hello\n'],
    [`git --version | cut -d' ' -f1`, 'git\n'],
    [`tar -cf WORK/ok.tar -C WORK hello.py && tar -tf WORK/ok.tar`, 'hello.py\n'],
    [`sqlite3 :memory: 'select 40 + 2'`, '42\n'],
  ])('%s', async (template, expected) => {
    writeFileSync(join(work, 'hello.py'), 'print("hello")\n');
    writeFileSync(join(work, 'hello.pl'), 'print "hello\\n";\n');
    const r = await viaGateway(template.replaceAll('WORK', work));
    expect(r.stderr).toBe('');
    expect(r.stdout.toString()).toBe(expected);
    expect(r.code).toBe(0);
  });
});
