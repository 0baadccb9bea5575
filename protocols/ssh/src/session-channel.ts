import { StringDecoder } from 'node:string_decoder';
import type { ClientChannel, ExecOptions, ServerChannel, Session, ShellOptions } from 'ssh2';
import { clientMessage } from '@agentgate/core';
import type { ApprovalWait, SshCommand, Verdict } from '@agentgate/core';
import type { SessionChannelState, SessionRequest, SessionSetup } from './channel-state.js';
import { bothSettled, upstreamDrained } from './channel-waits.js';
import {
  channelCommand,
  detectScp,
  fileCommand,
  shellCommand,
  shellLineCommand,
  subsystemCommand,
} from './command-facts.js';
import type { ConnectionContext } from './connection-context.js';
import { envAllowed } from './env-allow.js';
import { InteractiveLineFilter } from './interactive-line-filter.js';
import { ScpInspector } from './scp-inspector.js';
import { bridgeX11 } from './x11-bridge.js';
import { SftpSession } from './sftp-relay.js';
import type { FileTransferRecord } from './sftp-inspector.js';
import { ended, relayData, writesFlushed } from '@agentgate/core';
import type { UpstreamLease } from './upstream-pool.js';
import { batchWritesOnResume } from './write-batching.js';

/** A denied exec ends with this status (docs/clients.md, "SSH in detail") (POSIX "command found but not executable"). */
export const DENIED_EXIT_STATUS = 126;
/** The gateway could not run the command upstream (OpenSSH's own status for connection errors). */
export const UPSTREAM_FAILED_EXIT_STATUS = 255;
/** The transcript store could not record the command, so it did not run (sysexits EX_TEMPFAIL: try again later). */
export const RECORDING_FAILED_EXIT_STATUS = 75;

/** Wraps an ssh2 event handler: an exception thrown inside one would kill the whole connection. */
function guarded<A extends unknown[]>(
  ctx: ConnectionContext,
  what: string,
  fn: (...args: A) => void,
): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args);
    } catch (err) {
      ctx.log.error(`ssh ${what} handler failed`, { err });
    }
  };
}

/** One client session channel (RFC 4254 §6) bridged to one upstream session channel. */
export class SessionChannel {
  private state: SessionChannelState = { kind: 'setup' };
  private readonly setup: SessionSetup = { pty: undefined, env: {}, x11: undefined, agentForward: false };
  private filter: InteractiveLineFilter | undefined;
  /** Aborts when the client closes this channel: a decision or approval still pending is withdrawn. */
  private readonly closed = new AbortController();
  /** The accepted client channel, once an exec, shell or subsystem started. */
  private channel: ServerChannel | undefined;

