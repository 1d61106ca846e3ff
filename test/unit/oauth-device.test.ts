/**
 * OAuth 2.0 sign-in against a local test authorization server (real HTTP on loopback): the device
 * flow's polling rules (interval, authorization_pending, slow_down +5 s, expired_token, the code's
 * lifetime, access_denied), the refresh grant (rotation, revocation), the credentials file (0600,
 * atomic, unsafe files refused) and the refreshing token source (before expiry, on a refused token,
 * one refresh at a time). Waits are recorded instead of slept where the test is about them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pollForToken, providerEndpoints, refreshAccessToken, requestDeviceCode } from '../../src/core/oauth-device.js';
import { readCredentials, tokenFromCredentials, writeCredentials, type OAuthCredentials } from '../../src/core/oauth-credentials.js';
import { scrub } from '../../src/core/redact.js';
import { startOAuthServer, type OAuthServer } from '../helpers/oauth-server.js';

let dir: string;
const servers: OAuthServer[] = [];
before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'mm-oauth-unit-'))));
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
});
const server = async (o: Parameters<typeof startOAuthServer>[0]) => {
  const s = await startOAuthServer(o);
  servers.push(s);
  return s;
};
const client = { clientId: 'mm-test-client' };

/** Runs the device flow with recorded waits (no real sleeping) and a clock that moves with them. */
async function deviceFlow(s: OAuthServer) {
  const device = await requestDeviceCode(s.deviceEndpoint, client, ['imap', 'offline_access']);
  const waits: number[] = [];
  let clock = 1_000_000;
  const result = pollForToken({ tokenEndpoint: s.tokenEndpoint, client, device, now: () => clock, sleep: async (ms) => void (waits.push(ms), (clock += ms)) });
  return { device, waits, result };
}

test('device flow: pending and slow_down then success; each slow_down adds 5 s to the interval', async () => {
  const s = await server({ deviceSteps: ['pending', 'pending', 'slow_down', 'pending', 'approve'], interval: 2 });
  const { device, waits, result } = await deviceFlow(s);
  assert.equal(device.userCode, 'WDJB-MJHT');
  assert.match(device.verificationUri, /^http:\/\/127\.0\.0\.1:\d+\/device$/);
  const set = await result;
  assert.deepEqual(waits, [2000, 2000, 2000, 7000, 7000]);
  assert.equal(set.accessToken, s.issued[0]);
  assert.ok(set.refreshToken && s.liveRefreshTokens().includes(set.refreshToken));
  assert.deepEqual(s.log.filter((l) => l.path === '/token').map((l) => l.answer), ['authorization_pending', 'authorization_pending', 'slow_down', 'authorization_pending', 'ok']);
});

test('device flow: expired_token, a code past its lifetime, and access_denied are documented errors', async () => {
  const expired = await deviceFlow(await server({ deviceSteps: ['pending', 'expired'] }));
  await assert.rejects(expired.result, (e: Error & { code?: string }) => e.code === 'MM-OAUTH-DEVICE-EXPIRED' && /WDJB-MJHT expired/.test(e.message));
  // The server never says so, but the code's 5 s lifetime passes: no poll after the deadline.
  const lifetime = await deviceFlow(await server({ deviceSteps: [], interval: 2, deviceExpiresIn: 5 }));
  await assert.rejects(lifetime.result, { code: 'MM-OAUTH-DEVICE-EXPIRED' });
  assert.deepEqual(lifetime.waits, [2000, 2000]);
  const denied = await deviceFlow(await server({ deviceSteps: ['denied'] }));
  await assert.rejects(denied.result, (e: Error & { code?: string }) => e.code === 'MM-OAUTH-DENIED' && /access_denied \(the user declined\)/.test(e.message));
  const s = await server({});
  await assert.rejects(requestDeviceCode(s.deviceEndpoint, { clientId: 'someone-else' }, ['imap']), (e: Error & { code?: string }) => e.code === 'MM-OAUTH-FAILED' && /invalid_client/.test(e.message));
});

test('refresh grant: a rotated refresh token replaces the old one; a revoked one is MM-OAUTH-REVOKED', async () => {
  const s = await server({ rotateRefreshTokens: true });
  const first = await (await deviceFlow(s)).result;
  const second = await refreshAccessToken(s.tokenEndpoint, client, first.refreshToken!, undefined);
  assert.notEqual(second.refreshToken, first.refreshToken);
  await assert.rejects(refreshAccessToken(s.tokenEndpoint, client, first.refreshToken!, undefined), { code: 'MM-OAUTH-REVOKED' });
  s.revokeAll();
  await assert.rejects(refreshAccessToken(s.tokenEndpoint, client, second.refreshToken!, undefined), { code: 'MM-OAUTH-REVOKED' });
});

