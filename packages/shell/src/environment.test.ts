import { describe, expect, it } from '@jest/globals';
import { analyzeEnvironment, analyzeShellCommand } from './index.js';

function envPrograms(entries: readonly string[]): (string | null)[] {
  const analysis = analyzeEnvironment(entries);
  expect(analysis.error).toBeUndefined();
  return analysis.commands.map((command) => command.program);
}

function programs(text: string): (string | null)[] {
  const analysis = analyzeShellCommand(text);
  expect(analysis.error).toBeUndefined();
  return analysis.commands.map((command) => command.program);
}

describe('analyzeEnvironment: a program started with these variables', () => {
  it('analyses a function bash imports (BASH_FUNC_name%% or BASH_FUNC_name())', () => {
    expect(envPrograms(['PATH=/bin', 'BASH_FUNC_ls%%=() { rm -rf /x; }'])).toEqual(['rm']);
    expect(envPrograms(['BASH_FUNC_ls()=() { rm x; }'])).toEqual(['rm']);
    expect(envPrograms(['BASH_FUNC_ls%%=() { echo hi; }'])).toEqual(['echo']);
  });

  it('analyses the code bash runs from PROMPT_COMMAND and from a prompt’s substitutions', () => {
    expect(envPrograms(['PROMPT_COMMAND=rm -rf /x'])).toEqual(['rm']);
    expect(envPrograms(['PS4=$(rm y) ', 'SHELLOPTS=xtrace'])).toEqual(['rm']);
    expect(envPrograms(['PS1=`rm z`$ '])).toEqual(['rm']);
    expect(envPrograms(['PS1=\\u@\\h$ '])).toEqual([]);
  });

  it('counts a file or library the shell or loader runs as an unknown program', () => {
    for (const entry of [
      'BASH_ENV=/tmp/x',
      'ENV=/tmp/x',
      'LD_PRELOAD=/x.so',
      'LD_AUDIT=/x.so',
      'LD_LIBRARY_PATH=/x',
      'BASHOPTS=checkwinsize:extdebug',
    ]) {
      const analysis = analyzeEnvironment([entry]);
      expect([entry, analysis.commands]).toEqual([entry, [{ program: null, argv: [entry], text: entry }]]);
    }
  });

  it('runs nothing from ordinary variables, empty hooks or entries that are no variable', () => {
    expect(
      envPrograms([
        'PATH=/usr/bin:/bin',
        'HOME=/root',
        'BASH_ENV=',
        'PS4=',
        'SHELLOPTS=xtrace',
        'BASHOPTS=checkwinsize',
        'IFS=/',
        'NOEQUALS',
        '=x',
      ]),
    ).toEqual([]);
  });

  it('analyses what programs run from their variables (PAGER, SHELL) as env NAME=value does', () => {
    expect(envPrograms(['PAGER=rm -rf /x'])).toEqual(['rm']);
    expect(envPrograms(['SHELL=/bin/bash'])).toEqual(['bash']);
  });

  it('reports code it cannot parse as an error', () => {
    expect(analyzeEnvironment(['PROMPT_COMMAND=(']).error).toMatch(/cannot parse/);
  });
});

describe('env NAME=value: the variables bash reads itself', () => {
  it('judges BASH_ENV, ENV and the prompts given to env like assignments', () => {
    expect(programs(`env BASH_ENV=/tmp/x bash -c ls`)).toEqual(['env', null, 'bash', 'ls']);
    expect(programs(`env PS4='$(rm y)' bash -xc ls`)).toEqual(['env', 'rm', 'bash', 'ls']);
    expect(programs(`env PROMPT_COMMAND='rm x' bash -c ls`)).toEqual(['env', 'rm', 'bash', 'ls']);
    expect(programs(`env BASH_ENV= bash -c ls`)).toEqual(['env', 'bash', 'ls']);
    expect(programs(`env "BASH_ENV=$f" bash -c ls`)).toEqual(['env', null, 'bash', 'ls']);
  });

  it('counts BASHOPTS with extdebug as unknown: bash then sources the debugger start file', () => {
    expect(programs(`env BASHOPTS=extdebug bash -c ls`)).toEqual(['env', null, 'bash', 'ls']);
    expect(programs(`BASHOPTS=extdebug bash -c ls`)).toContain(null);
    expect(programs(`BASHOPTS=checkwinsize bash -c ls`)).toEqual(['bash', 'ls']);
  });
});
