/**
 * Scale-out with a real PostgreSQL 15 queue (pg-boss): `batch run --queue` puts the mailboxes in
 * the queue, three `mailmover worker` processes share them, one is killed with SIGKILL in the
 * middle of a mailbox. Its job is taken again by another worker after it expires, and every
 * destination mailbox ends exact: nothing lost, nothing twice. The workers keep no files: the
 * ledger and the batch's statuses are in the same database, so `batch status --queue` shows the
 * batch, a rerun skips the complete mailboxes, and `--again` is incremental on any worker. A job
 * never holds a secret: literal passwords are refused before anything is queued, and no row of
 * the queue or the ledger holds a password.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { ImapFlow } from 'imapflow';
import pg from 'pg';
import os from 'node:os';
import path from 'node:path';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { readMailbox, seedMailbox, type FixtureFolder } from '../helpers/fixture.js';
import { CLI, runCli } from '../helpers/cli.js';
import { startScriptedImap } from '../helpers/scripted-imap/server.js';
import { PERSONALITIES } from '../helpers/scripted-imap/personalities.js';

const MAILBOXES = 10;
const name = (i: number) => `q${String(i).padStart(2, '0')}`;
const mailbox = (i: number): FixtureFolder[] => [
  {
    path: ['INBOX'],
    subscribed: true,
    messages: Array.from({ length: 120 }, (_, k) => ({
      raw: Buffer.from(`From: q@example.org\r\nSubject: ${name(i)} ${k}\r\nMessage-ID: <${name(i)}-${k}@queue.test>\r\n\r\n${'queue body\r\n'.repeat(40 + k)}`),
      flags: k % 3 ? ['\\Seen'] : [],
      internalDate: new Date(Date.UTC(2023, 3, 1 + (k % 28))),
    })),
  },
];

describe('a batch shared by workers through PostgreSQL', () => {
  let source: PlainDovecotServer;
  let dest: PlainDovecotServer;
  let db: PostgresServer;
  let dir: string;
  const workers: ChildProcess[] = [];

  before(async () => {
    [source, dest, db] = await Promise.all([startDovecot({ tls: false }), startDovecot({ tls: false }), startPostgres()]);
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-queue-'));
    for (let i = 1; i <= MAILBOXES; i++) {
      await source.addUser(name(i), 'pw');
      await dest.addUser(name(i), 'pw');
      await seedMailbox(source, name(i), 'pw', mailbox(i));
    }
    await writeFile(
      path.join(dir, 'servers.yaml'),
      `source:\n  url: imap://127.0.0.1:${source.port}\n  master: { user: admin, password: env:MASTER }\ndestination:\n  url: imap://127.0.0.1:${dest.port}\n  master: { user: admin, password: env:MASTER }\ndefaults: { connections: 1 }\n`,
    );
    await writeFile(path.join(dir, 'users.csv'), ['source_user', ...Array.from({ length: MAILBOXES }, (_, i) => name(i + 1))].join('\n') + '\n');
  });
  after(async () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    await Promise.all([source?.stop(), dest?.stop(), db?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  test('three workers, one killed mid-mailbox: the batch completes and every mailbox is exact', async () => {
    const url = await db.createDatabase('queue');
    const logs: string[] = [];
    const startWorker = (k: number) => {
      const w = spawn(process.execPath, [CLI, 'worker', '--queue', url, '--parallel', '1', '--report-dir', path.join(dir, `w${k}`), '--maintenance-interval', '1', '--no-log'], {
        env: { ...process.env, MASTER: 'adminpw' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      logs[k] = '';
      w.stderr!.on('data', (d: Buffer) => (logs[k] += d.toString()));
      workers.push(w);
      return w;
    };
    const victim = startWorker(0);
    startWorker(1);
    startWorker(2);
    const batch = runCli(['batch', 'run', path.join(dir, 'users.csv'), '--config', path.join(dir, 'servers.yaml'), '--queue', url, '--job-timeout', '4', '--report-dir', path.join(dir, 'reports'), '--json'], { MASTER: 'adminpw' }, 240_000);
    // Kill the first worker as soon as it has started a mailbox.
    for (let i = 0; i < 600 && !/started line/.test(logs[0]!); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(logs[0]!, /started line/, 'the first worker took a mailbox');
    victim.kill('SIGKILL');
    const run = await batch;
    assert.equal(run.code, 0, `${run.stderr}\n${logs.join('\n---\n')}`);
    const report = JSON.parse(run.stdout) as { totals: { complete: number; mailboxes: number } };
    assert.deepEqual([report.totals.mailboxes, report.totals.complete], [MAILBOXES, MAILBOXES]);
    for (let i = 1; i <= MAILBOXES; i++) assert.deepEqual(await readMailbox(dest, name(i), 'pw'), await readMailbox(source, name(i), 'pw'), name(i));
    // The killed worker's mailbox was finished by another one.
    const killedLine = /started line (\d+)/.exec(logs[0]!)![1];
    assert.match(logs[1]! + logs[2]!, new RegExp(`line ${killedLine} \\S+: complete`));

    // The statuses are in the queue's database.
    const status = await runCli(['batch', 'status', path.join(dir, 'users.csv'), '--queue', url, '--json']);
    assert.equal(status.code, 0, status.stderr);
    const recorded = (JSON.parse(status.stdout) as { mailboxes: { line: number; status: string; copied: number }[] }).mailboxes;
    assert.deepEqual(recorded.map((j) => j.status), Array(MAILBOXES).fill('complete'));

    // Enqueued again: every mailbox is complete, nothing is queued.
    const rerun = await runCli(['batch', 'run', path.join(dir, 'users.csv'), '--config', path.join(dir, 'servers.yaml'), '--queue', url, '--report-dir', path.join(dir, 'reports2'), '--json'], { MASTER: 'adminpw' }, 60_000);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stderr, new RegExp(`queued 0 mailboxes \\(${MAILBOXES} complete from an earlier run`));
    assert.equal((JSON.parse(rerun.stdout) as { totals: { alreadyComplete: number } }).totals.alreadyComplete, MAILBOXES);

    // New mail for one mailbox, and --again: whichever worker takes a mailbox finds the ledger the
    // others wrote, so each pass is incremental and only the new messages are copied.
    const c = new ImapFlow({ host: '127.0.0.1', port: source.port, secure: false, auth: { user: name(3), pass: 'pw' }, logger: false });
    await c.connect();
    try {
      for (let k = 0; k < 3; k++) await c.append('INBOX', Buffer.from(`From: q@example.org\r\nSubject: late ${k}\r\nMessage-ID: <late-${k}@queue.test>\r\n\r\nlate\r\n`), [], new Date());
    } finally {
      await c.logout();
    }
    const again = await runCli(['batch', 'run', path.join(dir, 'users.csv'), '--config', path.join(dir, 'servers.yaml'), '--queue', url, '--again', '--report-dir', path.join(dir, 'reports3')], { MASTER: 'adminpw' }, 120_000);
    assert.equal(again.code, 0, `${again.stderr}\n${logs.join('\n---\n')}`);
    // Progress while waiting: a line per mailbox as the workers record it, each once.
    const lines = again.stderr.split('\n').filter((l) => /^\[\d+\/10\] /.test(l));
    assert.equal(lines.length, MAILBOXES, again.stderr);
    assert.deepEqual(lines.map((l) => /^\[(\d+)\/10\]/.exec(l)![1]), Array.from({ length: MAILBOXES }, (_, i) => String(i + 1)));
    assert.ok(lines.every((l) => / complete, \d+ copied/.test(l)), again.stderr);
    assert.match(lines.find((l) => l.includes(`imap://${name(3)}@`))!, /complete, 3 copied/);
    const third = JSON.parse(await readFile(path.join(dir, 'reports3', 'batch-report.json'), 'utf8')) as { totals: { copied: number; complete: number }; jobs: { line: number; copied: number; report: string }[] };
    assert.deepEqual([third.totals.complete, third.totals.copied], [MAILBOXES, 3]);
    for (const j of third.jobs) {
      const r = JSON.parse(await readFile(j.report, 'utf8')) as { folders: { source: string; incremental?: boolean; noSelect?: boolean }[] };
      assert.ok(r.folders.filter((f) => !f.noSelect).every((f) => f.incremental), `line ${j.line}: ${JSON.stringify(r.folders)}`);
    }
    assert.deepEqual(await readMailbox(dest, name(3), 'pw'), await readMailbox(source, name(3), 'pw'));
    for (const w of workers.slice(1)) w.kill('SIGINT');
  });

  test("a server's connection cap holds across workers: two workers, four mailboxes, never more than 2 source connections", async () => {
    const url = await db.createDatabase('shared_cap');
    const users = ['ann', 'ben', 'cat', 'dan'];
    const scripted = await startScriptedImap({
      personality: PERSONALITIES.exchange,
      users: Object.fromEntries(
        users.map((u) => [
          u,
          {
            password: 'pw',
            folders: ['INBOX', 'Archive'].map((f) => ({
              name: f,
              subscribed: true,
              messages: Array.from({ length: 25 }, (_, i) => ({
                raw: Buffer.from(`From: c@example.org\r\nSubject: ${u} ${f} ${i}\r\nMessage-ID: <${u}-${f}-${i}@cap.test>\r\n\r\n${'c'.repeat(400 + i)}\r\n`),
                flags: i % 2 ? ['\\Seen'] : [],
                internalDate: new Date(Date.UTC(2022, 1, 1 + i)),
                uid: i + 1,
              })),
            })),
          },
        ]),
      ),
    });
    for (const u of users) await dest.addUser(`cap-${u}`, 'pw');
    const capDir = path.join(dir, 'cap');
    await rm(capDir, { recursive: true, force: true });
    await mkdir(capDir);
    await writeFile(
      path.join(capDir, 'servers.yaml'),
      `source:\n  url: imap://127.0.0.1:${scripted.port}\n  maxConnections: 2\ndestination:\n  url: imap://127.0.0.1:${dest.port}\ndefaults: { connections: 2 }\n`,
    );
    await writeFile(path.join(capDir, 'users.csv'), ['source_user,destination_user,source_password,destination_password', ...users.map((u) => `${u},cap-${u},env:PW,env:PW`)].join('\n') + '\n');
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, scripted.connections())), 2);
    const capWorkers = [0, 1].map((k) => {
      const w = spawn(process.execPath, [CLI, 'worker', '--queue', url, '--parallel', '2', '--report-dir', path.join(capDir, `w${k}`)], { env: { ...process.env, PW: 'pw' }, stdio: 'ignore' });
      workers.push(w);
      return w;
    });
    try {
      const run = await runCli(['batch', 'run', path.join(capDir, 'users.csv'), '--config', path.join(capDir, 'servers.yaml'), '--queue', url, '--report-dir', path.join(capDir, 'reports'), '--json'], { PW: 'pw' }, 180_000);
      assert.equal(run.code, 0, run.stderr);
      const jobs = (JSON.parse(run.stdout) as { jobs: { status: string; copied: number }[] }).jobs;
      assert.deepEqual(jobs.map((j) => [j.status, j.copied]), Array(4).fill(['complete', 50]));
    } finally {
      clearInterval(sampler);
      for (const w of capWorkers) w.kill('SIGINT');
      await scripted.stop();
    }
    // Each of the two workers alone would open up to 2 (its mailboxes wait for a slot otherwise).
    assert.ok(most >= 1 && most <= 2, `at most 2 source connections were open across both workers (saw ${most})`);
    for (const u of users) {
      const got = await readMailbox(dest, `cap-${u}`, 'pw');
      assert.deepEqual(got.filter((f) => f.messages.length > 0).map((f) => [f.path.join('/'), f.messages.length]), [['Archive', 25], ['INBOX', 25]]);
    }
  });

  test('a batch run interrupted while waiting, then run again, joins its queued jobs instead of queueing them twice', async () => {
    const url = await db.createDatabase('rejoin');
    for (let i = 1; i <= MAILBOXES; i++) await dest.addUser(`j-${name(i)}`, 'pw');
    const list = path.join(dir, 'rejoin.csv');
    await writeFile(list, ['source_user,destination_user', ...Array.from({ length: MAILBOXES }, (_, i) => `${name(i + 1)},j-${name(i + 1)}`)].join('\n') + '\n');
    const args = ['batch', 'run', list, '--config', path.join(dir, 'servers.yaml'), '--queue', url, '--report-dir', path.join(dir, 'rejoin-reports')];
    // No worker yet: the first run queues everything, then is interrupted while it waits.
    const first = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, MASTER: 'adminpw' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let firstErr = '';
    first.stderr!.on('data', (d: Buffer) => (firstErr += d.toString()));
    for (let i = 0; i < 1500 && !/waiting for workers/.test(firstErr); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(firstErr, /queued 10 mailboxes; waiting/);
    first.kill('SIGINT');
    await new Promise((r) => first.once('close', r));

    const w = spawn(process.execPath, [CLI, 'worker', '--queue', url, '--parallel', '2', '--report-dir', path.join(dir, 'rejoin-w')], { env: { ...process.env, MASTER: 'adminpw' }, stdio: 'ignore' });
    workers.push(w);
    try {
      const second = await runCli(args, { MASTER: 'adminpw' }, 180_000);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stderr, /queued 0 mailboxes, joined 10 still queued or running/);
    } finally {
      w.kill('SIGINT');
    }
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const { rows } = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM mailmover_queue.job WHERE name = 'mailmover-mailbox'");
      assert.equal(rows[0]!.n, MAILBOXES, 'one job per mailbox');
    } finally {
      await c.end();
    }
    for (let i = 1; i <= MAILBOXES; i++) assert.deepEqual(await readMailbox(dest, `j-${name(i)}`, 'pw'), await readMailbox(source, name(i), 'pw'), name(i));
  });

  test('a queued batch never stores a secret: literal passwords are refused before anything is queued, and no row holds a password', async () => {
    const url = await db.createDatabase('no_secrets');
    const PW = 'Queue-Secret-Pw-1';
    for (const i of [1, 2]) await dest.addUser(`s-${name(i)}`, PW);
    const noSecretAnywhere = async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        const tables = await c.query<{ s: string; t: string }>("SELECT table_schema AS s, table_name AS t FROM information_schema.tables WHERE table_schema IN ('mailmover_queue', 'mailmover_state')");
        let rows = 0;
        for (const { s, t } of tables.rows) {
          for (const r of (await c.query<{ row: string }>(`SELECT x::text AS row FROM "${s}"."${t}" x`)).rows) {
            rows++;
            for (const secret of [PW, 'adminpw']) assert.ok(!r.row.includes(secret), `${s}.${t} holds a secret: ${r.row.slice(0, 300)}`);
          }
        }
        return rows;
      } finally {
        await c.end();
      }
    };
    // A literal password in the list: refused, naming each line, before anything is queued.
    const literal = path.join(dir, 'literal.csv');
    await writeFile(literal, `source_user,destination_user,destination_password\n${name(1)},s-${name(1)},${PW}\n${name(2)},s-${name(2)},env:QPW\n`);
    const batchArgs = (list: string, config: string, reports: string) => ['batch', 'run', list, '--config', config, '--queue', url, '--report-dir', path.join(dir, reports), '--json'];
    const refused = await runCli(batchArgs(literal, path.join(dir, 'servers.yaml'), 'lit-reports'), { MASTER: 'adminpw', QPW: PW }, 60_000);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /MM-BATCH-CSV: --queue stores each mailbox's job in PostgreSQL[^\n]*env:NAME or file:PATH[^\n]*\n {2}\S*literal\.csv:2: destination_password/);
    assert.ok(!(refused.stdout + refused.stderr).includes(PW));
    // A literal master password in the configuration: refused too, with its line.
    const literalConfig = path.join(dir, 'literal.yaml');
    await writeFile(literalConfig, `source:\n  url: imap://127.0.0.1:${source.port}\n  master: { user: admin, password: adminpw }\ndestination:\n  url: imap://127.0.0.1:${dest.port}\n`);
    const refusedConfig = await runCli(batchArgs(path.join(dir, 'users.csv'), literalConfig, 'lit2-reports'), {}, 60_000);
    assert.equal(refusedConfig.code, 2, refusedConfig.stderr);
    assert.match(refusedConfig.stderr, /MM-BATCH-CONFIG: \S*literal\.yaml:3:\d+: source\.master\.password is written in the file, and --queue would store it/);
    assert.ok(!refusedConfig.stderr.includes('adminpw'), 'the password is not echoed');
    assert.equal(await noSecretAnywhere(), 0, 'nothing was queued');

    // With references, the batch runs, and no row of the queue or the ledger holds a password.
    const refs = path.join(dir, 'refs.csv');
    await writeFile(refs, `source_user,destination_user,destination_password\n${name(1)},s-${name(1)},env:QPW\n${name(2)},s-${name(2)},file:${path.join(dir, 'qpw')}\n`);
    await writeFile(path.join(dir, 'qpw'), `${PW}\n`);
    const w = spawn(process.execPath, [CLI, 'worker', '--queue', url, '--parallel', '2', '--report-dir', path.join(dir, 'ns-w')], { env: { ...process.env, MASTER: 'adminpw', QPW: PW }, stdio: 'ignore' });
    workers.push(w);
    try {
      const ok = await runCli(batchArgs(refs, path.join(dir, 'servers.yaml'), 'ns-reports'), { MASTER: 'adminpw', QPW: PW }, 180_000);
      assert.equal(ok.code, 0, ok.stderr);
    } finally {
      w.kill('SIGINT');
    }
    assert.ok((await noSecretAnywhere()) > 0, 'the jobs and statuses are there, without a password');
    for (const i of [1, 2]) assert.deepEqual(await readMailbox(dest, `s-${name(i)}`, PW), await readMailbox(source, name(i), 'pw'), name(i));
  });
});
