/**
 * A truthful account of batch runs, against real Dovecot and a real PostgreSQL:
 * - a 20-row local batch stopped with SIGINT while mailboxes run: exit 130, the batch report says
 *   `interrupted`, and `batch status` lists all 20 rows, complete, interrupted and not started,
 *   none failed; a rerun resumes and completes, with a verdict per mailbox and for the batch;
 * - the default log of `batch run`: printed, 0600, a start and an end line for every mailbox;
 *   `--no-log` writes none;
 * - `batch status` of a list the ledger does not hold: MM-BATCH-UNKNOWN naming the ledger, exit 2;
 * - a ledger of schema 3 (both backends) opens, migrates, and its failed MM-ABORTED rows read
 *   as interrupted;
 * - a queued mailbox whose worker is killed with SIGKILL is shown interrupted (or waiting), not
 *   running, and a second worker completes it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { readMailbox, seedMailbox, type FixtureFolder } from '../helpers/fixture.js';
import { CLI, runCli } from '../helpers/cli.js';
import { SCHEMA_VERSION } from '../../src/state/ledger.js';

const ROWS = 20;
const name = (i: number) => `s${String(i).padStart(2, '0')}`;
const mailbox = (user: string, n: number): FixtureFolder[] => [
  {
    path: ['INBOX'],
    subscribed: true,
    messages: Array.from({ length: n }, (_, k) => ({
      raw: Buffer.from(`From: s@example.org\r\nSubject: ${user} ${k}\r\nMessage-ID: <${user}-${k}@status.test>\r\n\r\nbody ${k}\r\n`),
      flags: [],
      internalDate: new Date(Date.UTC(2023, 1, 1 + k)),
    })),
  },
];

interface StatusJson {
  batch: string;
  ledger: string;
  counts: Record<string, number>;
  verdict?: string;
  mailboxes: { line: number; sourceUser: string; status: string; verdict?: string; code?: string; note?: string }[];
}

interface BatchReportJson {
  status: string;
  verdict?: string;
  totals: { mailboxes: number; complete: number; interrupted: number; notStarted: number; failed: number; alreadyComplete: number };
  jobs: { line: number; status: string; verdict?: string; code?: string }[];
}

/** Log lines of a pino JSON log. */
async function logLines(file: string): Promise<{ msg: string; event?: string; line?: number; status?: string; verdict?: string }[]> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { msg: string });
}

