/**
 * Opening and authenticating the upstream connection with the credentials from the listener config
 * (PostgreSQL docs "Start-up": AuthenticationOk / CleartextPassword / MD5Password / SASL, then ParameterStatus,
 * BackendKeyData, ReadyForQuery).
 */
import net from 'node:net';
import tls from 'node:tls';
import { AgentgateError, SlabReads, type PostgresListenerConfig } from '@agentgate/core';
import { BackendFramer, forEachMessage } from './codec/backend-framer.js';
import { decodeErrorFields, readCString } from './codec/decode.js';
import {
  encodePasswordMessage,
  encodeSaslInitialResponse,
  encodeSaslResponse,
  encodeSslRequest,
  encodeStartupMessage,
} from './codec/encode.js';
import { ScramClient, md5Password } from './scram.js';
import { BackendMessage, SSL_ACCEPTED } from './codec/message-types.js';

export interface UpstreamConnection {
  readonly socket: net.Socket | tls.TLSSocket;
  readonly processId: number;
  readonly secretKey: number;
  /** ParameterStatus messages as received, relayed to the client verbatim. */
  readonly parameterStatus: Buffer[];
  /** Bytes received after ReadyForQuery (normally none). */
  readonly leftover: Buffer | null;
  /**
   * Set when the socket was opened with slab reads (`openUpstream`'s `slabReads`, plain TCP only): its reads arrive
   * through this object's `attach`, never as 'data' events. The socket is paused; reads stay stopped until resumed.
   */
  readonly reads: SlabReads | undefined;
}

export interface OpenUpstreamOptions {
  /**
   * Read the socket into slabs (packages/core slab-reads.ts) rather than through its Readable, for a connection
   * whose every answer is relayed: no push, 'data' emit and read-more tick, nor a fresh buffer, per read. Only
   * where the socket stays plain TCP: a TLS socket reads through its own layer.
   */
  readonly slabReads?: boolean;
}

/** The upstream refused the startup (e.g. unknown database): its ErrorResponse is relayed to the client as is. */
export class UpstreamRejected extends AgentgateError {
  constructor(
    readonly errorMessage: Buffer,
    readonly sqlstate: string,
    text: string,
  ) {
    super('UPSTREAM_UNAVAILABLE', text);
  }
}

export type UpstreamTarget = PostgresListenerConfig['upstream'];

export function connectTcp(
  host: string,
  port: number,
  signal: AbortSignal,
  timeoutMs = 10_000,
  reads?: SlabReads,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(
      reads ? { host, port, noDelay: true, onread: reads.options } : { host, port, noDelay: true },
    );
    const fail = (err: Error): void => {
      cleanup();
      socket.destroy();
      reject(
        new AgentgateError(
          'UPSTREAM_UNAVAILABLE',
          `agentgate: cannot connect to upstream ${host}:${port}: ${err.message}`,
          { cause: err },
        ),
      );
    };
    const onAbort = (): void => fail(new Error('aborted'));
    const timer = setTimeout(() => fail(new Error('connect timeout')), timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('error', fail);
      signal.removeEventListener('abort', onAbort);
    };
    socket.once('error', fail);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      cleanup();
      resolve(socket);
    });
  });
}

/** Reads one server byte (the SSLRequest answer). */
function readByte(socket: net.Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      socket.off('error', reject);
      socket.off('data', onData);
      socket.pause();
      if (chunk.length > 1)
        reject(
          new AgentgateError(
            'UPSTREAM_UNAVAILABLE',
            'agentgate: upstream sent data before the TLS handshake',
          ),
        );
      else resolve(chunk[0]!);
    };
    socket.once('error', reject);
    socket.on('data', onData);
  });
}

export async function openUpstream(
  target: UpstreamTarget,
  startupParams: Record<string, string>,
  signal: AbortSignal,
  options: OpenUpstreamOptions = {},
): Promise<UpstreamConnection> {
  const reads = options.slabReads && !target.tls ? new SlabReads() : undefined;
  let socket: net.Socket | tls.TLSSocket = await connectTcp(
    target.host,
    target.port,
    signal,
    undefined,
    reads,
  );
  try {
    if (target.tls) {
      socket.write(encodeSslRequest());
      if ((await readByte(socket)) !== SSL_ACCEPTED)
        throw new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: upstream refused TLS');
      const plain = socket;
      socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
        // The upstream is named in the operator's config; certificate checking follows Node's defaults
        // (NODE_EXTRA_CA_CERTS for a private CA).
        const secure = tls.connect(
          { socket: plain, servername: net.isIP(target.host) ? undefined : target.host },
          () => resolve(secure),
        );
        secure.once('error', reject);
      });
    }
    return await authenticate(socket, reads, target, startupParams, signal);
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

