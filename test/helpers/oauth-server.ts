/**
 * A test OAuth 2.0 authorization server on loopback (real HTTP, node:http): the device
 * authorization endpoint (RFC 8628 §3.1) and the token endpoint for the device code grant
 * (§3.4, §3.5) and the refresh token grant (RFC 6749 §6). Written for the tests because no
 * authorization server runs here; it implements only what mailmover's client uses.
 *
 * The device flow follows a script: each poll of the token endpoint takes the next step
 * ('pending' → authorization_pending, 'slow_down', 'expired' → expired_token, 'denied' →
 * access_denied, 'approve' → tokens). Access tokens are random b64tokens; `onIssue` hears each one
 * (a test makes the scripted IMAP server accept it). Refresh tokens can rotate on every use (the old
 * one then stops working, as with a strict provider) and can be revoked.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';

export type DeviceStep = 'pending' | 'slow_down' | 'expired' | 'denied' | 'approve';

export interface OAuthServerOptions {
  /** The answers to successive device code polls; after the last, 'pending' for ever. */
  deviceSteps?: DeviceStep[];
  /** `interval` and `expires_in` of the device authorization answer (default 1 and 600). */
  interval?: number;
  deviceExpiresIn?: number;
  /** `expires_in` of access tokens (default 3600). */
  accessTokenLifetime?: number;
  /** A new refresh token on every refresh; the old one is then invalid (default false). */
  rotateRefreshTokens?: boolean;
  /** The client id the server knows (default 'mm-test-client'). */
  clientId?: string;
  /** Called with every access token issued. */
  onIssue?: (accessToken: string) => void;
}

export interface OAuthServer {
  port: number;
  deviceEndpoint: string;
  tokenEndpoint: string;
  /** Every request: endpoint, grant type and the error answered (no token, ever). */
  log: { path: string; grant?: string; answer: string; at: number }[];
  /** Every access token issued, in order. */
  issued: string[];
  /** Refresh tokens that work now. */
  liveRefreshTokens(): string[];
  /** Makes every refresh token stop working (invalid_grant). */
  revokeAll(): void;
  stop(): Promise<void>;
}

const token = (prefix: string) => `${prefix}-${randomBytes(18).toString('base64url')}`;

export async function startOAuthServer(o: OAuthServerOptions = {}): Promise<OAuthServer> {
  const clientId = o.clientId ?? 'mm-test-client';
  const steps = [...(o.deviceSteps ?? ['approve'])];
  const deviceCodes = new Set<string>();
  const refreshTokens = new Set<string>();
  const log: OAuthServer['log'] = [];
  const issued: string[] = [];
  let port = 0;

  const issue = (withRefresh: boolean) => {
    const access = token('at');
    issued.push(access);
    o.onIssue?.(access);
    const body: Record<string, unknown> = { access_token: access, token_type: 'Bearer', expires_in: o.accessTokenLifetime ?? 3600, scope: 'imap' };
    if (withRefresh) {
      const refresh = token('rt');
      refreshTokens.add(refresh);
      body.refresh_token = refresh;
    }
    return body;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const answer = (status: number, body: Record<string, unknown>) => {
        log.push({ path: req.url ?? '', ...(form.get('grant_type') ? { grant: form.get('grant_type')! } : {}), answer: status === 200 ? 'ok' : String(body.error), at: Date.now() });
        res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'POST') return answer(405, { error: 'invalid_request' });
      if (form.get('client_id') !== clientId) return answer(401, { error: 'invalid_client', error_description: 'unknown client' });
      if (req.url === '/devicecode') {
        const code = token('dc');
        deviceCodes.add(code);
        return answer(200, { device_code: code, user_code: 'WDJB-MJHT', verification_uri: `http://127.0.0.1:${port}/device`, expires_in: o.deviceExpiresIn ?? 600, interval: o.interval ?? 1 });
      }
      if (req.url !== '/token') return answer(404, { error: 'invalid_request' });
      const grant = form.get('grant_type');
      if (grant === 'urn:ietf:params:oauth:grant-type:device_code') {
        if (!deviceCodes.has(form.get('device_code') ?? '')) return answer(400, { error: 'invalid_grant', error_description: 'unknown device code' });
        const step = steps.shift() ?? 'pending';
        if (step === 'pending') return answer(400, { error: 'authorization_pending' });
        if (step === 'slow_down') return answer(400, { error: 'slow_down' });
        if (step === 'expired') return answer(400, { error: 'expired_token', error_description: 'the device code has expired' });
        if (step === 'denied') return answer(400, { error: 'access_denied', error_description: 'the user declined' });
        deviceCodes.delete(form.get('device_code')!);
        return answer(200, issue(true));
      }
      if (grant === 'refresh_token') {
        const rt = form.get('refresh_token') ?? '';
        if (!refreshTokens.has(rt)) return answer(400, { error: 'invalid_grant', error_description: 'the refresh token is revoked or expired' });
        if (o.rotateRefreshTokens) refreshTokens.delete(rt);
        return answer(200, issue(!!o.rotateRefreshTokens));
      }
      return answer(400, { error: 'unsupported_grant_type' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
  return {
    port,
    deviceEndpoint: `http://127.0.0.1:${port}/devicecode`,
    tokenEndpoint: `http://127.0.0.1:${port}/token`,
    log,
    issued,
    liveRefreshTokens: () => [...refreshTokens],
    revokeAll: () => refreshTokens.clear(),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
