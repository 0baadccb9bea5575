/** The Node floor relays the Docker benchmarks measure agentgate against (docker.ts, docker-account.ts). */
import net from 'node:net';

/**
 * A relay in this process that neither parses nor decides, the runtime's own floor: `pipe` (stream.pipe both ways),
 * `data` ('data' events written on, paused while the other side is full) or `onread` (the client side as `data`,
 * dockerd's side read into one reused buffer through `net.Socket`'s `onread`, no Readable machinery: written on at
 * once, and a fresh buffer taken while a write still holds the last one). Listens on TCP, or on `unixPath`.
 */
export async function nodeRelay(
  kind: 'pipe' | 'data' | 'onread',
  upstreamSocket: string,
  unixPath?: string,
): Promise<net.Server> {
  // allowHalfOpen: `docker exec` without -i half-closes its side and still reads the output.
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (s) => {
    const onread = (): net.OnReadOpts => {
      let reused = Buffer.allocUnsafe(64 * 1024);
      return {
        buffer: () => (s.writableLength === 0 ? reused : (reused = Buffer.allocUnsafe(64 * 1024))),
        // false stops reading until 'drain' resumes it
        callback: (n, buf) => {
          if (s.write(buf.subarray(0, n))) return true;
          s.once('drain', () => u.resume());
          return false;
        },
      };
    };
    const u = net.connect({
      path: upstreamSocket,
      allowHalfOpen: true,
      ...(kind === 'onread' ? { onread: onread() } : {}),
    });
    const forward = (from: net.Socket, to: net.Socket): void => {
      from.on('data', (c: Buffer) => {
        if (!to.write(c)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
      from.on('end', () => to.end());
    };
    if (kind === 'pipe') {
      s.pipe(u);
      u.pipe(s);
    } else {
      forward(s, u);
      if (kind === 'data') forward(u, s);
      else u.on('end', () => s.end());
    }
    s.on('error', () => u.destroy());
    u.on('error', () => s.destroy());
    s.on('close', () => u.destroy());
    u.on('close', () => s.destroy());
  });
  await new Promise<void>((resolve) =>
    unixPath ? server.listen(unixPath, resolve) : server.listen(0, '127.0.0.1', resolve),
  );
  return server;
}