  constructor(
    private readonly ctx: ConnectionContext,
    session: Session,
    private readonly id: string,
  ) {
    ctx.record('notice', { event: 'channel.open', channel: id, type: 'session' });
    session.on(
      'pty',
      guarded(ctx, 'pty-req', (accept, _reject, info) => {
        this.setup.pty = info;
        ctx.record('notice', {
          event: 'channel.request',
          channel: id,
          request: 'pty-req',
          term: info.term,
          cols: info.cols,
          rows: info.rows,
        });
        accept?.();
      }),
    );
    session.on(
      'window-change',
      guarded(ctx, 'window-change', (accept, _reject, info) => {
        if (this.setup.pty !== undefined)
          this.setup.pty = {
            ...this.setup.pty,
            cols: info.cols,
            rows: info.rows,
            width: info.width,
            height: info.height,
          };
        if (this.state.kind === 'relaying')
          this.state.upstream.setWindow(info.rows, info.cols, info.height, info.width);
        this.filter?.resize(info.cols, info.rows);
        ctx.record('notice', {
          event: 'channel.request',
          channel: id,
          request: 'window-change',
          cols: info.cols,
          rows: info.rows,
        });
        accept?.();
      }),
    );
    session.on(
      'env',
      guarded(ctx, 'env', (accept, reject, info) => {
        const allowed = envAllowed(info.key, ctx.listener.envAllow);
        ctx.record('notice', {
          event: 'channel.request',
          channel: id,
          request: 'env',
          name: info.key,
          accepted: allowed,
        });
        if (allowed) {
          this.setup.env[info.key] = info.val;
          accept?.();
        } else {
          reject?.();
        }
      }),
    );
    // x11-req and auth-agent-req are answered at once (replies must keep request order, and exec may follow
    // immediately) and decided by the gate when the exec/shell starts: denied ones are never set up upstream.
    session.on(
      'x11',
      guarded(ctx, 'x11-req', (accept, _reject, info) => {
        this.setup.x11 = {
          single: info.single,
          protocol: info.protocol,
          cookie: info.cookie,
          screen: info.screen,
        };
        ctx.record('notice', { event: 'channel.request', channel: id, request: 'x11-req' });
        accept?.();
      }),
    );
    session.on(
      'auth-agent',
      guarded(ctx, 'auth-agent-req', (accept) => {
        this.setup.agentForward = true;
        ctx.record('notice', { event: 'channel.request', channel: id, request: 'auth-agent-req' });
        accept?.();
      }),
    );
    session.on(
      'signal',
      guarded(ctx, 'signal', (accept, _reject, info) => {
        ctx.record('notice', { event: 'channel.request', channel: id, request: 'signal', name: info.name });
        if (this.state.kind === 'relaying') this.state.upstream.signal(info.name);
        accept?.();
      }),
    );
    // exec/shell/subsystem are accepted synchronously: ssh2 drops channel data that arrives before accept(), and
    // OpenSSH sends stdin right after its request. The accepted channel stays paused (no window adjust, so the
    // client is flow-controlled) and nothing is written to it until the decision.
    session.on(
      'exec',
      guarded(ctx, 'exec', (accept, reject, info) => this.start('exec', info.command, accept, reject)),
    );
    session.on(
      'shell',
      guarded(ctx, 'shell', (accept, reject) => this.start('shell', '', accept, reject)),
    );
    session.on(
      'subsystem',
      guarded(ctx, 'subsystem', (accept, reject, info) => this.start('subsystem', info.name, accept, reject)),
    );
    session.on(
      'close',
      guarded(ctx, 'session close', () => this.closeUpstream()),
    );
  }

  private decide(command: SshCommand): Promise<Verdict> {
    return this.ctx.decide(command, this.closed.signal, { onWaiting: (wait) => this.tellWaiting(wait) });
  }

  /** A command held for approval: the client reads why nothing happens, on stderr, when held and every 30 s. */
  private tellWaiting(wait: ApprovalWait): void {
    const channel = this.channel;
    if (channel === undefined || this.state.kind === 'closed' || this.state.kind === 'refused') return;
    // On a terminal the cursor sits after the typed line: the notice gets lines of its own.
    const line = Buffer.from(
      this.setup.pty !== undefined ? `\r\n${wait.message}\r\n` : `${wait.message}\n`,
      'utf8',
    );
    this.ctx.recorder.io('err', line, this.id); // the record holds what the client saw
    channel.stderr.write(line);
  }

  private start(
    request: SessionRequest,
    text: string,
    accept: () => ServerChannel | undefined,
    reject: (() => void) | undefined,
  ): void {
    if (this.state.kind !== 'setup') {
      reject?.();
      return;
    }
    const channel = accept();
    if (channel === undefined) return;
    channel.pause();
    this.channel = channel;
    this.state = { kind: 'deciding', request, text };
    this.ctx.record('notice', {
      event: 'channel.request',
      channel: this.id,
      request,
      ...(text !== '' ? { text } : {}),
      pty: this.setup.pty !== undefined,
    });
    channel.on(
      'close',
      guarded(this.ctx, 'channel close', () => this.closeUpstream()),
    );
    channel.on('error', (err: Error) => this.ctx.log.warn('client channel error', { err, channel: this.id }));
    this.run(request, text, channel).catch((err) => {
      this.ctx.log.error('ssh channel failed', { err, channel: this.id });
      this.refuse(channel, clientMessage(err), UPSTREAM_FAILED_EXIT_STATUS);
    });
  }

