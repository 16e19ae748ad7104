/**
 * `retarget playground`: serve the browser playground (dist/web, built by `npm run build`) on
 * localhost. The page compiles, validates and times models in the browser; nothing is uploaded:
 * this server only hands out static files. It sends the cross-origin-isolation headers
 * (COOP/COEP) so that onnxruntime-web may run its wasm with threads; from a plain static host the
 * page works single-threaded.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { UsageError } from './shared.js';
import { RetargetError } from '../errors.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Where `npm run build` puts the page: dist/web, beside dist/src. */
export function playgroundRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');
}

export interface PlaygroundServer { url: string; close(): Promise<void> }

/** Serve `root` (GET and HEAD only, no listing, nothing outside it) on host:port (0: any free port). */
export async function servePlayground(opts: { host: string; port: number; root?: string }): Promise<PlaygroundServer> {
  const root = opts.root ?? playgroundRoot();
  if (!fs.existsSync(path.join(root, 'index.html'))) {
    throw new Error(`the playground is not built (no ${path.join(root, 'index.html')}): run npm run build`);
  }
  const server = http.createServer((req, res) => {
    const headers = {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-cache',
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, Allow: 'GET, HEAD' }).end();
      return;
    }
    let rel: string;
    try {
      rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      res.writeHead(400, headers).end();
      return;
    }
    if (rel.endsWith('/')) rel += 'index.html';
    const file = path.resolve(root, `.${rel}`);
    const stat = file.startsWith(root + path.sep) ? fs.statSync(file, { throwIfNoEntry: false }) : undefined;
    if (!stat?.isFile()) {
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'Content-Length': stat.size });
    if (req.method === 'HEAD') res.end();
    else fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}/`,
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

export function registerPlayground(program: Command): void {
  program
    .command('playground')
    .description('serve the browser playground: inspect, compile, validate and time models in the page (nothing is uploaded)')
    .option('--port <n>', 'port (0: any free one)', '0')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .action(async (opts: { port: string; host: string }) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: '${opts.port}' is not a port number`);
      let server: PlaygroundServer;
      try {
        server = await servePlayground({ host: opts.host, port });
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (err.code === 'EADDRINUSE') throw new RetargetError(undefined, `playground: ${opts.host}:${port} is in use (--port 0 picks a free port)`, {}, { cause: e });
        throw new RetargetError(undefined, `playground: ${err.message}`, {}, { cause: e });
      }
      process.stdout.write(`retarget playground: ${server.url}\n(serving ${playgroundRoot()}; Ctrl-C stops it)\n`);
      // serve until interrupted
      await new Promise<void>((resolve) => {
        const stop = (): void => { void server.close().then(resolve); };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