test('endpoints: the providers\' by default, overridable, and only https or loopback http', () => {
  assert.match(providerEndpoints('microsoft', 'example.org', {}, {}).tokenEndpoint, /^https:\/\/login\.microsoftonline\.com\/example\.org\/oauth2\/v2\.0\/token$/);
  assert.ok(providerEndpoints('microsoft', undefined, {}, {}).scopes.includes('offline_access'));
  assert.equal(providerEndpoints('google', undefined, {}, {}).deviceEndpoint, 'https://oauth2.googleapis.com/device/code');
  assert.equal(providerEndpoints('google', undefined, {}, { MAILMOVER_OAUTH_TOKEN_ENDPOINT: 'http://127.0.0.1:9/token' }).tokenEndpoint, 'http://127.0.0.1:9/token');
  assert.throws(() => providerEndpoints('google', undefined, { tokenEndpoint: 'http://auth.example.org/token' }, {}), { code: 'MM-CONFIG-OPTION' });
});

const creds = (s: OAuthServer, refreshToken: string): OAuthCredentials => ({ kind: 'mailmover-oauth', version: 1, provider: 'microsoft', clientId: client.clientId, scopes: ['imap'], tokenEndpoint: s.tokenEndpoint, refreshToken, updatedAt: new Date(0).toISOString() });

test('credentials file: written 0600 whatever the umask, unsafe files refused for reading and writing', async () => {
  const s = await server({});
  const file = path.join(dir, 'c1.json');
  const old = process.umask(0o022);
  try {
    await writeCredentials(file, creds(s, 'rt-secret-value-1'));
  } finally {
    process.umask(old);
  }
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(readCredentials(file).refreshToken, 'rt-secret-value-1');
  assert.equal(scrub('x rt-secret-value-1 y'), 'x *** y', 'the refresh token is a registered secret');
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temporary file left');
  chmodSync(file, 0o640);
  assert.throws(() => readCredentials(file), (e: Error & { code?: string }) => e.code === 'MM-OAUTH-FILE-UNSAFE' && /mode 0640/.test(e.message));
  await assert.rejects(writeCredentials(file, creds(s, 'rt-other')), { code: 'MM-OAUTH-FILE-UNSAFE' });
  const link = path.join(dir, 'c1-link.json');
  chmodSync(file, 0o600);
  symlinkSync(file, link);
  assert.throws(() => readCredentials(link), { code: 'MM-OAUTH-FILE-UNSAFE' });
  const junk = path.join(dir, 'junk.json');
  writeFileSync(junk, '{"kind":"other"}', { mode: 0o600 });
  assert.throws(() => readCredentials(junk), { code: 'MM-OAUTH-FILE' });
  assert.throws(() => readCredentials(path.join(dir, 'missing.json')), { code: 'MM-OAUTH-FILE' });
});

test('token source: cached until shortly before expiry, fresh on demand, one refresh at a time, rotation stored', async () => {
  const s = await server({ rotateRefreshTokens: true, accessTokenLifetime: 600 });
  const first = await (await deviceFlow(s)).result;
  const file = path.join(dir, 'c2.json');
  await writeCredentials(file, creds(s, first.refreshToken!));
  let clock = 5_000_000;
  const get = tokenFromCredentials(file, 'alice', () => clock);
  const [a, b] = await Promise.all([get(false), get(false)]);
  assert.equal(a, b, 'two callers at once share one refresh');
  assert.equal(s.issued.length, 2, 'the device flow and one refresh');
  const rotated = JSON.parse(readFileSync(file, 'utf8')) as OAuthCredentials;
  assert.notEqual(rotated.refreshToken, first.refreshToken, 'the rotated refresh token was stored');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  clock += 500_000; // 100 s before expiry: still more than a tenth of the 600 s lifetime left
  assert.equal(await get(false), a);
  clock += 50_000; // 50 s before expiry: within the last tenth, renewed before it lapses
  const c = await get(false);
  assert.notEqual(c, a);
  const d = await get(true);
  assert.notEqual(d, c, 'fresh (the server refused the token): always a new one');
  assert.equal(s.issued.length, 4);
  // Another process rotated the token in the file: a refused refresh re-reads the file once.
  const other = await refreshAccessToken(s.tokenEndpoint, client, JSON.parse(readFileSync(file, 'utf8')).refreshToken, undefined);
  await writeCredentials(file, creds(s, other.refreshToken!));
  assert.ok((await get(true)).startsWith('at-'));
  s.revokeAll();
  await assert.rejects(get(true), { code: 'MM-OAUTH-REVOKED' });
});