  private async run(request: SessionRequest, text: string, channel: ServerChannel): Promise<void> {
    const ctx = this.ctx;
    const detail = { channel: this.id };
    await this.decideForwardingRequests();
    let scp: ReturnType<typeof detectScp>;
    let verdict: Verdict | undefined;
    if (request === 'exec') {
      verdict = await this.decide(shellCommand(ctx.listener, 'exec', text, detail));
      scp = detectScp(text);
      if (verdict.allowed && scp?.direction === 'upload')
        verdict = await this.decide(fileCommand('file-write', scp.path, 'scp', detail));
    } else if (request === 'shell') {
      if (ctx.listener.shell === 'deny') {
        this.refuse(
          channel,
          `agentgate: interactive shells are disabled on listener ${ctx.listener.name}; use exec`,
          DENIED_EXIT_STATUS,
        );
        return;
      }
    } else {
      verdict = await this.decide(subsystemCommand(text, detail));
    }
    if (verdict !== undefined && !verdict.allowed) {
      const status = verdict.code === 'RECORDING_FAILED' ? RECORDING_FAILED_EXIT_STATUS : DENIED_EXIT_STATUS;
      this.refuse(channel, verdict.message, status);
      return;
    }
    if (this.state.kind !== 'deciding') return; // the client went away while we decided

    let lease: UpstreamLease;
    let upstream: ClientChannel;
    try {
      lease = await ctx.pool.acquire();
    } catch (err) {
      ctx.record('error', { event: 'upstream.unavailable', channel: this.id, message: clientMessage(err) });
      ctx.metrics.upstreamError(ctx.listener.name, 'ssh', 'connect');
      this.refuse(channel, clientMessage(err), UPSTREAM_FAILED_EXIT_STATUS);
      return;
    }
    try {
      upstream = await this.openUpstream(lease, request, text);
    } catch (err) {
      lease.release();
      ctx.record('error', {
        event: 'upstream.channel-failed',
        channel: this.id,
        message: (err as Error).message,
      });
      ctx.metrics.upstreamError(ctx.listener.name, 'ssh', 'channel');
      this.refuse(
        channel,
        `agentgate: upstream refused the ${request} request (${(err as Error).message})`,
        UPSTREAM_FAILED_EXIT_STATUS,
      );
      return;
    }
    if (this.state.kind !== 'deciding') {
      upstream.close();
      lease.release();
      return;
    }
    this.state = { kind: 'relaying', request, upstream, lease };
    const startedAt = process.hrtime.bigint();
    upstream.on('error', (err: Error) => ctx.log.warn('upstream channel error', { err, channel: this.id }));
    // Paused for the recorder or a full writer, a channel resumes with its buffer flowing outside any socket read.
    for (const resumed of [channel, upstream, upstream.stderr])
      batchWritesOnResume(resumed, lease.transports);
    if (this.setup.x11 !== undefined) bridgeX11(this.ctx, lease);

    const onTransfer = (r: FileTransferRecord): void =>
      ctx.record('result', { channel: this.id, event: 'file.transfer', ...r });
    if (request === 'subsystem' && text === 'sftp') {
      new SftpSession(ctx, this.id, channel, upstream, onTransfer).start();
    } else if (this.setup.pty !== undefined && scp === undefined) {
      // A shell, or an exec with a pty (`ssh -t host prog`): what is typed into it is decided line by line too.
      this.relayInteractive(channel, upstream);
    } else if (request === 'shell') {
      this.relayScriptShell(channel, upstream);
    } else {
      const scpInspector =
        scp === undefined ? undefined : new ScpInspector(scp.direction, scp.path, onTransfer);
      this.relayPlain(channel, upstream, scpInspector, scp?.direction);
    }
    await this.finish(channel, upstream);
    if (request === 'exec')
      ctx.metrics.commandCompleted(
        ctx.listener.name,
        'ssh',
        Number(process.hrtime.bigint() - startedAt) / 1e9,
      );
  }

