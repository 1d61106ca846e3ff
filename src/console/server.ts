/**
 * `mailmover console`: the web console's server (hono on @hono/node-server). It serves the page
 * (built from web/console/ into dist/console/web/, no CDN: it works offline), the JSON API, the
 * server-sent events and /metrics, all behind the access token (access.ts), and only reads the
 * ledger (ledger-db.ts).
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { Access, securityHeaders } from './access.js';
import { actionRoutes } from './action-routes.js';
import { apiRoutes } from './api-routes.js';
import { LedgerSource, LiveFeed } from './live.js';
import { consoleMetrics } from './metrics.js';

export interface ConsoleOptions {
  /** The ledger: a SQLite file or a PostgreSQL URL. */
  location: string;
  hostname: string;
  /** 0 for any free port. */
  port: number;
  token: string;
  /** Who takes the actions, as recorded in the ledger (the console's --operator). */
  operator: string;
  /** How long a session cookie is valid (default 12 h). */
  sessionSeconds?: number | undefined;
  tls?: { cert: Buffer; key: Buffer } | undefined;
  /** How often the ledger is looked at for changes (default 1500 ms). */
  pollMs?: number | undefined;
  /** Stops the server, the polling and the event streams. */
  signal: AbortSignal;
}

export interface RunningConsole {
  /** The console's address, without the token. */
  url: string;
  port: number;
  /** Resolves once the server has closed (after `signal` aborted). */
  closed: Promise<void>;
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

/** The page's files: dist/console/web/ (next to this module once built; from src/ in development). */
function pageFiles(): Map<string, { type: string; body: Buffer }> {
  const dir = [new URL('./web/', import.meta.url), new URL('../../dist/console/web/', import.meta.url)].find((u) => existsSync(new URL('index.html', u)));
  const files = new Map<string, { type: string; body: Buffer }>();
  if (!dir) return files;
  const add = (rel: string) => files.set('/' + rel, { type: TYPES[/\.[a-z]+$/.exec(rel)![0]]!, body: readFileSync(new URL(rel, dir)) });
  add('index.html');
  add('app.css');
  if (existsSync(new URL('uplot.css', dir))) add('uplot.css');
  for (const f of readdirSync(new URL('app/', dir))) if (f.endsWith('.js')) add(`app/${f}`);
  return files;
}

/** Starts the console; resolves once it listens. */
export async function startConsole(o: ConsoleOptions): Promise<RunningConsole> {
  const source = new LedgerSource(o.location);
  const feed = new LiveFeed(source, o.pollMs ?? 1500);
  const access = new Access(o.token, !!o.tls, o.sessionSeconds);
  const metrics = consoleMetrics(source);
  const files = pageFiles();
  const app = new Hono();
  app.use('*', securityHeaders());
  app.use('*', access.middleware());
  apiRoutes(app, source, feed, access, o.signal);
  actionRoutes(app, source, feed, o.operator);
  app.get('/metrics', async (c) => c.body(await metrics.render(), 200, { 'Content-Type': metrics.contentType }));
  app.get('*', (c) => {
    const f = files.get(c.req.path === '/' ? '/index.html' : c.req.path);
    if (!f) return c.text('404: not found\n', 404);
    return c.body(new Uint8Array(f.body), 200, { 'Content-Type': f.type });
  });
  // The polling stops with the console, and also when it cannot listen.
  const polling = new AbortController();
  o.signal.addEventListener('abort', () => polling.abort(), { once: true });
  await feed.start(polling.signal);
  const server = serve({
    fetch: app.fetch,
    hostname: o.hostname,
    port: o.port,
    ...(o.tls ? { createServer: createHttpsServer, serverOptions: { cert: o.tls.cert, key: o.tls.key } } : {}),
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('listening', () => resolve((server.address() as AddressInfo).port));
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new MigrateError(ERROR_CODES.CONSOLE_LISTEN, `The console cannot listen on ${o.hostname}:${o.port}: ${err.code === 'EADDRINUSE' ? 'the port is in use (pick another with --listen ADDR:PORT, or 0 for any)' : err.message}.`, { scope: 'config', cause: err })),
    );
  }).catch(async (err: unknown) => {
    polling.abort();
    await source.close();
    throw err;
  });
  const closed = new Promise<void>((resolve) => {
    const stop = () => {
      server.close(() => void source.close().then(resolve, resolve));
      // Event streams stay open until their clients leave; the console does not wait for them.
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
    };
    if (o.signal.aborted) stop();
    else o.signal.addEventListener('abort', stop, { once: true });
  });
  const host = o.hostname.includes(':') ? `[${o.hostname}]` : o.hostname;
  return { url: `${o.tls ? 'https' : 'http'}://${host}:${port}/`, port, closed };
}
