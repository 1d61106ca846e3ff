/**
 * OAuth 2.0 for signing in to Microsoft 365 and Gmail by IMAP: the device authorization grant
 * (RFC 8628: the user enters a short code on another device) and the refresh token grant
 * (RFC 6749 §6) that keeps access tokens fresh during long runs.
 *
 * Hand-written on Node's fetch rather than with oauth4webapi or openid-client: both grants are a
 * form POST and a JSON answer, and the part that takes care (the polling rules of RFC 8628 §3.5:
 * interval, authorization_pending, slow_down, expiry) would still be ours with either library,
 * which moreover refuse plain-HTTP endpoints unless told otherwise, and the tests' OAuth server
 * is plain HTTP on loopback. Endpoints must be https except on loopback.
 *
 * Nothing here logs or prints a token; every token obtained is registered as a secret by the
 * caller (src/core/oauth-credentials.ts, src/cli/login-command.ts).
 */
import { ERROR_CODES, MigrateError, type ErrorCode } from './errors.js';
import { isLoopbackHost } from './endpoint.js';
import { sleep as realSleep } from './sleep.js';

export type OAuthProviderName = 'microsoft' | 'google';

/** Where a provider's endpoints are and what mailmover asks for. */
export interface OAuthEndpoints {
  deviceEndpoint: string;
  tokenEndpoint: string;
  scopes: string[];
}

/**
 * The providers' endpoints (Microsoft identity platform v2.0, Google OAuth 2.0) and the scopes
 * that allow IMAP. `tenant` is Microsoft's directory (a tenant id or domain; default
 * `organizations`, i.e. work and school accounts). The environment variables
 * MAILMOVER_OAUTH_DEVICE_ENDPOINT and MAILMOVER_OAUTH_TOKEN_ENDPOINT override the URLs (tests,
 * sovereign clouds), and so do explicit `overrides`.
 */
export function providerEndpoints(provider: OAuthProviderName, tenant: string | undefined, overrides: { deviceEndpoint?: string | undefined; tokenEndpoint?: string | undefined } = {}, env: NodeJS.ProcessEnv = process.env): OAuthEndpoints {
  const base =
    provider === 'microsoft'
      ? {
          deviceEndpoint: `https://login.microsoftonline.com/${encodeURIComponent(tenant ?? 'organizations')}/oauth2/v2.0/devicecode`,
          tokenEndpoint: `https://login.microsoftonline.com/${encodeURIComponent(tenant ?? 'organizations')}/oauth2/v2.0/token`,
          scopes: ['https://outlook.office.com/IMAP.AccessAsUser.All', 'offline_access'],
        }
      : { deviceEndpoint: 'https://oauth2.googleapis.com/device/code', tokenEndpoint: 'https://oauth2.googleapis.com/token', scopes: ['https://mail.google.com/'] };
  const deviceEndpoint = overrides.deviceEndpoint ?? env.MAILMOVER_OAUTH_DEVICE_ENDPOINT ?? base.deviceEndpoint;
  const tokenEndpoint = overrides.tokenEndpoint ?? env.MAILMOVER_OAUTH_TOKEN_ENDPOINT ?? base.tokenEndpoint;
  checkEndpoint(deviceEndpoint, 'device authorization endpoint');
  checkEndpoint(tokenEndpoint, 'token endpoint');
  return { deviceEndpoint, tokenEndpoint, scopes: base.scopes };
}

/** An endpoint must be https, or http on loopback (a test server): tokens never travel in clear text. */
export function checkEndpoint(url: string, what: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `The OAuth ${what} "${url}" is not a URL.`, { scope: 'config' });
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackHost(host))) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `The OAuth ${what} "${url}" must be https:// (http:// only on loopback).`, { scope: 'config' });
  }
}

/** The answer of the device authorization endpoint (RFC 8628 §3.2). */
export interface DeviceAuthorization {
  deviceCode: string;
  userCode: string;
  verificationUri: string;
  verificationUriComplete?: string;
  /** Seconds the codes are valid. */
  expiresIn: number;
  /** Seconds between polls (default 5). */
  interval: number;
}

/** A successful token answer. */
export interface TokenSet {
  accessToken: string;
  refreshToken?: string;
  /** Seconds the access token is valid, when the provider said. */
  expiresIn?: number;
  scope?: string;
}

/** The client: its id, and its secret when the provider wants one (Google's device clients do). */
export interface OAuthClient {
  clientId: string;
  clientSecret?: string | undefined;
}

interface FormAnswer {
  status: number;
  body: Record<string, unknown>;
}

async function postForm(url: string, fields: Record<string, string>, signal: AbortSignal | undefined, what: string): Promise<FormAnswer> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: new URLSearchParams(fields).toString(), ...(signal ? { signal } : {}) });
  } catch (err) {
    if (signal?.aborted) throw signal.reason instanceof MigrateError ? signal.reason : new MigrateError(ERROR_CODES.ABORTED, 'Stopped.', { scope: 'mailbox' });
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new MigrateError(ERROR_CODES.OAUTH_FAILED, `The ${what} at ${new URL(url).origin} cannot be reached (${cause}).`, { scope: 'mailbox', retry: 'later', cause: err });
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new MigrateError(ERROR_CODES.OAUTH_FAILED, `The ${what} at ${new URL(url).origin} answered HTTP ${res.status} without a JSON object.`, { scope: 'mailbox' });
  }
  return { status: res.status, body: body as Record<string, unknown> };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined);