  /** Forwarding requested on this session (x11, agent) is decided when the session starts. */
  private async decideForwardingRequests(): Promise<void> {
    const detail = { channel: this.id };
    if (this.setup.x11 !== undefined) {
      const v = await this.decide(channelCommand('x11', `x11-req screen ${this.setup.x11.screen}`, detail));
      if (!v.allowed) this.setup.x11 = undefined;
    }
    if (this.setup.agentForward) {
      const v = await this.decide(channelCommand('agent-forward', 'auth-agent-req@openssh.com', detail));
      // The gateway never forwards an agent to the upstream: it authenticates with its own key, and an agent
      // reaching past the gateway would defeat that. Allowed or not, nothing is set up; the request is recorded.
      if (v.allowed) this.ctx.record('notice', { event: 'agent-forward.unsupported', channel: this.id });
      this.setup.agentForward = false;
    }
  }

  private openUpstream(lease: UpstreamLease, request: SessionRequest, text: string): Promise<ClientChannel> {
    const pty = this.setup.pty;
    const ptyOpts =
      pty === undefined
        ? undefined
        : {
            rows: pty.rows,
            cols: pty.cols,
            width: pty.width,
            height: pty.height,
            term: pty.term,
            modes: pty.modes,
          };
    const x11 = this.setup.x11;
    return new Promise((resolve, reject) => {
      const cb = (err: Error | undefined, ch: ClientChannel): void => (err ? reject(err) : resolve(ch));
      if (request === 'exec') {
        const opts: ExecOptions = {
          env: this.setup.env,
          ...(ptyOpts !== undefined ? { pty: ptyOpts } : {}),
          ...(x11 !== undefined ? { x11 } : {}),
        };
        lease.client.exec(text, opts, cb);
      } else if (request === 'shell') {
        const opts: ShellOptions = { env: this.setup.env, ...(x11 !== undefined ? { x11 } : {}) };
        lease.client.shell(ptyOpts ?? false, opts, cb);
      } else {
        lease.client.subsys(text, cb);
      }
    });
  }

  private recordIn(chunk: Buffer): void {
    this.ctx.recorder.io('in', chunk, this.id);
    this.ctx.metrics.bytes(this.ctx.listener.name, 'ssh', 'client_to_upstream', chunk.length);
  }

  private recordOut(direction: 'out' | 'err', chunk: Buffer): void {
    this.ctx.recorder.io(direction, chunk, this.id);
    this.ctx.metrics.bytes(this.ctx.listener.name, 'ssh', 'upstream_to_client', chunk.length);
  }

  /**
   * While the session's recorded stream bytes wait for their commits beyond the store's bound: the streams that
   * feed the recorder pause until the commits catch up (ssh2 then stops granting the sender window).
   */
  private readonly ioHold = (): Promise<void> | undefined => this.ctx.recorder.ioBackpressure?.();

  private relayPlain(
    channel: ServerChannel,
    upstream: ClientChannel,
    scp?: ScpInspector,
    scpDirection?: 'upload' | 'download',
  ): void {
    // A legacy scp stream is recorded as file transfers (name, size, SHA-256), like sftp, not as raw io.
    const hold = this.ioHold;
    relayData(channel, upstream, {
      observe: (c) => {
        if (scp === undefined) this.recordIn(c);
        else this.countBytes('client_to_upstream', c);
        if (scpDirection === 'upload') scp?.observe(c);
      },
      hold,
    });
    relayData(upstream, channel, {
      observe: (c) => {
        if (scp === undefined) this.recordOut('out', c);
        else this.countBytes('upstream_to_client', c);
        if (scpDirection === 'download') scp?.observe(c);
      },
      hold,
    });
    relayData(upstream.stderr, channel.stderr, { observe: (c) => this.recordOut('err', c), hold });
    channel.on('end', () => upstream.end());
    channel.resume();
  }

