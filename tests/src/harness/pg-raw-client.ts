/** A PostgreSQL client on a raw socket: exact bytes out, backend messages in (for malformed-input tests). */
import net from 'node:net';

/** Reads backend messages from a raw socket. */
export class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiters.splice(0).forEach((w) => w());
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiters.splice(0).forEach((w) => w());
    });
    socket.on('error', () => undefined);
  }
  static async open(g: { host: string; port: number }): Promise<RawClient> {
    const socket = net.connect(g.port, g.host);
    await new Promise((resolve) => socket.once('connect', resolve));
    return new RawClient(socket);
  }
  /** Next message as [type, body]; null when the connection closed. */
  async next(): Promise<[string, Buffer] | null> {
    for (;;) {
      if (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length >= len + 1) {
          const msg: [string, Buffer] = [String.fromCharCode(this.buf[0]!), this.buf.subarray(5, len + 1)];
          this.buf = this.buf.subarray(len + 1);
          return msg;
        }
      }
      if (this.closed) return null;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
  async until(type: string): Promise<[string, Buffer][]> {
    const seen: [string, Buffer][] = [];
    for (;;) {
      const m = await this.next();
      if (m === null) throw new Error(`closed before ${type}; saw ${seen.map((s) => s[0]).join('')}`);
      seen.push(m);
      if (m[0] === type) return seen;
    }
  }
  /** Startup + token password, up to the first ReadyForQuery; returns BackendKeyData. */
  async login(token: string, params: Record<string, string> = {}): Promise<[string, Buffer][]> {
    const kv = Object.entries({ user: 'devin', database: 'app', ...params }).flatMap(([k, v]) => [k, v]);
    const body = Buffer.concat([
      Buffer.from([0, 3, 0, 0]),
      ...kv.map((s) => Buffer.from(s + '\0')),
      Buffer.from([0]),
    ]);
    const len = Buffer.alloc(4);
    len.writeInt32BE(body.length + 4);
    this.socket.write(Buffer.concat([len, body]));
    const auth = await this.next();
    if (auth?.[0] !== 'R') return auth ? [auth] : [];
    this.socket.write(typed('p', Buffer.from(token + '\0')));
    const out: [string, Buffer][] = [];
    for (;;) {
      const m = await this.next();
      if (m === null) return out;
      out.push(m);
      if (m[0] === 'Z' || m[0] === 'E') return out;
    }
  }
}

export function typed(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

export function errorFields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of body.toString().split('\0')) if (part.length > 1) out[part[0]!] = part.slice(1);
  return out;
}
