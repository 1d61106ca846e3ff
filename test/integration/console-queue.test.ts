/**
 * The console over a queued batch (PostgreSQL, pg-boss, two `mailmover worker` processes, real
 * Dovecots), in Chromium: 50 mailboxes, three of them with a wrong password (in files the workers
 * read) and one with a message file Dovecot cannot read. The page is watched while it runs:
 * progress rises, statuses arrive, the failed rows show their code and its explanation, the
 * corrupt item's detail shows Dovecot's own words, the workers page lists both workers alive.
 * Then the passwords are fixed and "Retry failed" is clicked (a dialog confirms it): the failed
 * mailboxes are queued again through pg-boss and complete, their mail arrives, and the action is
 * in the batch's history with the operator's name. A second, throttled batch is paused (workers
 * finish the mailboxes in flight and take no other), resumed and cancelled from the page. A
 * worker's --metrics are scraped. The throughput chart (uPlot) is drawn from the progress samples.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { readMailbox, seedMailbox, type FixtureFolder } from '../helpers/fixture.js';
import { CLI, runCli } from '../helpers/cli.js';
import { startConsole, type RunningConsole } from '../helpers/console.js';
import { parseErrorDocs } from '../../src/console/error-docs.js';

const GOOD = 47;
const BAD = ['bad1', 'bad2', 'bad3'];
const SLOW = 10;
const name = (i: number) => `c${String(i).padStart(2, '0')}`;
const OPERATOR = 'ops-alice';
const IMAGES = new URL('../../docs/images/', import.meta.url);

const box = (user: string, n: number): FixtureFolder[] => [
  {
    path: ['INBOX'],
    subscribed: true,
    messages: Array.from({ length: n }, (_, k) => ({
      raw: Buffer.from(`From: q@example.org\r\nSubject: ${user} ${k}\r\nMessage-ID: <${user}-${k}@console-queue.test>\r\n\r\nbody ${k}\r\n`),
      flags: k ? ['\\Seen'] : [],
      internalDate: new Date(Date.UTC(2024, 1, 1 + k)),
    })),
  },
];

const until = async (what: string, check: () => Promise<boolean>, ms = 90_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
};

describe('the console steering a queued batch (PostgreSQL, two workers, real Dovecots, Chromium)', () => {
  let source: PlainDovecotServer;
  let dest: PlainDovecotServer;
  let db: PostgresServer;
  let url: string;
  let dir: string;
  let con: RunningConsole;
  let browser: Browser;
  let page: Page;
  let sql: pg.Client;
  const workers: ChildProcess[] = [];
  const logs: string[] = [];
  const dialogs: string[] = [];
  const violations: string[] = [];

  before(async () => {
    [source, dest, db] = await Promise.all([startDovecot({ tls: false }), startDovecot({ tls: false }), startPostgres()]);
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-console-queue-'));
    const users = [...Array.from({ length: GOOD }, (_, i) => name(i + 1)), ...BAD, ...Array.from({ length: SLOW }, (_, i) => `s${i + 1}`)];
    await Promise.all(users.flatMap((u) => [source.addUser(u, `pw-${u}`), dest.addUser(u, `pw-${u}`)]));
    const launching = chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
    for (let i = 0; i < users.length; i += 20) await Promise.all(users.slice(i, i + 20).map((u) => seedMailbox(source, u, `pw-${u}`, box(u, u.startsWith('s') ? 6 : 2))));
    // c13: one message file Dovecot cannot read (the mail processes are not root): a skipped item in its words.
    for (const entry of await readdir(source.homeOf(name(13)), { recursive: true, withFileTypes: true })) {
      const file = path.join(entry.parentPath, entry.name);
      if (entry.isFile() && /\/cur$/.test(entry.parentPath) && (await readFile(file, 'latin1')).includes(`<${name(13)}-1@console-queue.test>`)) await chmod(file, 0o000);
    }
    const server = (port: number, extra: string[] = []) => [`  url: imap://127.0.0.1:${port}`, '  master: { user: admin, password: env:MASTER }', ...extra];
    const config = (extra: string[]) => ['source:', ...server(source.port, extra), 'destination:', ...server(dest.port), 'defaults: { connections: 1, retries: 1, retryDelaySeconds: 0.02 }', ''].join('\n');
    // Throttled at the source (across both workers) so that the page sees the batch move, and so
    // that its ~93 messages take ~9 s: the throughput chart's buckets are 5 s wide, and at 25 a
    // second a quicker copy engine put the whole batch into one bucket.
    await writeFile(path.join(dir, 'servers.yaml'), config(['  maxMessagesPerSecond: 10']));
    await writeFile(path.join(dir, 'slow.yaml'), config(['  maxMessagesPerSecond: 2']));
    // The bad rows log in as themselves, with a password from a file each worker reads: wrong for now.
    for (const u of BAD) await writeFile(path.join(dir, `${u}.pw`), 'wrong-password\n');
    await writeFile(
      path.join(dir, 'users.csv'),
      ['source_user,destination_user,source_password', ...Array.from({ length: GOOD }, (_, i) => `${name(i + 1)},${name(i + 1)},`), ...BAD.map((u) => `${u},${u},file:${path.join(dir, `${u}.pw`)}`)].join('\n') + '\n',
    );
    await writeFile(path.join(dir, 'slow.csv'), ['source_user', ...Array.from({ length: SLOW }, (_, i) => `s${i + 1}`)].join('\n') + '\n');
    url = await db.createDatabase('console');
    sql = new pg.Client({ connectionString: url });
    await sql.connect();
    browser = await launching;
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
    });
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  });
  after(async () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    await browser?.close();
    await con?.stop();
    await sql?.end().catch(() => undefined);
    await Promise.all([source?.stop(), dest?.stop(), db?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  const startWorker = (k: number, extra: string[] = []) => {
    const w = spawn(process.execPath, [CLI, 'worker', '--queue', url, '--parallel', '4', '--heartbeat', '1', '--report-dir', path.join(dir, `w${k}`), '--maintenance-interval', '1', '--no-log', ...extra], {
      env: { ...process.env, MASTER: 'adminpw' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    logs[k] = '';
    w.stderr!.on('data', (d: Buffer) => (logs[k] += d.toString()));
    workers.push(w);
    return w;
  };
  const runBatch = (list: string, config: string, batch: string) =>
    runCli(['batch', 'run', path.join(dir, list), '--config', path.join(dir, config), '--queue', url, '--name', batch, '--report-dir', path.join(dir, `${batch}-reports`), '--json'], { MASTER: 'adminpw' }, 180_000);
  const count = async (status: string) => Number(((await page.textContent(`#counts [data-status="${status}"] dd`, { timeout: 500 }).catch(() => null)) ?? '0').replace(/,/g, ''));
  const rows = async (batch: string) => (await sql.query<{ line: number; source: string; status: string; code: string | null }>('SELECT line, source, status, code FROM mailmover_state.batch_job WHERE batch = $1 ORDER BY line', [batch])).rows;

  test('the page follows the batch: progress rises, statuses arrive, failures explained, the corrupt item in the server\'s words; workers alive; metrics scraped', async (t) => {
    const started = Date.now();
    startWorker(0, ['--metrics', '127.0.0.1:0']);
    startWorker(1);
    con = await startConsole(['--queue', url, '--operator', OPERATOR]);
    await page.goto(con.url);
    const run = runBatch('users.csv', 'servers.yaml', 'main');
    let finished = false;
    void run.then(() => (finished = true));
    const seen: number[] = [];
    const completes: number[] = [];
    await until(
      'the batch finishes on the page',
      async () => {
        if ((await page.textContent('#batch-name', { timeout: 500 }).catch(() => null)) !== 'main') {
          await page.goto(`${con.base}#/batch/main`);
          return false;
        }
        const copied = Number(((await page.textContent('#copied', { timeout: 500 })) ?? '').replace(/,/g, ''));
        if (seen.at(-1) !== copied) seen.push(copied);
        const c = await count('complete');
        if (completes.at(-1) !== c) completes.push(c);
        return finished && (await count('running')) + (await count('queued')) === 0 && (await count('failed')) === BAD.length;
      },
      150_000,
    );
    const result = await run;
    assert.ok(result.stdout.includes('"status"'), result.stderr + logs.join('\n'));
    const seconds = (JSON.parse(result.stdout) as { jobs: { seconds?: number }[] }).jobs.map((j) => j.seconds ?? 0);
    t.diagnostic(`batch of ${seconds.length} mailboxes: ${((Date.now() - started) / 1000).toFixed(1)} s on the page; a mailbox ${(seconds.reduce((a, b) => a + b, 0) / seconds.length).toFixed(2)} s on average`);
    assert.ok(seen.some((v) => v > 0 && v < seen.at(-1)!), `an intermediate number of messages copied was shown: ${seen.join(' ')}`);
    assert.deepEqual([...seen].sort((a, b) => a - b), seen, `it only rose: ${seen.join(' ')}`);
    assert.ok(completes.length >= 3, `complete mailboxes arrived over time: ${completes.join(' ')}`);
    assert.equal(await count('complete'), GOOD - 1);
    assert.equal(await count('partial'), 1);
    const recorded = await rows('main');
    assert.equal(recorded.length, GOOD + BAD.length);

    // The throughput chart (uPlot, served by the console) from the recorded progress samples: all
    // that was copied, over time; the page's script stays small; the CSP refused nothing.
    const [{ copied }] = (await sql.query<{ copied: number }>("SELECT sum(copied)::int AS copied FROM mailmover_state.batch_job WHERE batch = 'main'")).rows as [{ copied: number }];
    await until('the chart shows everything copied', async () => Number(await page.getAttribute('#throughput', 'data-total', { timeout: 500 })) === copied, 20_000);
    assert.equal(await page.locator('#throughput canvas').count() > 0, true, 'uPlot drew the chart');
    const buckets = (await (await page.evaluate(async () => (await fetch('/api/batches/main')).json())) as { throughput: { counts: number[] } }).throughput.counts;
    assert.ok(buckets.filter((n) => n > 0).length >= 2, `the copies are spread over time: ${buckets.join(' ')}`);
    const script = await page.evaluate(() => performance.getEntriesByType('resource').filter((e) => e.name.endsWith('.js')).reduce((a, e) => a + (e as unknown as { decodedBodySize: number }).decodedBodySize, 0));
    assert.ok(script > 50_000 && script < 200_000, `the page's script: ${script} bytes`);
    assert.deepEqual(violations, [], 'no Content-Security-Policy violation');

    // The failed rows: their code, and its explanation from docs/errors.md.
    const failed = page.locator('#mailboxes tbody tr', { has: page.locator('td.status', { hasText: 'failed' }) });
    assert.deepEqual(await failed.locator('td.code').allTextContents(), Array(BAD.length).fill('MM-AUTH-FAILED'));
    await failed.first().locator('td.code a').click();
    await page.waitForSelector('#error-doc .symptom');
    const doc = parseErrorDocs(await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8')).find((d) => d.code === 'MM-AUTH-FAILED')!;
    assert.equal(await page.textContent('#error-doc .cause'), doc.cause.replace(/`/g, ''));

    // The corrupt item: Dovecot's own words in the mailbox's page, as the ledger has them.
    await page.goto(`${con.base}#/batch/main`);
    await page.locator('#mailboxes td.user a', { hasText: name(13) }).click();
    await page.waitForSelector('#mailbox-detail #skipped tbody tr');
    const [reason] = (await sql.query<{ reason: string }>("SELECT s.reason FROM mailmover_state.skipped s JOIN mailmover_state.folder f ON f.id = s.folder_id JOIN mailmover_state.mailbox m ON m.id = f.mailbox_id WHERE m.source LIKE $1", [`%${name(13)}%`])).rows;
    assert.ok(reason, 'the ledger has the skipped item');
    assert.match(reason.reason, /NO|BAD|server|error/i);
    assert.equal(await page.textContent('#skipped tbody tr td:nth-child(4)'), reason.reason);

    // Workers: both alive, with their host and pid.
    await page.goto(`${con.base}#/workers`);
    await page.waitForSelector('#worker-table tbody tr');
    const states = await page.locator('#worker-table tbody tr td:first-child').allTextContents();
    assert.deepEqual(states, ['alive', 'alive']);
    await page.screenshot({ path: new URL('console-workers.png', IMAGES).pathname });
    const pids = (await page.locator('#worker-table tbody tr td:nth-child(3)').allTextContents()).map(Number).sort();
    assert.deepEqual(pids, workers.map((w) => w.pid!).sort());

    // The first worker's metrics: what it copied and finished, and its ledger writes.
    const port = /metrics at http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(logs[0]!)?.[1];
    assert.ok(port, logs[0]);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const value = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? NaN);
    assert.ok(value(/^mailmover_worker_messages_copied_total (\d+)/m) > 0, metrics);
    assert.ok(value(/^mailmover_worker_bytes_copied_total (\d+)/m) > 0);
    const finishedHere = [...metrics.matchAll(/^mailmover_worker_mailboxes_total\{status="(\w+)"\} (\d+)/gm)].reduce((a, m) => a + Number(m[2]), 0);
    assert.ok(finishedHere > 0 && finishedHere < recorded.length, `this worker finished part of the batch: ${finishedHere}`);
    assert.match(metrics, /^mailmover_worker_ledger_write_seconds_count\{kind="\w+"\} [1-9]/m);
    assert.match(metrics, /^mailmover_worker_open_connections\{server="imap:\/\/127\.0\.0\.1:\d+"\} 0$/m);
    assert.ok(!metrics.includes('adminpw') && !metrics.includes('pw-'), 'no secret in the metrics');
  });

  test('retry from the page: the failed mailboxes, fixed, are queued again and complete; the action is recorded with who and when', async () => {
    for (const u of BAD) await writeFile(path.join(dir, `${u}.pw`), `pw-${u}\n`);
    await page.goto(`${con.base}#/batch/main`);
    await page.waitForSelector('#action-buttons [data-action="retry"]:not([disabled])');
    await page.click('#action-buttons [data-action="retry"]');
    await page.waitForSelector('#confirm[open]');
    assert.match((await page.textContent('#confirm-text'))!, /Retry the 4 failed and partial mailboxes of "main"\? They go back to the queue/);
    await page.click('#confirm-yes');
    await page.waitForSelector('#action-answer .done');
    assert.equal(await page.textContent('#action-answer .done'), 'retry: 4 mailboxes.');
    await page.screenshot({ path: new URL('console-actions.png', IMAGES).pathname });
    await until('the retried mailboxes finish', async () => (await count('failed')) === 0 && (await count('queued')) + (await count('running')) === 0 && (await count('complete')) === GOOD - 1 + BAD.length, 90_000);
    for (const u of BAD) assert.deepEqual(await readMailbox(dest, u, `pw-${u}`), await readMailbox(source, u, `pw-${u}`), u);
    const history = page.locator('#history tbody tr');
    assert.equal(await history.count(), 1);
    assert.deepEqual(await history.first().locator('td').allTextContents().then((t) => t.slice(1, 4)), [OPERATOR, 'retry', '4']);
    const [action] = (await sql.query<{ operator: string; action: string; at: Date }>("SELECT operator, action, at FROM mailmover_state.batch_action WHERE batch = 'main'")).rows;
    assert.equal(action?.operator, OPERATOR);
    assert.ok(Date.now() - action!.at.getTime() < 5 * 60_000);
    assert.deepEqual(dialogs, []);
  });

  test('pause, resume and cancel a queued batch from the page; stopped workers shown gone', async () => {
    // The two workers stop (SIGTERM: nothing in hand); the batch is queued with nobody to run it.
    const stopped = workers.slice(0, 2);
    for (const w of stopped) w.kill('SIGTERM');
    await Promise.all(stopped.map((w) => (w.exitCode === null ? new Promise((r) => w.once('exit', r)) : undefined)));
    const run = runBatch('slow.csv', 'slow.yaml', 'slow');
    await until('the batch is queued', async () => (await rows('slow')).filter((r) => r.status === 'queued').length === SLOW, 60_000);
    // One worker, one mailbox at a time, throttled: the batch takes a while.
    const w = spawn(process.execPath, [CLI, 'worker', '--queue', url, '--parallel', '1', '--heartbeat', '1', '--report-dir', path.join(dir, 'w2'), '--maintenance-interval', '1', '--no-log'], {
      env: { ...process.env, MASTER: 'adminpw' },
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    workers.push(w);
    await until('a mailbox runs', async () => (await rows('slow')).some((r) => r.status === 'running'), 60_000);
    await page.goto(`${con.base}#/batch/slow`);
    await until('the page shows the slow batch', async () => (await page.textContent('#batch-name', { timeout: 500 })) === 'slow');
    await page.waitForSelector('#overview #action-buttons [data-action="pause"]:not([disabled])');
    await page.click('#action-buttons [data-action="pause"]');
    await page.click('#confirm-yes');
    await page.waitForSelector('#action-answer .done, #action-answer .problem');
    const answer = await page.textContent('#action-answer');
    assert.match(answer!, /^pause: \d+ mailbox/, answer!);
    const paused = (await rows('slow')).filter((r) => r.status === 'paused').map((r) => r.line);
    assert.ok(paused.length >= SLOW - 2, `${answer} ${JSON.stringify(await rows('slow'))}`);
    await until('the page shows the paused mailboxes', async () => (await count('paused')) === paused.length);
    assert.match((await page.textContent('#batch-state'))!, /queued batch, paused/);
    // The mailbox in flight finishes; no paused one starts.
    await until('the mailbox in flight finishes', async () => (await rows('slow')).every((r) => r.status !== 'running' && r.status !== 'queued'), 60_000);
    await new Promise((r) => setTimeout(r, 2500));
    assert.deepEqual((await rows('slow')).filter((r) => r.status === 'paused').map((r) => r.line), paused, 'no worker took a paused mailbox');

    await page.click('#action-buttons [data-action="resume"]');
    await page.click('#confirm-yes');
    await until('resumed mailboxes run again', async () => (await rows('slow')).some((r) => r.status === 'running'), 60_000);
    await page.waitForSelector('#action-buttons [data-action="cancel"]:not([disabled])');
    await page.click('#action-buttons [data-action="cancel"]');
    await page.click('#confirm-yes');
    await page.waitForSelector('#action-answer .done');
    const result = await run;
    assert.ok(result.stdout.includes('"status"'), `the waiting batch run ended: ${result.stderr}`);
    const end = await rows('slow');
    assert.ok(end.every((r) => ['complete', 'cancelled'].includes(r.status)), JSON.stringify(end));
    assert.ok(end.some((r) => r.status === 'cancelled'), JSON.stringify(end));
    assert.equal((JSON.parse(result.stdout) as { totals: { cancelled?: number } }).totals.cancelled, end.filter((r) => r.status === 'cancelled').length, 'the batch report counts the cancelled mailboxes');
    await until('the page shows the cancelled mailboxes', async () => (await count('cancelled')) === end.filter((r) => r.status === 'cancelled').length);
    const history = await page.locator('#history tbody tr td:nth-child(3)').allTextContents();
    assert.deepEqual(history, ['cancel', 'resume', 'pause']);
    assert.deepEqual(await page.locator('#history tbody tr td:nth-child(2)').allTextContents(), [OPERATOR, OPERATOR, OPERATOR]);
    assert.match((await page.textContent('#batch-state'))!, /cancelled/);

    // The workers page: the two stopped workers gone, the third alive.
    await page.goto(`${con.base}#/workers`);
    await page.waitForSelector('#worker-table tbody tr:nth-child(3)');
    const shown = await page.locator('#worker-table tbody tr').evaluateAll((trs) => trs.map((tr) => `${tr.children[2]!.textContent} ${tr.children[0]!.textContent}`));
    assert.deepEqual(shown.sort(), [`${stopped[0]!.pid} gone (stopped)`, `${stopped[1]!.pid} gone (stopped)`, `${w.pid} alive`].sort());
    assert.deepEqual(dialogs, []);
  });
});