  private countBytes(direction: 'client_to_upstream' | 'upstream_to_client', chunk: Buffer): void {
    this.ctx.metrics.bytes(this.ctx.listener.name, 'ssh', direction, chunk.length);
  }

  private relayInteractive(channel: ServerChannel, upstream: ClientChannel): void {
    const ctx = this.ctx;
    const pty = this.setup.pty!;
    ctx.record('result', {
      event: 'pty',
      channel: this.id,
      term: pty.term,
      width: pty.cols,
      height: pty.rows,
      // Keys typed into a terminal are not recorded: what the terminal echoed is in the output and the decided
      // lines are command events; what it did not echo (a password) must not land in the record.
      inputRecorded: false,
    });
    const filter = new InteractiveLineFilter(pty.cols, pty.rows, {
      toUpstream: (data) => {
        if (upstream.writable) upstream.write(data);
      },
      toClient: (data) => {
        this.recordOut('out', data);
        channel.write(data);
      },
      decide: (line, alternates) =>
        this.decide(shellLineCommand(ctx.listener, line, alternates, { channel: this.id })),
    });
    this.filter = filter;
    // Output pauses while the terminal emulator is behind, and while the recorder is (ioHold).
    let emulatorBehind: Promise<void> | undefined;
    let emulatorCaughtUp = (): void => {};
    relayData(upstream, channel, {
      observe: (c) => {
        this.recordOut('out', c);
        if (!filter.observeOutput(c, () => emulatorCaughtUp()))
          emulatorBehind = new Promise<void>((resolve) => {
            emulatorCaughtUp = () => {
              emulatorBehind = undefined;
              resolve();
            };
          });
      },
      hold: () => bothSettled(emulatorBehind, this.ioHold()),
    });
    relayData(upstream.stderr, channel.stderr, {
      observe: (c) => this.recordOut('err', c),
      hold: this.ioHold,
    });
    // Input is handled in order, and the client's EOF goes upstream only after the input before it: the filter
    // may hold lines until the shell shows its prompt, and a pty channel's EOF must not overtake them.
    let inputHandled = Promise.resolve();
    channel.on('data', (chunk: Buffer) => {
      this.countBytes('client_to_upstream', chunk);
      channel.pause();
      inputHandled = filter
        .handleInput(chunk)
        .catch((err) => ctx.log.error('interactive filter failed', { err, channel: this.id }))
        .then(() => upstreamDrained(upstream))
        .then(() => {
          channel.resume();
        });
    });
    channel.on('end', () => {
      void inputHandled.then(() => {
        if (upstream.writable) upstream.end();
      });
    });
    channel.resume();
  }

