/**
 * One long-lived upstream connection for catalog reads (routine bodies, triggers, rules, views), opened with the
 * listener's upstream credentials like the masking catalog's, and shared by every session of the same upstream
 * database. Queries are pipelined (simple Query protocol, answered in order).
 *
 * Nothing the client does reaches it: its settings are fixed in the startup packet (client-level settings win over
 * ALTER ROLE/DATABASE … SET): `search_path = pg_catalog` and every name schema-qualified, so no object a client
 * creates can stand in for a catalog table, function or operator; standard strings, so the quoting below holds;
 * read-only transactions and a statement timeout.
 */
import type net from 'node:net';
import type tls from 'node:tls';
import { AgentgateError } from '@agentgate/core';
import { BackendFramer, forEachMessage } from '../codec/backend-framer.js';
import { decodeErrorFields, decodeTextRow } from '../codec/decode.js';
import { encodeQuery, encodeTerminate } from '../codec/encode.js';
import { openUpstream, type UpstreamTarget } from '../upstream.js';
import { BackendMessage } from '../codec/message-types.js';

/** Rows of a text-format result; NULL as null. */
export type TextRows = (string | null)[][];

/** A runner of catalog queries (the connection below; tests may run them on any connection). */
export interface CatalogQueryRunner {
  query(sql: string): Promise<TextRows>;
  close(): void;
}

const CONNECT_TIMEOUT_MS = 10_000;
const QUERY_TIMEOUT_MS = 15_000;

interface Pending {
  readonly rows: TextRows;
  error: string | undefined;
  readonly resolve: (rows: TextRows) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** A SQL string literal (the connection runs with standard_conforming_strings on). */
export function sqlLiteral(value: string): string {
  if (value.includes('\u0000')) throw new AgentgateError('BAD_REQUEST', 'agentgate: NUL in a catalog name');
  return `'${value.replace(/'/g, "''")}'`;
}

export class CatalogConnection implements CatalogQueryRunner {
  private socket: net.Socket | tls.TLSSocket | undefined;
  private connecting: Promise<net.Socket | tls.TLSSocket> | undefined;
  private readonly framer = new BackendFramer();
  private readonly pending: Pending[] = [];
  private closed = false;

  constructor(
    private readonly target: UpstreamTarget,
    private readonly database: string,
  ) {}

  async query(sql: string): Promise<TextRows> {
    if (this.closed) throw new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: catalog connection closed');
    const socket = await this.connect();
    return new Promise<TextRows>((resolve, reject) => {
      const timer = setTimeout(() => {
        // The connection is out of step with its answers now: start over.
        this.fail(new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: catalog query timed out'));
      }, QUERY_TIMEOUT_MS);
      timer.unref();
      this.pending.push({ rows: [], error: undefined, resolve, reject, timer });
      socket.write(encodeQuery(sql));
    });
  }

  close(): void {
    this.closed = true;
    this.fail(new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: catalog connection closed'));
  }

  private connect(): Promise<net.Socket | tls.TLSSocket> {
    if (this.socket !== undefined) return Promise.resolve(this.socket);
    this.connecting ??= (async () => {
      try {
        const conn = await openUpstream(
          this.target,
          {
            database: this.database,
            application_name: 'agentgate-catalog',
            client_encoding: 'UTF8',
            search_path: 'pg_catalog',
            standard_conforming_strings: 'on',
            default_transaction_read_only: 'on',
            statement_timeout: String(QUERY_TIMEOUT_MS - 1000),
          },
          AbortSignal.timeout(CONNECT_TIMEOUT_MS),
        );
        const socket = conn.socket;
        if (this.closed) {
          socket.destroy();
          throw new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: catalog connection closed');
        }
        socket.on('data', this.onData);
        socket.on('error', this.onError);
        socket.on('close', this.onClose);
        socket.unref();
        this.socket = socket;
        if (conn.leftover) this.onData(conn.leftover);
        socket.resume();
        return socket;
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      const region = this.framer.push(chunk);
      if (region === null) return;
      forEachMessage(region, (type, buf, start, end) => {
        const head = this.pending[0];
        if (head === undefined) return;
        if (type === BackendMessage.DataRow) head.rows.push(decodeTextRow(buf, start));
        else if (type === BackendMessage.ErrorResponse)
          head.error ??= decodeErrorFields(buf, start, end).get('M') ?? 'error';
        else if (type === BackendMessage.ReadyForQuery) {
          this.pending.shift();
          clearTimeout(head.timer);
          if (head.error === undefined) head.resolve(head.rows);
          else
            head.reject(
              new AgentgateError('UPSTREAM_UNAVAILABLE', `agentgate: catalog query failed: ${head.error}`),
            );
        }
      });
    } catch (err) {
      this.fail(err as Error);
    }
  };

  private readonly onError = (err: Error): void => this.fail(err);

  private readonly onClose = (): void =>
    this.fail(new AgentgateError('UPSTREAM_UNAVAILABLE', 'agentgate: catalog connection closed'));

  /** Every query in flight fails; the next one opens a new connection. */
  private fail(err: Error): void {
    const socket = this.socket;
    this.socket = undefined;
    if (socket !== undefined) {
      socket.off('data', this.onData);
      socket.off('error', this.onError);
      socket.off('close', this.onClose);
      socket.on('error', () => undefined);
      if (!socket.destroyed) socket.end(encodeTerminate());
      setTimeout(() => socket.destroy(), 1000).unref();
    }
    this.framer.takePending();
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }
}
