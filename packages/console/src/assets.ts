/**
 * The console's static files, all shipped in the package and served by agentgate (no CDN): the stylesheet, the
 * compiled page script and asciinema-player's bundle and stylesheet from its npm package. Read once at start.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { securityHeaders } from './http.js';

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

function asset(file: string | URL, type: string): Asset {
  const body = readFileSync(file);
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

export function loadAssets(): Map<string, Asset> {
  const require = createRequire(import.meta.url);
  return new Map([
    [
      '/assets/console.css',
      asset(new URL('../assets/console.css', import.meta.url), 'text/css; charset=utf-8'),
    ],
    [
      '/assets/console.js',
      asset(new URL('./client/console.js', import.meta.url), 'text/javascript; charset=utf-8'),
    ],
    [
      '/assets/player/asciinema-player.min.js',
      asset(
        require.resolve('asciinema-player/dist/bundle/asciinema-player.min.js'),
        'text/javascript; charset=utf-8',
      ),
    ],
    [
      '/assets/player/asciinema-player.css',
      asset(require.resolve('asciinema-player/dist/bundle/asciinema-player.css'), 'text/css; charset=utf-8'),
    ],
  ]);
}

export function serveAsset(
  assets: Map<string, Asset>,
  req: IncomingMessage,
  res: ServerResponse,
  pathname: string,
  https: boolean,
): boolean {
  const found = assets.get(pathname);
  if (found === undefined) return false;
  const headers = {
    ...securityHeaders({ https }),
    'content-type': found.type,
    etag: found.etag,
    'cache-control': 'no-cache',
  };
  if (req.headers['if-none-match'] === found.etag) {
    res.writeHead(304, headers);
    res.end();
    return true;
  }
  res.writeHead(200, { ...headers, 'content-length': String(found.body.length) });
  res.end(req.method === 'HEAD' ? undefined : found.body);
  return true;
}