  /** A shell without a pty reads a script from stdin: each line is decided like an exec before it is forwarded. */
  private relayScriptShell(channel: ServerChannel, upstream: ClientChannel): void {
    const ctx = this.ctx;
    let pending = '';
    relayData(upstream, channel, { observe: (c) => this.recordOut('out', c), hold: this.ioHold });
    relayData(upstream.stderr, channel.stderr, {
      observe: (c) => this.recordOut('err', c),
      hold: this.ioHold,
    });
    const forwardLines = async (final: boolean): Promise<void> => {
      for (;;) {
        const nl = pending.indexOf('\n');
        if (nl < 0 && !(final && pending !== '')) return;
        const line = nl < 0 ? pending : pending.slice(0, nl + 1);
        pending = nl < 0 ? '' : pending.slice(nl + 1);
        const text = line.trim();
        const verdict =
          text === '' || text.startsWith('#')
            ? undefined
            : await this.decide(shellCommand(ctx.listener, 'shell-line', text, { channel: this.id }));
        if (verdict === undefined || verdict.allowed) {
          if (upstream.writable) upstream.write(line);
        } else channel.stderr.write(`${verdict.message}\n`);
      }
    };
    // One line at a time, in order: a line held for approval holds the lines after it and the client's EOF.
    const decoder = new StringDecoder('utf8');
    let linesHandled = Promise.resolve();
    const handleLines = (final: boolean): Promise<void> =>
      (linesHandled = linesHandled
        .then(() => forwardLines(final))
        .catch((err) => ctx.log.error('script shell filter failed', { err })));
    channel.on('data', (chunk: Buffer) => {
      this.recordIn(chunk);
      pending += decoder.write(chunk);
      channel.pause();
      void handleLines(false)
        .then(() => this.ioHold())
        .then(() => channel.resume());
    });
    channel.on('end', () => {
      pending += decoder.end();
      void handleLines(true).then(() => {
        if (upstream.writable) upstream.end();
      });
    });
    channel.resume();
  }

  /**
   * RFC 4254 §6.10: exit-status comes with the channel's end. The upstream's output is written out in full first
   * (ssh2 sends exit-status at once, not in stream order), then exit-status, then EOF and close.
   */
  private async finish(channel: ServerChannel, upstream: ClientChannel): Promise<void> {
    let exit: { code: number | null; signal?: string; dump?: boolean; desc?: string } | undefined;
    upstream.on('exit', (code: number | null, signal?: string, dump?: boolean, desc?: string) => {
      exit = {
        code,
        ...(signal !== undefined ? { signal } : {}),
        ...(dump !== undefined ? { dump } : {}),
        ...(desc !== undefined ? { desc } : {}),
      };
    });
    const upstreamClosed = new Promise<void>((resolve) => upstream.once('close', () => resolve()));
    await Promise.all([ended(upstream), ended(upstream.stderr), upstreamClosed]);
    await writesFlushed(channel.stderr);
    await writesFlushed(channel);
    if (this.state.kind === 'relaying') this.state.lease.release();
    this.state = { kind: 'closed' };
    this.filter?.dispose();
    this.filter = undefined;
    const e = exit as typeof exit;
    if (e !== undefined && e.code !== null && e.code !== undefined) channel.exit(e.code);
    else if (e?.signal !== undefined) channel.exit(e.signal, e.dump ?? false, e.desc ?? '');
    this.ctx.record('result', {
      channel: this.id,
      event: 'exit',
      exitStatus: e?.code ?? null,
      ...(e?.signal !== undefined ? { exitSignal: e.signal } : {}),
    });
    channel.end();
  }

  private refuse(channel: ServerChannel, message: string, status: number): void {
    if (this.state.kind === 'refused' || this.state.kind === 'closed') return;
    if (this.state.kind === 'relaying') {
      this.state.upstream.close();
      this.state.lease.release();
    }
    this.state = { kind: 'refused', exitStatus: status };
    const eol = this.setup.pty !== undefined ? '\r\n' : '\n';
    this.ctx.record('result', { channel: this.id, event: 'exit', exitStatus: status, refused: true });
    try {
      channel.stderr.write(message + eol);
      channel.exit(status);
      channel.end();
    } catch (err) {
      this.ctx.log.warn('could not render refusal', { err });
    }
  }

  private closeUpstream(): void {
    this.closed.abort();
    const s = this.state;
    if (s.kind === 'relaying') {
      s.upstream.close();
      s.lease.release();
    }
    if (s.kind !== 'refused') this.state = { kind: 'closed' };
    this.filter?.dispose();
    this.filter = undefined;
  }
}

export type { SshCommand };