function authenticate(
  socket: net.Socket | tls.TLSSocket,
  reads: SlabReads | undefined,
  target: UpstreamTarget,
  startupParams: Record<string, string>,
  signal: AbortSignal,
): Promise<UpstreamConnection> {
  return new Promise((resolve, reject) => {
    const framer = new BackendFramer();
    const parameterStatus: Buffer[] = [];
    let processId = 0;
    let secretKey = 0;
    let scram: ScramClient | undefined;
    const password = target.password ?? '';
    const finish = (err: Error | null, result?: UpstreamConnection): void => {
      if (reads) reads.detach();
      else socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
      clearTimeout(timer);
      socket.pause();
      if (err) reject(err);
      else resolve(result!);
    };
    const onError = (err: Error): void =>
      finish(
        new AgentgateError('UPSTREAM_UNAVAILABLE', `agentgate: upstream connection failed: ${err.message}`, {
          cause: err,
        }),
      );
    const onClose = (): void =>
      finish(
        new AgentgateError(
          'UPSTREAM_UNAVAILABLE',
          'agentgate: upstream closed the connection during startup',
        ),
      );
    const onAbort = (): void => finish(new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: aborted'));
    const timer = setTimeout(
      () => finish(new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: upstream startup timed out')),
      15_000,
    );
    const onData = (chunk: Buffer): void => {
      try {
        const region = framer.push(chunk);
        if (region === null) return;
        let done = false;
        forEachMessage(region, (type, buf, start, end) => {
          if (done)
            throw new AgentgateError(
              'UPSTREAM_UNAVAILABLE',
              'agentgate: upstream sent data after ReadyForQuery',
            );
          switch (type) {
            case BackendMessage.Authentication:
              handleAuth(buf.subarray(start, end));
              break;
            case BackendMessage.ParameterStatus:
              parameterStatus.push(Buffer.from(buf.subarray(start, end)));
              break;
            case BackendMessage.BackendKeyData:
              processId = buf.readInt32BE(start + 5);
              secretKey = buf.readInt32BE(start + 9);
              break;
            case BackendMessage.ReadyForQuery:
              done = true;
              break;
            case BackendMessage.ErrorResponse: {
              const fields = decodeErrorFields(buf, start, end);
              throw new UpstreamRejected(
                Buffer.from(buf.subarray(start, end)),
                fields.get('C') ?? '08006',
                fields.get('M') ?? 'upstream error',
              );
            }
            default: // NoticeResponse and NegotiateProtocolVersion carry nothing we need at startup
              break;
          }
        });
        if (done)
          finish(null, {
            socket,
            processId,
            secretKey,
            parameterStatus,
            leftover: framer.takePending(),
            reads,
          });
      } catch (err) {
        finish(err as Error);
      }
    };
    const handleAuth = (msg: Buffer): void => {
      const code = msg.readInt32BE(5);
      switch (code) {
        case 0: // AuthenticationOk
          return;
        case 3: // AuthenticationCleartextPassword
          socket.write(encodePasswordMessage(password));
          return;
        case 5: // AuthenticationMD5Password
          socket.write(encodePasswordMessage(md5Password(target.user, password, msg.subarray(9, 13))));
          return;
        case 10: {
          // AuthenticationSASL: a list of mechanisms
          const mechanisms: string[] = [];
          let offset = 9;
          while (offset < msg.length && msg[offset] !== 0) {
            let name: string;
            [name, offset] = readCString(msg, offset, msg.length);
            mechanisms.push(name);
          }
          if (!mechanisms.includes('SCRAM-SHA-256')) {
            throw new AgentgateError(
              'UPSTREAM_UNAVAILABLE',
              `agentgate: upstream offers no supported SASL mechanism (${mechanisms.join(', ')})`,
            );
          }
          scram = new ScramClient(password);
          socket.write(encodeSaslInitialResponse('SCRAM-SHA-256', scram.clientFirstMessage));
          return;
        }
        case 11: // AuthenticationSASLContinue
          if (!scram) throw new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: unexpected SASLContinue');
          socket.write(encodeSaslResponse(scram.clientFinal(msg.toString('utf8', 9))));
          return;
        case 12: // AuthenticationSASLFinal
          if (!scram) throw new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: unexpected SASLFinal');
          scram.verifyServerFinal(msg.toString('utf8', 9));
          return;
        default:
          throw new AgentgateError(
            'UPSTREAM_UNAVAILABLE',
            `agentgate: unsupported upstream authentication method ${code}`,
          );
      }
    };
    if (reads) {
      const early = reads.attach((chunk) => {
        onData(chunk);
        return true;
      });
      for (const chunk of early) onData(chunk);
    } else socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.write(encodeStartupMessage({ ...startupParams, user: target.user }));
    socket.resume();
  });
}
