/**
 * The console in a real browser (Debian's Chromium through playwright-core) over a ledger written
 * by a real `mailmover batch run` between two real Dovecots: the overview's counts match the
 * ledger, the failed row shows its code and the explanation from docs/errors.md, a mailbox's page
 * lists its folders, hostile names and server texts stay literal text (no dialog, no element made
 * from them), a ledger that cannot be read or does not exist yet is said so, and progress rises on
 * the page while a throttled batch runs (server-sent events, no reload). One browser for the file.
 * Screenshots of the overview and a mailbox's page go to docs/images/ for the README.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { seedMailbox, type FixtureFolder } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';
import { startConsole, type RunningConsole } from '../helpers/console.js';
import { parseErrorDocs } from '../../src/console/error-docs.js';

const HOSTILE_FOLDER = '<img src=x onerror=alert(1)>';
const HOSTILE_USER = '<script>alert(1)</script>';
const IMAGES = new URL('../../docs/images/', import.meta.url);

const messages = (user: string, n: number, folder: string) =>
  Array.from({ length: n }, (_, k) => ({
    raw: Buffer.from(`From: a@example.org\r\nSubject: ${folder} ${k}\r\nMessage-ID: <${user}-${folder.length}-${k}@console.test>\r\n\r\nbody ${k}\r\n`),
    flags: [],
    internalDate: new Date(Date.UTC(2024, 0, 1 + k)),
  }));

describe('mailmover console in a browser', () => {
  let source: PlainDovecotServer;
  let dest: PlainDovecotServer;
  let dir: string;
  let con: RunningConsole;
  let browser: Browser;
  let page: Page;
  const dialogs: string[] = [];
  const state = () => path.join(dir, 'state.db');
  const batch = (list: string, name: string, config = 'servers.yaml') =>
    runCli(['batch', 'run', path.join(dir, list), '--config', path.join(dir, config), '--state', state(), '--report-dir', path.join(dir, `${name}-reports`), '--name', name, '--parallel', '1', '--json'], { MM_MASTER: 'adminpw' });

  before(async () => {
    [source, dest] = await Promise.all([startDovecot({ tls: false }), startDovecot({ tls: false })]);
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-console-'));
    const users = ['alice', 'bob', 'carol', 'live1', 'live2', 'live3'];
    for (const u of users) {
      await source.addUser(u, `pw-${u}`);
      await dest.addUser(u, `pw-${u}`);
    }
    const box = (u: string, n: number, extra: FixtureFolder[] = []): FixtureFolder[] => [{ path: ['INBOX'], subscribed: true, messages: messages(u, n, 'INBOX') }, ...extra];
    await seedMailbox(source, 'alice', 'pw-alice', box('alice', 3, [{ path: ['Work'], subscribed: true, messages: messages('alice', 2, 'Work') }]));
    await seedMailbox(source, 'bob', 'pw-bob', box('bob', 2));
    await seedMailbox(source, 'carol', 'pw-carol', box('carol', 1, [{ path: [HOSTILE_FOLDER], subscribed: true, messages: messages('carol', 2, HOSTILE_FOLDER) }]));
    for (const u of ['live1', 'live2', 'live3']) await seedMailbox(source, u, `pw-${u}`, box(u, 4));
    const server = (port: number, extra = '') => [`  url: imap://127.0.0.1:${port}`, '  master: { user: admin, password: env:MM_MASTER }' + extra];
    await writeFile(path.join(dir, 'servers.yaml'), ['source:', ...server(source.port), 'destination:', ...server(dest.port), 'defaults: { connections: 1, retries: 1, retryDelaySeconds: 0.02 }', ''].join('\n'));
    // The live batch is throttled at the source so that it runs for several seconds.
    await writeFile(path.join(dir, 'slow.yaml'), ['source:', ...server(source.port), '  maxMessagesPerSecond: 2', 'destination:', ...server(dest.port), 'defaults: { connections: 1, retries: 1, retryDelaySeconds: 0.02 }', ''].join('\n'));
    // A user the source does not know, named as a script: the login fails (MM-AUTH-FAILED) and
    // the server's refusal quotes the name.
    await writeFile(path.join(dir, 'users.csv'), `source_user\nalice\nbob\ncarol\n${HOSTILE_USER}\n`);
    await writeFile(path.join(dir, 'live.csv'), 'source_user\nlive1\nlive2\nlive3\n');
    const first = await batch('users.csv', 'first');
    assert.ok(first.stdout.includes('"status"'), first.stderr);
    con = await startConsole(['--state', state()]);
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
    page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  });
  after(async () => {
    await browser?.close();
    await con?.stop();
    await Promise.all([source?.stop(), dest?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  const ledgerRows = (sql: string, ...params: unknown[]) => {
    const db = new Database(state(), { readonly: true });
    try {
      return db.prepare(sql).all(...params) as Record<string, unknown>[];
    } finally {
      db.close();
    }
  };

  test('without the token the page is 401 with no data; the token visit leaves the token out of the address', async () => {
    const denied = await page.goto(con.base);
    assert.equal(denied!.status(), 401);
    assert.ok(!(await page.content()).includes('alice'));
    await page.goto(con.url);
    assert.equal(page.url(), con.base, 'redirected without the token');
    await page.waitForSelector('#counts [data-status="complete"]');
  });

  test('the overview: counts per status and messages copied match the ledger; the failed row shows its code and its explanation', async () => {
    const groups = ledgerRows("SELECT status, count(*) AS n FROM batch_job WHERE batch = 'first' GROUP BY status");
    assert.ok(groups.some((g) => g.status === 'failed'));
    for (const g of groups) assert.equal(await page.textContent(`#counts [data-status="${g.status}"] dd`), String(g.n), String(g.status));
    const [{ copied }] = ledgerRows("SELECT sum(copied) AS copied FROM batch_job WHERE batch = 'first'") as [{ copied: number }];
    assert.equal(await page.textContent('#copied'), String(copied));
    // The counts arrive before the mailbox table (a second request): wait for its rows.
    await page.waitForFunction("document.querySelectorAll('#mailboxes tbody tr').length >= 4", undefined, { timeout: 10_000 }).catch(() => undefined);
    assert.equal(await page.locator('#mailboxes tbody tr').count(), 4);
    const failed = page.locator('#mailboxes tbody tr', { has: page.locator('td.status', { hasText: 'failed' }) });
    assert.equal(await failed.locator('td.user').textContent(), HOSTILE_USER, 'the hostile user name is literal text');
    assert.equal(await failed.locator('td.code').textContent(), 'MM-AUTH-FAILED');
    await page.screenshot({ path: new URL('console-overview.png', IMAGES).pathname });
    await failed.locator('td.code a').click();
    await page.waitForSelector('#error-doc .symptom');
    const doc = parseErrorDocs(await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8')).find((d) => d.code === 'MM-AUTH-FAILED')!;
    assert.equal(await page.textContent('#error-doc .symptom'), doc.symptom.replace(/`/g, ''));
    assert.equal(await page.textContent('#error-doc .resolution'), doc.resolution.replace(/`/g, ''));
  });

  test("a mailbox's page lists its folders from the ledger; hostile names and server texts stay text", async () => {
    await page.goBack();
    await page.waitForSelector('#mailboxes tbody tr');
    await page.locator('#mailboxes td.user a', { hasText: 'carol' }).click();
    await page.waitForSelector('#mailbox-detail #folders');
    const folders = ledgerRows(
      "SELECT f.source_name AS name FROM folder f JOIN mailbox m ON m.id = f.mailbox_id WHERE m.source LIKE '%carol%' ORDER BY f.source_name",
    ).map((r) => r.name);
    assert.ok(folders.includes(HOSTILE_FOLDER), `the ledger has the folder: ${folders.join(', ')}`);
    assert.deepEqual(await page.locator('#folders tbody tr td:first-child').allTextContents(), folders);
    assert.equal(await page.locator('#downloads a').count(), 3, 'JSON, Markdown and CSV');
    const download = async (n: number) => page.evaluate(async (href) => (await fetch(href!)).text(), await page.locator('#downloads a').nth(n).getAttribute('href'));
    const md = await download(1);
    assert.ok(md.includes('&lt;img src=x onerror=alert(1)&gt;') && !md.includes('<img'), 'the Markdown escapes the folder name');
    assert.equal((JSON.parse(await download(0)) as { status: string }).status, 'complete');
    assert.match(await download(2), /^"folder","uid","message_id","size","code","reason","attempts"\r\n/);
    await page.screenshot({ path: new URL('console-mailbox.png', IMAGES).pathname, fullPage: true });
    // The failed mailbox: the server's refusal quoting the script-named user, as text.
    await page.goBack();
    await page.locator('#mailboxes td.user a', { hasText: HOSTILE_USER }).click();
    await page.waitForSelector('#detail-message');
    assert.ok((await page.textContent('#detail-message'))!.length > 0);
    assert.equal(await page.textContent('#mailbox-detail h2'), HOSTILE_USER);
    assert.equal(await page.locator('#detail-error .symptom').count(), 1, 'the explanation is shown with the code');
    assert.equal(await page.locator('img, script:not([src])').count(), 0, 'no element was made from a name');
    assert.deepEqual(dialogs, [], 'no script ran');
  });

  test('progress rises on the page while a throttled batch runs (server-sent events, no reload)', async () => {
    await page.goto(con.base);
    await page.waitForSelector('#batch-name');
    await page.evaluate(() => ((globalThis as unknown as { marker: string }).marker = 'same page'));
    const run = batch('live.csv', 'live', 'slow.yaml');
    const seen: number[] = [];
    const done = run.then(() => true);
    let finished = false;
    void done.then(() => (finished = true));
    const deadline = Date.now() + 240_000;
    while (Date.now() < deadline) {
      const name = await page.textContent('#batch-name').catch(() => null);
      const text = name === 'live' ? await page.textContent('#copied').catch(() => null) : null;
      if (text !== null && text !== undefined && (seen.length === 0 || seen.at(-1) !== Number(text.replace(/,/g, '')))) seen.push(Number(text.replace(/,/g, '')));
      if (finished && seen.at(-1) === 12) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const result = await run;
    assert.ok(result.stdout.includes('"complete"'), result.stderr);
    assert.equal(await page.evaluate(() => (globalThis as unknown as { marker?: string }).marker), 'same page', 'the page was not reloaded');
    assert.equal(seen.at(-1), 12, `values seen: ${seen.join(' ')}`);
    assert.ok(seen.some((v) => v > 0 && v < 12), `an intermediate value was shown: ${seen.join(' ')}`);
    assert.deepEqual([...seen].sort((a, b) => a - b), seen, 'it only rose');
    assert.deepEqual(dialogs, []);
  });

  test('a ledger that cannot be read is said so with its code; one that does not exist yet shows how to start a batch', async () => {
    await writeFile(path.join(dir, 'garbage.db'), 'this is not a database, just text that goes on for a while '.repeat(100));
    const bad = await startConsole(['--state', path.join(dir, 'garbage.db')]);
    const none = await startConsole(['--state', path.join(dir, 'none', 'state.db')]);
    try {
      await page.goto(bad.url);
      await page.waitForSelector('#ledger-problem');
      assert.match((await page.textContent('#ledger-problem'))!, /MM-STATE-OPEN.*cannot be read/);
      await page.goto(none.url);
      await page.waitForSelector('#empty');
      assert.match((await page.textContent('#empty'))!, /No batch yet.*mailmover batch run users\.csv --config servers\.yaml --state .*none\/state\.db/s);
    } finally {
      await Promise.all([bad.stop(), none.stop()]);
    }
  });
});