describe('batch statuses, verdicts and logs', () => {
  let source: PlainDovecotServer;
  let dest: PlainDovecotServer;
  let dir: string;
  let stateHome: string;
  const children: ChildProcess[] = [];

  before(async () => {
    [source, dest] = await Promise.all([startDovecot({ tls: false }), startDovecot({ tls: false })]);
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-batch-status-'));
    stateHome = path.join(dir, 'xdg');
    for (let i = 1; i <= ROWS; i++) {
      await Promise.all([source.addUser(name(i), 'pw'), dest.addUser(name(i), 'pw')]);
      await seedMailbox(source, name(i), 'pw', mailbox(name(i), 10));
    }
    // The source admits 10 messages a second over the whole batch: a mailbox of 10 takes its turn,
    // so the batch takes about 20 s and can be stopped while mailboxes run.
    await writeFile(
      path.join(dir, 'slow.yaml'),
      `source:\n  url: imap://127.0.0.1:${source.port}\n  master: { user: admin, password: env:MASTER }\n  maxMessagesPerSecond: 10\ndestination:\n  url: imap://127.0.0.1:${dest.port}\n  master: { user: admin, password: env:MASTER }\ndefaults: { connections: 1 }\n`,
    );
    await writeFile(path.join(dir, 'fast.yaml'), (await readFile(path.join(dir, 'slow.yaml'), 'utf8')).replace('  maxMessagesPerSecond: 10\n', ''));
    await writeFile(path.join(dir, 'users.csv'), ['source_user', ...Array.from({ length: ROWS }, (_, i) => name(i + 1))].join('\n') + '\n');
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all([source?.stop(), dest?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  /** Starts the CLI with this file's state home; collects stderr as it comes. */
  const start = (args: string[], env: Record<string, string> = {}) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, XDG_STATE_HOME: stateHome, MASTER: 'adminpw', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const out = { stdout: '', stderr: '' };
    child.stdout!.on('data', (d: Buffer) => (out.stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
    const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    return { child, out, done };
  };
  const until = async (what: string, ok: () => boolean | Promise<boolean>, ms = 60_000) => {
    for (const t0 = Date.now(); !(await ok()); ) {
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  test('SIGINT during a 20-row batch: exit 130, interrupted and not started rows, none failed; the default log has every mailbox; a rerun completes with verdicts', async () => {
    const state = path.join(dir, 'state.db');
    const args = ['batch', 'run', path.join(dir, 'users.csv'), '--config', path.join(dir, 'slow.yaml'), '--state', state, '--report-dir', path.join(dir, 'reports'), '--parallel', '4', '--json'];
    const run = start(args);
    // Two mailboxes complete and others running, as `batch status` sees it while the batch runs.
    await until('two complete mailboxes', async () => {
      const r = await runCli(['batch', 'status', path.join(dir, 'users.csv'), '--state', state, '--json']);
      const c = r.code === 0 ? (JSON.parse(r.stdout) as StatusJson).counts : undefined;
      return !!c && c.complete! >= 2 && c.running! >= 1;
    });
    run.child.kill('SIGINT');
    assert.equal(await run.done, 130, run.out.stderr);

    const report = JSON.parse(run.out.stdout) as BatchReportJson;
    assert.equal(report.status, 'interrupted');
    assert.equal(report.verdict, undefined, 'no verdict for a batch whose mailboxes did not all run to an end');
    assert.equal(report.jobs.length, ROWS, 'every row is in the batch report');
    assert.equal(report.totals.failed, 0);
    assert.ok(report.totals.interrupted >= 1, JSON.stringify(report.totals));
    assert.ok(report.totals.notStarted >= 1, JSON.stringify(report.totals));
    assert.equal(report.totals.complete + report.totals.interrupted + report.totals.notStarted, ROWS);
    for (const j of report.jobs.filter((x) => x.status === 'interrupted')) assert.equal(j.verdict, undefined, `line ${j.line}`);
    assert.match(await readFile(path.join(dir, 'reports', 'batch-report.md'), 'utf8'), /: interrupted\n[^]*\| interrupted \|[^]*\| not started \|/);

    // The default log: its path printed, private, a start and an end line for every mailbox that started.
    const logFile = /^log: (.+)$/m.exec(run.out.stderr)?.[1];
    assert.ok(logFile, run.out.stderr);
    assert.equal(path.dirname(logFile), path.join(stateHome, 'mailmover', 'logs'));
    assert.equal((await stat(logFile)).mode & 0o777, 0o600);
    const lines = await logLines(logFile);
    const started = report.jobs.filter((j) => j.status !== 'not started').map((j) => j.line);
    for (const line of started) {
      assert.ok(lines.some((l) => l.event === 'mailbox-start' && l.line === line), `a start line for line ${line}`);
      const end = lines.find((l) => l.event === 'mailbox-end' && l.line === line);
      assert.equal(end?.status, report.jobs.find((j) => j.line === line)!.status, `an end line for line ${line}`);
    }
    assert.ok(!lines.some((l) => l.event === 'mailbox-start' && !started.includes(l.line!)), 'no start line for a row not started');
    assert.ok(lines.some((l) => l.event === 'folder-done'), 'engine events are logged');

    const status = await runCli(['batch', 'status', path.join(dir, 'users.csv'), '--state', state, '--json']);
    assert.equal(status.code, 0, status.stderr);
    const s = JSON.parse(status.stdout) as StatusJson;
    assert.equal(s.mailboxes.length, ROWS, 'every row of the list');
    assert.deepEqual(
      s.mailboxes.map((m) => [m.line, m.status]),
      report.jobs.map((j) => [j.line, j.status]),
    );
    assert.equal(s.counts.failed, 0);
    assert.equal(s.counts.interrupted, report.totals.interrupted);
    assert.equal(s.counts['not started'], report.totals.notStarted);
    const text = await runCli(['batch', 'status', path.join(dir, 'users.csv'), '--state', state]);
    assert.match(text.stdout, new RegExp(`${ROWS} mailboxes: ${report.totals.notStarted} not started, 0 queued, 0 running, 0 waiting, ${report.totals.interrupted} interrupted, ${report.totals.complete} complete, 0 partial, 0 failed`));
    assert.match(text.stdout, /^\s+\d+ {2}interrupted {2}/m);

    // The rerun resumes: complete rows are skipped, the rest complete; verdicts everywhere.
    const logsBefore = (await readdir(path.join(stateHome, 'mailmover', 'logs'))).length;
    // Without the rate limit (as soon as the reason for it is gone), and without a log.
    const again = start([...args.map((a) => (a === path.join(dir, 'slow.yaml') ? path.join(dir, 'fast.yaml') : a)), '--no-log']);
    assert.equal(await again.done, 0, again.out.stderr);
    assert.doesNotMatch(again.out.stderr, /^log: /m);
    assert.equal((await readdir(path.join(stateHome, 'mailmover', 'logs'))).length, logsBefore, '--no-log writes no log');
    const r2 = JSON.parse(again.out.stdout) as BatchReportJson;
    assert.equal(r2.status, 'complete');
    assert.equal(r2.totals.alreadyComplete, report.totals.complete);
    assert.equal(r2.verdict, 'perfect');
    assert.deepEqual(new Set(r2.jobs.map((j) => j.verdict)), new Set(['perfect']));
    const json = JSON.parse(await readFile(path.join(dir, 'reports', 'batch-report.json'), 'utf8')) as BatchReportJson;
    assert.equal(json.verdict, 'perfect');
    for (const i of [1, ROWS]) assert.deepEqual(await readMailbox(dest, name(i), 'pw'), await readMailbox(source, name(i), 'pw'));
    const done = JSON.parse((await runCli(['batch', 'status', path.join(dir, 'users.csv'), '--state', state, '--json'])).stdout) as StatusJson;
    assert.equal(done.counts.complete, ROWS);
    assert.equal(done.verdict, 'perfect');
    assert.ok(done.mailboxes.every((m) => m.verdict === 'perfect'));
    assert.match((await runCli(['batch', 'status', path.join(dir, 'users.csv'), '--state', state])).stdout, /verdict: perfect\n[^]*^\s+2 {2}complete {5}perfect/m);
  });

  test('the default log of a whole batch holds a start and an end line for every mailbox, with status and verdict', async () => {
    const list = path.join(dir, 'three.csv');
    await writeFile(list, `source_user\n${name(1)}\n${name(2)}\n${name(3)}\n`);
    const fast = path.join(dir, 'fast.yaml');
    const run = start(['batch', 'run', list, '--config', fast, '--state', path.join(dir, 'three.db'), '--report-dir', path.join(dir, 'three-reports')]);
    assert.equal(await run.done, 0, run.out.stderr);
    const logFile = /^log: (.+)$/m.exec(run.out.stderr)![1]!;
    assert.match(path.basename(logFile), /^batch-three\.csv-\d{8}T\d{9}Z\.log$/);
    assert.equal((await stat(logFile)).mode & 0o777, 0o600);
    const lines = await logLines(logFile);
    for (const line of [2, 3, 4]) {
      assert.ok(lines.some((l) => l.event === 'mailbox-start' && l.line === line), `start of line ${line}`);
      const end = lines.find((l) => l.event === 'mailbox-end' && l.line === line);
      assert.deepEqual([end?.status, end?.verdict], ['complete', 'perfect'], `end of line ${line}`);
    }
    assert.ok(lines.some((l) => l.event === 'batch-end' && l.status === 'complete'));
    assert.ok(!(await readFile(logFile, 'utf8')).includes('adminpw'), 'no password in the log');
  });

  test('batch status of a list the ledger does not hold: MM-BATCH-UNKNOWN naming the ledger, exit 2', async () => {
    await writeFile(path.join(dir, 'other.csv'), 'source_user\nnobody\n');
    const state = path.join(dir, 'state.db');
    const r = await runCli(['batch', 'status', path.join(dir, 'other.csv'), '--state', state]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /MM-BATCH-UNKNOWN/);
    assert.ok(r.stderr.includes(state), r.stderr);
    assert.match(r.stderr, /"other\.csv"/);
    assert.equal(r.stdout, '');
  });

  test('a ledger of schema 3 opens and migrates: its failed MM-ABORTED rows are interrupted', async () => {
    const file = path.join(dir, 'v3.db');
    const db = new Database(file);
    db.exec(`CREATE TABLE batch_job (batch TEXT NOT NULL, line INTEGER NOT NULL, source TEXT NOT NULL, destination TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'complete', 'partial', 'failed')), code TEXT, message TEXT,
      copied INTEGER NOT NULL DEFAULT 0, skipped INTEGER NOT NULL DEFAULT 0, seconds REAL, report TEXT, updated_at TEXT NOT NULL,
      PRIMARY KEY (batch, source, destination));
      ALTER TABLE batch_job ADD COLUMN to_copy INTEGER; ALTER TABLE batch_job ADD COLUMN job_id TEXT;
      -- what migration 6 touches of the schema-1 tables (folder's modseq, the intent index)
      CREATE TABLE folder (id INTEGER PRIMARY KEY); CREATE TABLE message (folder_id INTEGER NOT NULL, state TEXT NOT NULL);`);
    const put = db.prepare("INSERT INTO batch_job (batch, line, source, destination, status, code, copied, updated_at) VALUES ('old.csv', ?, ?, ?, ?, ?, ?, '2024-01-01T00:00:00Z')");
    put.run(2, 'imap://a@h', 'imap://a@h2', 'complete', null, 4);
    put.run(3, 'imap://b@h', 'imap://b@h2', 'failed', 'MM-ABORTED', 1);
    put.run(4, 'imap://c@h', 'imap://c@h2', 'failed', 'MM-AUTH-FAILED', 0);
    db.pragma('user_version = 3');
    db.close();
    await writeFile(path.join(dir, 'old.csv'), 'source_user\na\nb\nc\nd\n');
    const r = await runCli(['batch', 'status', path.join(dir, 'old.csv'), '--state', file, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as StatusJson).mailboxes.map((m) => m.status), ['complete', 'interrupted', 'failed', 'not started']);
    const after = new Database(file, { readonly: true });
    assert.equal(after.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    after.close();
  });

  describe('queued', () => {
    let db: PostgresServer;
    before(async () => {
      db = await startPostgres();
    });
    after(async () => {
      await db?.stop();
    });

    test('a PostgreSQL ledger of schema 3 migrates the same way', async () => {
      const url = await db.createDatabase('v3');
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`CREATE SCHEMA mailmover_state; CREATE TABLE mailmover_state.schema_version (version INTEGER NOT NULL); INSERT INTO mailmover_state.schema_version VALUES (3);
          CREATE TABLE mailmover_state.batch_job (batch TEXT NOT NULL, line INTEGER NOT NULL, source TEXT NOT NULL, destination TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'complete', 'partial', 'failed')), code TEXT, message TEXT,
            copied INTEGER NOT NULL DEFAULT 0, skipped INTEGER NOT NULL DEFAULT 0, seconds DOUBLE PRECISION, report TEXT, updated_at TIMESTAMPTZ NOT NULL,
            to_copy INTEGER, job_id TEXT, PRIMARY KEY (batch, source, destination));
          CREATE TABLE mailmover_state.folder (id BIGSERIAL PRIMARY KEY); CREATE TABLE mailmover_state.message (folder_id BIGINT NOT NULL, state TEXT NOT NULL);
          INSERT INTO mailmover_state.batch_job (batch, line, source, destination, status, code, updated_at) VALUES
            ('old.csv', 2, 'imap://a@h', 'imap://a@h2', 'complete', NULL, now()), ('old.csv', 3, 'imap://b@h', 'imap://b@h2', 'failed', 'MM-ABORTED', now());`);
        // The other tables of schema 1 are not needed by these steps beyond what migration 6 alters (above).
        const r = await runCli(['batch', 'status', path.join(dir, 'old.csv'), '--state', url, '--json']);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual((JSON.parse(r.stdout) as StatusJson).mailboxes.map((m) => m.status), ['complete', 'interrupted', 'not started', 'not started']);
        assert.equal((await c.query('SELECT version FROM mailmover_state.schema_version')).rows[0].version, SCHEMA_VERSION);
      } finally {
        await c.end();
      }
    });

    test('a worker killed with SIGKILL mid-mailbox: the row is interrupted (or waiting), not running; a second worker completes it', async () => {
      const url = await db.createDatabase('queue');
      const list = path.join(dir, 'one.csv');
      await writeFile(list, `source_user\n${name(5)}\n`);
      // 250 more messages at 25 a second. The rate is a leaky bucket: the first batch of 100 goes at
      // once and books the clock, so the next two wait about 4 s each: the mailbox runs for about
      // 8 s, long enough to be seen running and killed, and a rerun of what is left fits well in
      // the job timeout (which is how soon pg-boss offers the killed worker's job again).
      await seedMailbox(source, name(5), 'pw', mailbox(`${name(5)}-more`, 250));
      const config = path.join(dir, 'queue-slow.yaml');
      await writeFile(config, (await readFile(path.join(dir, 'slow.yaml'), 'utf8')).replace('maxMessagesPerSecond: 10', 'maxMessagesPerSecond: 25'));
      const batch = runCli(['batch', 'run', list, '--config', config, '--queue', url, '--job-timeout', '20', '--report-dir', path.join(dir, 'q-reports'), '--json', '--no-log'], { MASTER: 'adminpw', XDG_STATE_HOME: stateHome }, 120_000);
      const status = async () => {
        const r = await runCli(['batch', 'status', list, '--queue', url, '--json']);
        return r.code === 0 ? (JSON.parse(r.stdout) as StatusJson).mailboxes[0]! : undefined;
      };
      await until('the batch queued', async () => (await status())?.status === 'queued');
      const first = start(['worker', '--queue', url, '--parallel', '1', '--report-dir', path.join(dir, 'w1'), '--maintenance-interval', '1']);
      await until('the mailbox running', async () => (await status())?.status === 'running');
      assert.match(first.out.stderr, /^log: .*worker-.+\.log$/m, 'a worker logs by default');
      first.child.kill('SIGKILL');
      await first.done;
      const gone = await status();
      assert.ok(gone && ['interrupted', 'waiting'].includes(gone.status), JSON.stringify(gone));
      assert.match(gone.note ?? '', /queue/);
      const second = start(['worker', '--queue', url, '--parallel', '1', '--report-dir', path.join(dir, 'w2'), '--maintenance-interval', '1']);
      const ran = await batch;
      second.child.kill('SIGTERM');
      await second.done;
      assert.equal(ran.code, 0, `${ran.stderr}\n${second.out.stderr}`);
      assert.equal((JSON.parse(ran.stdout) as BatchReportJson).verdict, 'perfect');
      const end = await status();
      assert.deepEqual([end?.status, end?.verdict], ['complete', 'perfect']);
      assert.deepEqual(await readMailbox(dest, name(5), 'pw'), await readMailbox(source, name(5), 'pw'));
    });
  });
});