/** The provider's error answer as a MigrateError of `code`, with its error and description (never a token). */
function providerError(code: ErrorCode, what: string, body: Record<string, unknown>, status: number): MigrateError {
  const error = str(body.error) ?? `HTTP ${status}`;
  const description = str(body.error_description)?.split(/\r?\n/)[0]?.slice(0, 300);
  return new MigrateError(code, `${what}: the provider answered ${error}${description ? ` (${description})` : ''}.`, { scope: 'mailbox', serverResponse: `${error}${description ? `: ${description}` : ''}` });
}

/** Asks for a device code and a user code (RFC 8628 §3.1). */
export async function requestDeviceCode(endpoint: string, client: OAuthClient, scopes: string[], signal?: AbortSignal): Promise<DeviceAuthorization> {
  const { status, body } = await postForm(endpoint, { client_id: client.clientId, scope: scopes.join(' '), ...(client.clientSecret ? { client_secret: client.clientSecret } : {}) }, signal, 'device authorization endpoint');
  if (status !== 200) throw providerError(ERROR_CODES.OAUTH_FAILED, 'The device code was not given', body, status);
  const deviceCode = str(body.device_code);
  const userCode = str(body.user_code);
  // Google calls it verification_url (its documented name); RFC 8628 says verification_uri.
  const verificationUri = str(body.verification_uri) ?? str(body.verification_url);
  if (!deviceCode || !userCode || !verificationUri) throw new MigrateError(ERROR_CODES.OAUTH_FAILED, 'The device authorization answer lacks device_code, user_code or verification_uri.', { scope: 'mailbox' });
  const complete = str(body.verification_uri_complete);
  return { deviceCode, userCode, verificationUri, ...(complete ? { verificationUriComplete: complete } : {}), expiresIn: num(body.expires_in) ?? 900, interval: num(body.interval) ?? 5 };
}

function tokenSet(body: Record<string, unknown>): TokenSet {
  const accessToken = str(body.access_token);
  if (!accessToken) throw new MigrateError(ERROR_CODES.OAUTH_FAILED, 'The token answer has no access_token.', { scope: 'mailbox' });
  const refreshToken = str(body.refresh_token);
  const expiresIn = num(body.expires_in);
  const scope = str(body.scope);
  return { accessToken, ...(refreshToken ? { refreshToken } : {}), ...(expiresIn ? { expiresIn } : {}), ...(scope ? { scope } : {}) };
}

/** Options of {@link pollForToken}. */
export interface PollOptions {
  tokenEndpoint: string;
  client: OAuthClient;
  device: DeviceAuthorization;
  signal?: AbortSignal;
  /** Waits between polls (tests pass one that records the waits). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** The clock (ms), for the expiry of the device code. */
  now?: () => number;
}

/**
 * Polls the token endpoint until the user has approved (RFC 8628 §3.4, §3.5): waits `interval`
 * seconds before each poll, keeps going on `authorization_pending`, adds 5 seconds to the
 * interval on every `slow_down`, stops with MM-OAUTH-DEVICE-EXPIRED on `expired_token` or once
 * the code's lifetime has passed, and with MM-OAUTH-DENIED on `access_denied`.
 */
export async function pollForToken(o: PollOptions): Promise<TokenSet> {
  const sleep = o.sleep ?? realSleep;
  const now = o.now ?? Date.now;
  const deadline = now() + o.device.expiresIn * 1000;
  let interval = o.device.interval;
  const expired = () => new MigrateError(ERROR_CODES.OAUTH_DEVICE_EXPIRED, `The code ${o.device.userCode} expired before it was entered at ${o.device.verificationUri}; run mailmover login again.`, { scope: 'mailbox' });
  for (;;) {
    if (now() + interval * 1000 > deadline) throw expired();
    await sleep(interval * 1000, o.signal);
    const { status, body } = await postForm(
      o.tokenEndpoint,
      { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: o.device.deviceCode, client_id: o.client.clientId, ...(o.client.clientSecret ? { client_secret: o.client.clientSecret } : {}) },
      o.signal,
      'token endpoint',
    );
    if (status === 200) return tokenSet(body);
    const error = str(body.error);
    if (error === 'authorization_pending') continue;
    if (error === 'slow_down') {
      interval += 5;
      continue;
    }
    if (error === 'expired_token') throw expired();
    if (error === 'access_denied') throw providerError(ERROR_CODES.OAUTH_DENIED, 'The sign-in was declined', body, status);
    throw providerError(ERROR_CODES.OAUTH_FAILED, 'The sign-in failed', body, status);
  }
}

/**
 * A fresh access token for a refresh token (RFC 6749 §6). `invalid_grant` (the refresh token was
 * revoked, expired, or the password changed) is MM-OAUTH-REVOKED; anything else MM-OAUTH-FAILED.
 */
export async function refreshAccessToken(tokenEndpoint: string, client: OAuthClient, refreshToken: string, scopes: string[] | undefined, signal?: AbortSignal): Promise<TokenSet> {
  const { status, body } = await postForm(
    tokenEndpoint,
    { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: client.clientId, ...(client.clientSecret ? { client_secret: client.clientSecret } : {}), ...(scopes?.length ? { scope: scopes.join(' ') } : {}) },
    signal,
    'token endpoint',
  );
  if (status === 200) return tokenSet(body);
  if (str(body.error) === 'invalid_grant') throw providerError(ERROR_CODES.OAUTH_REVOKED, 'The stored sign-in is no longer valid (run mailmover login again)', body, status);
  throw providerError(ERROR_CODES.OAUTH_FAILED, 'A fresh access token was refused', body, status);
}
