/**
 * `mailmover console` over HTTP, without a browser: the access token and session, 401 with no
 * data, CSRF on every non-GET, the security headers, passwords masked, the table of a
 * 5,000-mailbox batch (filtered, searched, sorted, paged) answered in under 100 ms, /metrics,
 * and the listen address checks. The ledger is written by the real Ledger class.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Ledger } from '../../src/state/ledger.js';
import { ControlStore } from '../../src/state/batch-control.js';
import Database from 'better-sqlite3';
import { runCli } from '../helpers/cli.js';
import { startConsole, type RunningConsole } from '../helpers/console.js';

const ROWS = 5000;
const statusOf = (i: number) => (i % 7 === 0 ? 'failed' : i % 5 === 0 ? 'running' : 'complete');

describe('mailmover console API', () => {
  let dir: string;
  let con: RunningConsole;
  let cookie: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-console-api-'));
    const ledger = Ledger.open(path.join(dir, 'state.db'));
    for (let i = 1; i <= ROWS; i++) {
      const s = statusOf(i);
      ledger.recordJob('big', {
        line: i,
        source: `imap://user${i}@old.example.org`,
        destination: `imap://user${i}@new.example.org`,
        status: s,
        ...(s === 'failed' ? { code: 'MM-AUTH-FAILED', message: `Login as "user${i}" was refused` } : {}),
        copied: i % 100,
        skipped: i % 3,
        ...(s === 'running' ? { toCopy: 100 } : {}),
        seconds: i % 50,
      });
    }
    // A row whose URL carries a password (an old version wrote it so): never shown.
    ledger.recordJob('secret', { line: 1, source: 'imap://alice:Hunter2secret@old.example.org', destination: 'imap://alice@new.example.org', status: 'failed', code: 'MM-AUTH-FAILED', message: 'imap://alice:Hunter2secret@old.example.org refused', copied: 0, skipped: 0 });
    ledger.close();
    // How `batch run` recorded the batch: the console's retry gives the command that reruns it.
    const control = await ControlStore.open(path.join(dir, 'state.db'));
    await control.recordRun({ batch: 'big', listFile: path.join(dir, 'users list.csv'), configFile: path.join(dir, 'servers.yaml'), reportDir: path.join(dir, 'reports'), queued: false });
    await control.close();
    con = await startConsole(['--state', path.join(dir, 'state.db')]);
    cookie = await con.login();
  });
  after(async () => {
    await con?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const api = (p: string, init: RequestInit = {}) => fetch(con.base + p.replace(/^\//, ''), { ...init, headers: { cookie, ...(init.headers as Record<string, string>) } });

  test('without the token: 401 and no data, page and API alike; the token is exchanged for a session cookie and leaves the URL', async () => {
    for (const p of ['', 'api/batches', 'api/batches/big/mailboxes', 'metrics', 'app/main.js', 'api/events']) {
      const res = await fetch(con.base + p);
      const body = await res.text();
      assert.equal(res.status, 401, p);
      assert.ok(!/user\d|big|mailmover_/.test(body), `${p}: ${body}`);
      assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'.*frame-ancestors 'none'/);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    }
    assert.equal((await fetch(`${con.base}?token=wrong${con.token}`)).status, 401);
    assert.equal((await fetch(con.base, { headers: { cookie: 'mm_console=made-up' } })).status, 401);
    const ex = await fetch(con.url, { redirect: 'manual' });
    assert.equal(ex.status, 303);
    assert.equal(ex.headers.get('location'), '/');
    assert.match(ex.headers.get('set-cookie')!, /^mm_console=[^;]+;.*HttpOnly/i);
    assert.match(ex.headers.get('set-cookie')!, /SameSite=Strict/i);
    assert.ok(!ex.headers.get('set-cookie')!.includes(con.token), 'the cookie is a session id, not the token');
    const page = await api('/');
    assert.equal(page.status, 200);
    assert.ok(!/<script>|<style|\sstyle=|\son\w+=/.test(await page.text()), 'no inline script or style');
    assert.equal((await fetch(con.base + 'api/batches', { headers: { authorization: `Bearer ${con.token}` } })).status, 200);
  });

  test('a POST without the session CSRF token is refused (403), with it the request passes the check', async () => {
    assert.equal((await api('/api/batches', { method: 'POST' })).status, 403);
    assert.equal((await api('/api/batches', { method: 'POST', headers: { 'x-csrf-token': 'guess' } })).status, 403);
    assert.equal((await fetch(con.base + 'api/batches', { method: 'POST', headers: { authorization: `Bearer ${con.token}` } })).status, 403, 'a bearer token alone allows no action');
    const { csrf } = (await (await api('/api/session')).json()) as { csrf: string };
    assert.equal((await api('/api/batches', { method: 'POST', headers: { 'x-csrf-token': csrf } })).status, 404, 'no action exists yet');
  });

  test('5,000 mailboxes: counts per status, and a filtered, searched, sorted page in under 100 ms', async () => {
    const all = Array.from({ length: ROWS }, (_, k) => k + 1);
    const { batches } = (await (await api('/api/batches')).json()) as { batches: { name: string; mailboxes: number; statuses: Record<string, number>; copied: number; toCopy: number | null; finishedAt: string | null }[] };
    const big = batches.find((b) => b.name === 'big')!;
    assert.equal(big.mailboxes, ROWS);
    for (const s of ['failed', 'running', 'complete']) assert.equal(big.statuses[s], all.filter((i) => statusOf(i) === s).length, s);
    assert.equal(big.copied, all.reduce((n, i) => n + (i % 100), 0));
    assert.equal(big.toCopy, all.reduce((n, i) => n + (statusOf(i) === 'running' ? 100 : statusOf(i) === 'complete' ? i % 100 : 0), 0) + all.filter((i) => statusOf(i) === 'failed').reduce((n, i) => n + (i % 100), 0));
    assert.equal(big.finishedAt, null, 'mailboxes are still running');

    const query = 'api/batches/big/mailboxes?status=failed&q=USER4&sort=copied&dir=desc&offset=10&limit=50';
    const expected = all.filter((i) => statusOf(i) === 'failed' && String(i).startsWith('4')).sort((a, b) => (b % 100) - (a % 100) || a - b);
    const times: number[] = [];
    let page: { total: number; matched: number; rows: { line: number; user: string; code: string }[] } | undefined;
    for (let k = 0; k < 7; k++) {
      const t0 = performance.now();
      const res = await api(query);
      page = (await res.json()) as typeof page;
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const median = times[3]!;
    process.stderr.write(`console: a page of the ${ROWS}-mailbox table answered in ${median.toFixed(1)} ms (median of 7; all: ${times.map((t) => t.toFixed(0)).join(', ')})\n`);
    assert.ok(median < 100, `median ${median} ms`);
    assert.equal(page!.total, ROWS);
    assert.equal(page!.matched, expected.length);
    assert.deepEqual(page!.rows.map((r) => r.line), expected.slice(10, 60));
    assert.equal(page!.rows[0]!.code, 'MM-AUTH-FAILED');
    const bad = await api('api/batches/big/mailboxes?sort=nope');
    assert.equal(bad.status, 400);
  });

  test('no password reaches the API; /metrics reads the ledger', async () => {
    const text = await (await api('api/batches/secret/mailboxes')).text();
    assert.ok(!text.includes('Hunter2secret'), text);
    assert.match(text, /alice:\*\*\*@old/);
    const detail = await (await api('api/batches/secret/mailboxes/1')).text();
    assert.ok(!detail.includes('Hunter2secret'));
    const metrics = await (await fetch(con.base + 'metrics', { headers: { authorization: `Bearer ${con.token}` } })).text();
    const failed = Array.from({ length: ROWS }, (_, k) => k + 1).filter((i) => statusOf(i) === 'failed').length;
    assert.match(metrics, new RegExp(`mailmover_batch_mailboxes\\{batch="big",status="failed"\\} ${failed}\\n`));
    assert.match(metrics, /mailmover_ledger_up 1\n/);
  });

  test('listening elsewhere than loopback needs TLS or --insecure-http; a bad --listen or half a TLS pair is refused', async () => {
    const open = await runCli(['console', '--state', path.join(dir, 'state.db'), '--listen', '0.0.0.0:0']);
    assert.equal(open.code, 2);
    assert.match(open.stderr, /MM-CONFIG-OPTION: --listen 0\.0\.0\.0:0 is reachable from other machines.*--tls-cert FILE --tls-key FILE, or --insecure-http/);
    assert.match((await runCli(['console', '--listen', 'nowhere'])).stderr, /MM-CONFIG-OPTION: --listen "nowhere" is not ADDR:PORT/);
    assert.match((await runCli(['console', '--tls-cert', path.join(dir, 'c.pem')])).stderr, /MM-CONFIG-OPTION: --tls-cert and --tls-key go together/);
    await writeFile(path.join(dir, 'short-token'), 'abc\n');
    assert.match((await runCli(['console', '--token-file', path.join(dir, 'short-token')])).stderr, /MM-CONFIG-OPTION: --token-file .* at least 16 characters/);
    const busy = await runCli(['console', '--state', path.join(dir, 'state.db'), '--listen', `127.0.0.1:${new URL(con.base).port}`]);
    assert.equal(busy.code, 2);
    assert.match(busy.stderr, /MM-CONSOLE-LISTEN: .*the port is in use/);
    // The worker's metrics: loopback unless --metrics-public, checked before anything connects.
    const metrics = await runCli(['worker', '--queue', 'postgres://nobody@127.0.0.1:1/none', '--metrics', '0.0.0.0:9464', '--no-log']);
    assert.equal(metrics.code, 2);
    assert.match(metrics.stderr, /MM-CONFIG-OPTION: --metrics 0\.0\.0\.0:9464 is reachable from other machines/);
  });

  test('a local batch: retry is recorded with who and when and answers the exact command to run; pause is refused (409); nothing runs', async () => {
    const csrf = ((await (await api('api/session')).json()) as { csrf: string }).csrf;
    const before = await (await api('api/batches/big/mailboxes?status=failed&limit=1')).json() as { matched: number };
    const retry = await api('api/batches/big/actions/retry', { method: 'POST', headers: { 'x-csrf-token': csrf } });
    assert.equal(retry.status, 200);
    const { result } = (await retry.json()) as { result: { mailboxes: number; command: string; note?: string } };
    assert.equal(result.mailboxes, before.matched);
    assert.equal(result.command, `mailmover batch run '${path.join(dir, 'users list.csv')}' --config ${path.join(dir, 'servers.yaml')} --state ${path.join(dir, 'state.db')} --name big --report-dir ${path.join(dir, 'reports')}`);
    assert.equal(result.note, undefined);
    const info = (await (await api('api/batches/big/actions')).json()) as { mode: string; state: string; actions: { action: string; operator: string; at: string; mailboxes: number; note: string }[] };
    assert.equal(info.mode, 'local');
    assert.deepEqual(info.actions.map((a) => [a.action, a.operator, a.mailboxes, a.note]), [['retry', os.userInfo().username, before.matched, result.command]]);
    assert.ok(Math.abs(Date.parse(info.actions[0]!.at) - Date.now()) < 60_000);
    const db = new Database(path.join(dir, 'state.db'), { readonly: true });
    try {
      assert.equal((db.prepare("SELECT count(*) AS n FROM batch_job WHERE batch = 'big' AND status = 'failed'").get() as { n: number }).n, before.matched, 'no mailbox changed');
    } finally {
      db.close();
    }
    const pause = await api('api/batches/big/actions/pause', { method: 'POST', headers: { 'x-csrf-token': csrf } });
    assert.equal(pause.status, 409);
    assert.match(((await pause.json()) as { error: { code: string; message: string } }).error.code, /^MM-CONSOLE-ACTION$/);
    assert.equal((await api('api/batches/big/actions/retry', { method: 'POST' })).status, 403, 'no action without the CSRF token');
    assert.equal((await api('api/batches/big/actions/explode', { method: 'POST', headers: { 'x-csrf-token': csrf } })).status, 400);
  });

  test('a session expires (--session-hours): the cookie carries its Max-Age, and an expired one is refused with 401', async () => {
    const short = await startConsole(['--state', path.join(dir, 'state.db'), '--session-hours', '0.0005']);
    try {
      const ex = await fetch(short.url, { redirect: 'manual' });
      assert.match(ex.headers.get('set-cookie')!, /Max-Age=1(;|$)/i);
      const cookie2 = /^(mm_console=[^;]+)/.exec(ex.headers.get('set-cookie')!)![1]!;
      assert.equal((await fetch(short.base + 'api/batches', { headers: { cookie: cookie2 } })).status, 200);
      await new Promise((r) => setTimeout(r, 2200));
      const expired = await fetch(short.base + 'api/batches', { headers: { cookie: cookie2 } });
      assert.equal(expired.status, 401);
      assert.ok(!(await expired.text()).includes('big'));
      assert.equal((await fetch(con.base + 'api/batches', { headers: { cookie } })).status, 200, 'the 12-hour session of the other console still holds');
    } finally {
      await short.stop();
    }
  });
});
