/**
 * `mailmover login` and `--from-oauth` end to end, against a local test OAuth server (real HTTP on
 * loopback), the scripted IMAP server (Microsoft-style XOAUTH2) as source and a real Dovecot as
 * destination: the device flow prints the code and stores a 0600 file; during a migrate the IMAP
 * server stops accepting the access token, mailmover gets a new one from the refresh token (which
 * the provider rotates, and mailmover stores) and the run completes; a revoked refresh token is
 * MM-OAUTH-REVOKED with exit 4. No token ever appears in stdout, stderr, the log or the report.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';
import { startScriptedImap, type Personality, type ScriptedImapServer } from '../helpers/scripted-imap/server.js';
import { PERSONALITIES } from '../helpers/scripted-imap/personalities.js';
import { startOAuthServer, type OAuthServer } from '../helpers/oauth-server.js';
import { startPostgres } from '../helpers/postgres.js';
import { spawn } from 'node:child_process';
import { CLI } from '../helpers/cli.js';

const withXoauth2 = (p: Personality): Personality => {
  const add = (caps: string[]) => caps.flatMap((c) => (c === 'AUTH=PLAIN' ? [c, 'AUTH=XOAUTH2'] : [c]));
  return { ...p, name: `${p.name}+oauth`, capabilities: add(p.capabilities), ...(p.capabilitiesAfterLogin ? { capabilitiesAfterLogin: add(p.capabilitiesAfterLogin) } : {}) };
};
const messages = Array.from({ length: 8 }, (_, i) => ({
  raw: Buffer.from(`From: o@example.org\r\nSubject: login ${i}\r\nMessage-ID: <login-${i}@x>\r\n\r\nbody ${i}\r\n`),
  flags: i % 2 ? ['\\Seen'] : [],
  internalDate: new Date(Date.UTC(2024, 1, 1 + i)),
  uid: i + 1,
}));
const env = (o: OAuthServer) => ({ MAILMOVER_OAUTH_DEVICE_ENDPOINT: o.deviceEndpoint, MAILMOVER_OAUTH_TOKEN_ENDPOINT: o.tokenEndpoint });
const login = (out: string) => ['login', '--provider', 'microsoft', '--client-id', 'mm-test-client', '--out', out];

describe('mailmover login and --from-oauth', () => {
  let dest: PlainDovecotServer;
  let dir: string;
  const stops: (() => Promise<void>)[] = [];
  before(async () => {
    dest = await startDovecot({ tls: false });
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-oauth-login-'));
  });
  after(async () => {
    await Promise.all([dest?.stop(), ...stops.map((s) => s())]);
    await rm(dir, { recursive: true, force: true });
  });
  const oauthServer = async (o: Parameters<typeof startOAuthServer>[0]) => {
    const s = await startOAuthServer(o);
    stops.push(() => s.stop());
    return s;
  };

  test('login: prints the code, polls through authorization_pending, stores a 0600 file; no token printed', async () => {
    const o = await oauthServer({ deviceSteps: ['pending', 'approve'], interval: 1 });
    const out = path.join(dir, 'a.json');
    const run = await runCli(login(out), env(o));
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /open http:\/\/127\.0\.0\.1:\d+\/device in a browser .* enter the code WDJB-MJHT/);
    assert.equal((await stat(out)).mode & 0o777, 0o600);
    const creds = JSON.parse(await readFile(out, 'utf8')) as { refreshToken: string; tokenEndpoint: string; provider: string };
    assert.deepEqual([creds.provider, creds.tokenEndpoint], ['microsoft', o.tokenEndpoint]);
    assert.ok(o.liveRefreshTokens().includes(creds.refreshToken));
    for (const secret of [creds.refreshToken, ...o.issued]) assert.ok(!(run.stdout + run.stderr).includes(secret), 'no token in the output');
  });

  test('login: an --out file others can read is refused before the flow starts; a declined sign-in is exit 4', async () => {
    const o = await oauthServer({ deviceSteps: ['denied'], interval: 1 });
    const open = path.join(dir, 'open.json');
    await writeFile(open, '{}', { mode: 0o644 });
    const unsafe = await runCli(login(open), env(o));
    assert.equal(unsafe.code, 2, unsafe.stderr);
    assert.match(unsafe.stderr, /MM-OAUTH-FILE-UNSAFE: .*mode 0644/);
    assert.equal(o.log.length, 0, 'nothing was asked of the provider');
    const denied = await runCli(login(path.join(dir, 'denied.json')), env(o));
    assert.equal(denied.code, 4, denied.stderr);
    assert.match(denied.stderr, /MM-OAUTH-DENIED/);
  });

  test('migrate --from-oauth: the access token is replaced mid-run, the rotated refresh token stored; then revoked is MM-OAUTH-REVOKED', async () => {
    // The IMAP server starts after the OAuth server, which tells it each access token it issues.
    const imap: { server?: ScriptedImapServer } = {};
    const o = await oauthServer({ deviceSteps: ['approve'], interval: 1, rotateRefreshTokens: true, onIssue: (t) => imap.server?.setTokens('alice', [t]) });
    const out = path.join(dir, 'm.json');
    assert.equal((await runCli(login(out), env(o))).code, 0);
    const loggedIn = JSON.parse(await readFile(out, 'utf8')) as { refreshToken: string };
    let accepted = 0;
    const source = await startScriptedImap({
      personality: withXoauth2(PERSONALITIES.exchange),
      users: { alice: { password: 'not-used', folders: [{ name: 'INBOX', subscribed: true, messages }, { name: 'Archive', subscribed: true, messages }] } },
      // After the first accepted login the provider "expires" that access token at the server:
      // the next login with it is refused, and only a refreshed token gets in.
      onOauth: (_user, ok) => {
        if (ok && ++accepted === 1) imap.server!.setTokens('alice', []);
      },
      // The first connection is cut once it starts reading bodies (after the listing, 8 commands), so
      // the run has to log in again in the middle of a folder.
      faults: { alice: { byeAfterCommands: { count: 8, text: 'Server restarting', times: 1 } } },
    });
    imap.server = source;
    stops.push(() => source.stop());
    await dest.addUser('m1', 'dst-pw');
    const report = path.join(dir, 'm-report.json');
    const log = path.join(dir, 'm.log');
    const args = ['migrate', '--from', `imap://alice@127.0.0.1:${source.port}`, '--from-oauth', out, '--to', `imap://m1@127.0.0.1:${dest.port}`, '--connections', '2', '--no-state', '--report', report, '--log', log];
    const run = await runCli(args, { MAILMOVER_TO_PASSWORD: 'dst-pw' });
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const got = await readMailbox(dest, 'm1', 'dst-pw');
    for (const name of ['INBOX', 'Archive']) {
      const f = got.find((x) => x.path.join('/') === name)!;
      assert.deepEqual(f.messages.map((m) => m.sha256).sort(), messages.map((m) => createHash('sha256').update(m.raw).digest('hex')).sort(), name);
    }
    const outcomes = source.log.filter((l) => /Bearer \*\*\*/.test(l)).map((l) => (/accepted/.test(l) ? 'accepted' : 'rejected'));
    assert.equal(outcomes[0], 'accepted');
    assert.ok(outcomes.indexOf('rejected') > 0 && outcomes.lastIndexOf('accepted') > outcomes.indexOf('rejected'), outcomes.join(' '));
    assert.ok(o.issued.length >= 3, `access tokens issued: ${o.issued.length}`);
    const after = JSON.parse(await readFile(out, 'utf8')) as { refreshToken: string };
    assert.notEqual(after.refreshToken, loggedIn.refreshToken, 'the rotated refresh token was stored');
    assert.ok(o.liveRefreshTokens().includes(after.refreshToken), 'the stored refresh token is the live one');
    assert.equal((await stat(out)).mode & 0o777, 0o600);
    const texts = run.stdout + run.stderr + (await readFile(log, 'utf8')) + (await readFile(report, 'utf8'));
    for (const secret of [loggedIn.refreshToken, after.refreshToken, ...o.issued]) assert.ok(!texts.includes(secret), 'no token in stdout, stderr, log or report');

    o.revokeAll();
    const revoked = await runCli(args, { MAILMOVER_TO_PASSWORD: 'dst-pw' });
    assert.equal(revoked.code, 4, revoked.stderr + revoked.stdout);
    assert.match(revoked.stderr, /MM-OAUTH-REVOKED: .*invalid_grant/);
    assert.match(revoked.stderr, /mailmover login again/);
  });

  test('worker --from-oauth: a queued mailbox of an OAuth source is copied by a worker that signs in from the credentials file', { timeout: 150_000 }, async () => {
    const imap: { server?: ScriptedImapServer } = {};
    const o = await oauthServer({ deviceSteps: ['approve'], interval: 1, rotateRefreshTokens: true, onIssue: (t) => imap.server?.setTokens('alice', [t]) });
    const out = path.join(dir, 'w.json');
    assert.equal((await runCli(login(out), env(o))).code, 0);
    const source = await startScriptedImap({
      personality: withXoauth2(PERSONALITIES.exchange),
      users: { alice: { password: 'not-used', folders: [{ name: 'INBOX', subscribed: true, messages }] } },
    });
    imap.server = source;
    stops.push(() => source.stop());
    const db = await startPostgres();
    stops.push(() => db.stop());
    const queue = await db.createDatabase('oauth_queue');
    await dest.addUser('w1', 'dst-pw');
    // The configuration names a credentials file whose refresh token the provider does not know:
    // only the worker's --from-oauth (which replaces it) can sign in.
    const stale = path.join(dir, 'w-stale.json');
    await writeFile(stale, JSON.stringify({ ...(JSON.parse(await readFile(out, 'utf8')) as object), refreshToken: 'stale-refresh-token' }), { mode: 0o600 });
    await writeFile(path.join(dir, 'w-servers.yaml'), ['source:', `  url: imap://127.0.0.1:${source.port}`, `  oauth: { credentials: ${JSON.stringify(stale)} }`, 'destination:', `  url: imap://127.0.0.1:${dest.port}`, '  master: { user: admin, password: env:MM_MASTER }', 'defaults: { connections: 1, retries: 1, retryDelaySeconds: 0.02 }', ''].join('\n'));
    await writeFile(path.join(dir, 'w-users.csv'), 'source_user,destination_user\nalice,w1\n');
    const batch = runCli(['batch', 'run', path.join(dir, 'w-users.csv'), '--config', path.join(dir, 'w-servers.yaml'), '--queue', queue, '--report-dir', path.join(dir, 'w-reports'), '--json', '--no-log'], { MM_MASTER: 'adminpw', ...env(o) }, 120_000);
    let workerErr = '';
    const worker = spawn(process.execPath, [CLI, 'worker', '--queue', queue, '--from-oauth', out, '--report-dir', path.join(dir, 'w-worker'), '--no-log'], { env: { ...process.env, MM_MASTER: 'adminpw', ...env(o) }, stdio: ['ignore', 'ignore', 'pipe'] });
    worker.stderr!.on('data', (d: Buffer) => (workerErr += d.toString()));
    try {
      const r = await batch;
      assert.equal(r.code, 0, r.stderr + r.stdout + workerErr);
      assert.equal((JSON.parse(r.stdout) as { status: string }).status, 'complete');
    } finally {
      worker.kill('SIGTERM');
    }
    const got = await readMailbox(dest, 'w1', 'dst-pw');
    assert.deepEqual(got.find((x) => x.path.join('/') === 'INBOX')!.messages.map((m) => m.sha256).sort(), messages.map((m) => createHash('sha256').update(m.raw).digest('hex')).sort());
    assert.ok(source.log.some((l) => /Bearer \*\*\*: accepted/.test(l)), 'the worker signed in with an access token');
    const after = JSON.parse(await readFile(out, 'utf8')) as { refreshToken: string };
    assert.ok(o.liveRefreshTokens().includes(after.refreshToken), 'the stored refresh token is the live one');
    for (const secret of [after.refreshToken, ...o.issued]) assert.ok(!workerErr.includes(secret), 'no token on the worker\'s stderr');
  });
});
