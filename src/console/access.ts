/**
 * Who may use the console, and what every answer carries.
 *
 * - One access token (random, or from --token-file). A visit with `?token=` exchanges it for a
 *   session: an HttpOnly, SameSite=Strict cookie holding a random session id (never the token),
 *   and a redirect to the same URL without the token, so it leaves the address bar and history.
 *   Scripts may send the token as `Authorization: Bearer` instead (e.g. Prometheus on /metrics).
 * - A session lasts 12 hours by default (`--session-hours`): the cookie carries that Max-Age,
 *   and the server refuses the session after it (401) whatever the browser sends; the token
 *   opens a new one.
 * - Without a valid token or session: 401 and no data, for the page and the API alike.
 * - Every request other than GET and HEAD needs the session's CSRF token in `X-CSRF-Token`
 *   (the page gets it from /api/session); a bearer token alone never allows one.
 * - Every answer: a strict Content-Security-Policy (scripts, styles and connections from the
 *   console itself only, no inline script or style, no framing), nosniff, no referrer, no caching.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';

export const COOKIE = 'mm_console';
const MAX_SESSIONS = 1000;
/** A session's life: 12 hours. */
export const DEFAULT_SESSION_SECONDS = 12 * 3600;

/** A new random access token. */
export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

const digest = (s: string) => createHash('sha256').update(s).digest();
const same = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

/** The sessions of one console process (in memory: a restart asks for the token again). */
export class Access {
  private readonly sessions = new Map<string, { csrf: string; expires: number }>();

  constructor(
    private readonly token: string,
    private readonly secureCookie: boolean,
    /** How long a session is valid. */
    private readonly sessionSeconds = DEFAULT_SESSION_SECONDS,
  ) {}

  /** The CSRF token of the request's session, if it has one that has not expired. */
  session(c: Context): { csrf: string } | undefined {
    const id = getCookie(c, COOKIE);
    const s = id ? this.sessions.get(id) : undefined;
    if (s && Date.now() >= s.expires) {
      this.sessions.delete(id!);
      return undefined;
    }
    return s;
  }

  private open(c: Context): void {
    const id = randomBytes(24).toString('base64url');
    this.sessions.set(id, { csrf: randomBytes(24).toString('base64url'), expires: Date.now() + this.sessionSeconds * 1000 });
    // The oldest sessions go first when a (misbehaving) client opens very many.
    while (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    setCookie(c, COOKIE, id, { httpOnly: true, sameSite: 'Strict', path: '/', secure: this.secureCookie, maxAge: Math.max(1, Math.floor(this.sessionSeconds)) });
  }

  /** The middleware: headers, token exchange, 401, CSRF. */
  middleware(): MiddlewareHandler {
    return async (c, next) => {
      const url = new URL(c.req.url);
      const offered = url.searchParams.get('token');
      const bearer = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
      const session = this.session(c);
      if (offered !== null && same(offered, this.token) && c.req.method === 'GET') {
        this.open(c);
        url.searchParams.delete('token');
        return c.redirect(url.pathname + url.search, 303);
      }
      if (!session && !(bearer && same(bearer, this.token))) return refuse(c, 401, 'Open the console with the URL that `mailmover console` printed (it holds the access token).');
      if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
        const sent = c.req.header('x-csrf-token');
        if (!session || !sent || !same(sent, session.csrf)) return refuse(c, 403, 'This request needs the CSRF token of your session (X-CSRF-Token).');
      }
      await next();
    };
  }
}

/** The headers every answer carries, the 401 and 403 ones too. */
export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    c.header(
      'Content-Security-Policy',
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('X-Frame-Options', 'DENY');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('Cross-Origin-Opener-Policy', 'same-origin');
    c.header('Cache-Control', 'no-store');
  };
}

function refuse(c: Context, status: 401 | 403, message: string): Response {
  const wantsJson = !(c.req.header('accept') ?? '').includes('text/html');
  return wantsJson ? c.json({ error: { status, message } }, status) : c.text(`${status}: ${message}\n`, status);
}
