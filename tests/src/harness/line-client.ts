import net from 'node:net';

/** A minimal client for the line-protocol test listener: send a line, await the reply line. */
export class LineClient {
  private buffer = '';
  private waiters: ((line: string) => void)[] = [];
  private lines: string[] = [];

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffer += d;
      let i: number;
      while ((i = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, i);
        this.buffer = this.buffer.slice(i + 1);
        const w = this.waiters.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
  }

  static connect(address: { host: string; port: number } | { path: string }): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = 'path' in address ? net.connect(address.path) : net.connect(address.port, address.host);
      socket.once('error', reject);
      socket.once('connect', () => resolve(new LineClient(socket)));
    });
  }

  next(): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async send(line: string): Promise<string> {
    this.socket.write(line + '\n');
    return this.next();
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }
}
