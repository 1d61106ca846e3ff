/**
 * Scale-out with a real PostgreSQL 15 queue (pg-boss): `batch run --queue` puts the mailboxes in
 * the queue, three `mailmover worker` processes share them, one is killed with SIGKILL in the
 * middle of a mailbox. Its job is taken again by another worker after it expires, and every
 * destination mailbox ends exact: nothing lost, nothing twice.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { readMailbox, seedMailbox, type FixtureFolder } from '../helpers/fixture.js';
import { CLI, runCli } from '../helpers/cli.js';

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
      const w = spawn(process.execPath, [CLI, 'worker', '--queue', url, '--parallel', '1', '--state', path.join(dir, `w${k}.db`), '--report-dir', path.join(dir, `w${k}`), '--maintenance-interval', '1'], {
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
    for (const w of workers.slice(1)) w.kill('SIGINT');
  });
});
