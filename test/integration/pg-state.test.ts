/**
 * The state ledger in PostgreSQL (`--state postgres://...`), against a real PostgreSQL 15 and a
 * real Dovecot: reruns are incremental; a run killed with SIGKILL around every kind of state
 * write, or at random moments, and run again leaves every message exactly once; the mailbox lock
 * refuses a second run and frees itself when its holder dies; a newer schema is refused
 * untouched; workers opening a fresh database at once do not trip over each other; a password in
 * the URL is never printed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ImapFlow } from 'imapflow';
import { type MigrateOptions } from '../../src/index.js';
import { migrateChecked } from '../helpers/migrate-checked.js';
import { PgLedger } from '../../src/state/pg-ledger.js';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { readMailbox, seedMailbox, type FixtureFolder, type FixtureMessage } from '../helpers/fixture.js';
import { CLI, runCli } from '../helpers/cli.js';
import { seededOffsets } from '../helpers/fault-proxy.js';

const msg = (tag: string, i: number, size = 200): FixtureMessage => ({
  raw: Buffer.from(`From: p@example.org\r\nSubject: ${tag} ${i}\r\nMessage-ID: <${tag}-${i}@pg-state.test>\r\n\r\n${'p'.repeat(size + (i % 50))}\r\n`),
  flags: i % 3 === 0 ? ['\\Seen'] : i % 3 === 1 ? ['\\Answered', '$Label1'] : [],
  internalDate: new Date(Date.UTC(2022, i % 12, 1 + (i % 28), i % 24)),
});

describe('the state ledger in PostgreSQL', () => {
  let server: PlainDovecotServer;
  let db: PostgresServer;
  let dir: string;
  let users = 0;
  let databases = 0;
  const small: FixtureFolder[] = [
    { path: ['INBOX'], subscribed: true, messages: Array.from({ length: 30 }, (_, i) => msg('in', i)) },
    { path: ['Work'], subscribed: true, messages: Array.from({ length: 20 }, (_, i) => msg('work', i)) },
    { path: ['Work', 'Old'], subscribed: false, messages: Array.from({ length: 10 }, (_, i) => msg('old', i)) },
  ];
  const big: FixtureFolder[] = ['INBOX', 'A', 'B'].map((name, k) => ({ path: [name], subscribed: true, messages: Array.from({ length: 500 }, (_, i) => msg(`big${k}`, i, 100)) }));
  big[1]!.messages.push(big[1]!.messages[7]!);

  const newUser = async () => {
    const user = `p${++users}`;
    await server.addUser(user, 'dst-pw');
    return user;
  };
  const newDatabase = () => db.createDatabase(`ledger${++databases}`);
  const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
  const migrateArgs = (src: string, user: string, state: string) => ['migrate', '--from', `imap://${src}@127.0.0.1:${server.port}`, '--to', `imap://${user}@127.0.0.1:${server.port}`, '--state', state, '--connections', '1'];
  const options = (src: string, user: string, state: string): MigrateOptions => ({
    from: { url: `imap://${src}@127.0.0.1:${server.port}`, password: 'src-pw' },
    to: { url: `imap://${user}@127.0.0.1:${server.port}`, password: 'dst-pw' },
    statePath: state,
  });

  before(async () => {
    [server, db] = await Promise.all([startDovecot({ tls: false }), startPostgres()]);
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-pg-state-'));
    await server.addUser('small', 'src-pw');
    await server.addUser('big', 'src-pw');
    await seedMailbox(server, 'small', 'src-pw', small);
    await seedMailbox(server, 'big', 'src-pw', big);
  });
  after(async () => {
    await Promise.all([server?.stop(), db?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  test('a rerun is incremental: nothing, then only the new messages; report reads the database; the password is never shown', async () => {
    const user = await newUser();
    // Trust authentication ignores the password, so it can stand in for a real one here.
    const state = (await newDatabase()).replace('postgres://postgres@', 'postgres://postgres:S3cretLedgerPw@');
    assert.match(state, /S3cretLedgerPw/);
    const first = await migrateChecked(options('small', user, state));
    assert.equal(first.status, 'complete');
    assert.equal(first.totals.copied, 60);
    const second = await migrateChecked(options('small', user, state));
    assert.equal(second.totals.copied, 0);
    assert.ok(second.folders.filter((f) => !f.noSelect).every((f) => f.incremental), JSON.stringify(second.folders));

    const c = new ImapFlow({ host: '127.0.0.1', port: server.port, secure: false, auth: { user: 'small', pass: 'src-pw' }, logger: false });
    await c.connect();
    try {
      await c.append('INBOX', msg('in', 100).raw, ['\\Flagged'], msg('in', 100).internalDate);
      await c.append('Work/Old', msg('old', 100).raw, [], msg('old', 100).internalDate);
    } finally {
      await c.logout();
    }
    const third = await runCli([...migrateArgs('small', user, state), '--json'], env);
    assert.equal(third.code, 0, third.stderr);
    const report = JSON.parse(third.stdout) as { totals: { copied: number }; folders: { incremental?: boolean; noSelect?: boolean }[] };
    assert.equal(report.totals.copied, 2);
    assert.ok(report.folders.filter((f) => !f.noSelect).every((f) => f.incremental));
    assert.deepEqual(await readMailbox(server, user, 'dst-pw'), await readMailbox(server, 'small', 'src-pw'));

    const audit = await runCli(['report', '--from', `imap://small@127.0.0.1:${server.port}`, '--to', `imap://${user}@127.0.0.1:${server.port}`, '--state', state, '--json']);
    assert.equal(audit.code, 0, audit.stderr);
    const folders = (JSON.parse(audit.stdout) as { folders: { source: string; copies: number; intents: number }[] }).folders;
    assert.deepEqual(
      // Dovecot's special-use folders (Drafts, Sent ...) are there too, empty.
      folders.filter((f) => f.copies > 0 || f.intents > 0).map((f) => [f.source, f.copies, f.intents]),
      [
        ['INBOX', 31, 0],
        ['Work', 20, 0],
        ['Work/Old', 11, 0],
      ],
    );
    for (const out of [third.stdout, third.stderr, audit.stdout, audit.stderr]) assert.doesNotMatch(out, /S3cretLedgerPw/);
  });

  test('killed just before and just after every kind of state write, then run again: exact', async () => {
    const expected = await readMailbox(server, 'small', 'src-pw');
    const state = await newDatabase();
    for (const kind of ['reset', 'recordPresent', 'intend', 'settle', 'markSynced']) {
      for (const when of ['before', 'after']) {
        const user = await newUser();
        const args = migrateArgs('small', user, state);
        const killed = await runCli(args, { ...env, MAILMOVER_TEST_KILL_AT: `${kind}:${when}:2` });
        assert.equal(killed.code, null, `${kind} ${when}: the run was killed (${killed.stderr})`);
        // The dead run's lock went with its connection: the rerun is not refused.
        const rerun = await runCli(args, env);
        assert.equal(rerun.code, 0, `${kind} ${when}: ${rerun.stderr}`);
        assert.deepEqual(await readMailbox(server, user, 'dst-pw'), expected, `${kind} ${when}`);
      }
    }
  });

  test('killed with SIGKILL at 8 random points of a 1,501-message run and run again: every message exactly once', async () => {
    const expected = await readMailbox(server, 'big', 'src-pw');
    const timing = await newUser();
    const t0 = Date.now();
    assert.equal((await migrateChecked(options('big', timing, await newDatabase()))).status, 'complete');
    const full = Date.now() - t0;
    const state = await newDatabase();
    for (const [i, at] of seededOffsets(20261122, 8, 200, 300 + full).entries()) {
      const user = await newUser();
      const args = [...migrateArgs('big', user, state).slice(0, -1), String(1 + (i % 2))];
      await new Promise<void>((resolve) => {
        const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: 'ignore' });
        const timer = setTimeout(() => child.kill('SIGKILL'), at);
        child.on('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      const rerun = await runCli(args, env);
      assert.equal(rerun.code, 0, `kill point ${i} at ${at} ms: ${rerun.stderr}`);
      assert.deepEqual(await readMailbox(server, user, 'dst-pw'), expected, `kill point ${i} at ${at} ms`);
      await rm(server.homeOf(user), { recursive: true, force: true });
    }
  });

  test('a second run is refused while another holds the mailbox; a holder that dies frees it', async () => {
    const user = await newUser();
    const state = await newDatabase();
    const from = `imap://small@127.0.0.1:${server.port}`;
    const to = `imap://${user}@127.0.0.1:${server.port}`;
    const ledger = await PgLedger.open(state);
    const held = await ledger.lockMailbox(from, to);
    const refused = await runCli(['migrate', '--from', from, '--to', to, '--state', state], env);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /MM-STATE-LOCKED/);
    assert.match(refused.stderr, new RegExp(`pid ${process.pid}`));
    await held.release();
    await ledger.close();

    // Another process takes the lock and is killed: its session ends, and the lock with it.
    const script = `import { PgLedger } from ${JSON.stringify(new URL('../../src/state/pg-ledger.ts', import.meta.url).href)};
      const l = await PgLedger.open(process.env.STATE); await l.lockMailbox(process.env.FROM, process.env.TO); process.stdout.write('locked\\n'); setInterval(() => {}, 1000);`;
    const holder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...process.env, STATE: state, FROM: from, TO: to }, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      holder.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
      holder.on('exit', () => reject(new Error('the lock holder exited early')));
    });
    const whileHeld = await runCli(['migrate', '--from', from, '--to', to, '--state', state], env);
    assert.match(whileHeld.stderr, /MM-STATE-LOCKED/);
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('close', r));
    // PostgreSQL notices the dead session at once on loopback (the socket closes).
    let ok = await runCli(['migrate', '--from', from, '--to', to, '--state', state], env);
    for (let i = 0; i < 10 && /MM-STATE-LOCKED/.test(ok.stderr); i++) {
      await new Promise((r) => setTimeout(r, 500));
      ok = await runCli(['migrate', '--from', from, '--to', to, '--state', state], env);
    }
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(await readMailbox(server, user, 'dst-pw'), await readMailbox(server, 'small', 'src-pw'));
  });

  test('a database written by a newer mailmover is refused and left untouched', async () => {
    const user = await newUser();
    const state = await newDatabase();
    await (await PgLedger.open(state)).close();
    const c = new pg.Client({ connectionString: state });
    await c.connect();
    const snapshot = async () => JSON.stringify((await c.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'mailmover_state' ORDER BY 1")).rows) + JSON.stringify((await c.query('SELECT version FROM mailmover_state.schema_version')).rows);
    try {
      await c.query('UPDATE mailmover_state.schema_version SET version = 99');
      await c.query('CREATE TABLE mailmover_state.future (x integer)');
      const before = await snapshot();
      const run = await runCli(migrateArgs('small', user, state), env);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /MM-STATE-VERSION/);
      assert.equal(await snapshot(), before);
    } finally {
      await c.end();
    }
    assert.ok((await readMailbox(server, user, 'dst-pw')).every((f) => f.messages.length === 0), 'nothing was copied');
  });

  test("a running mailbox's progress is recorded for other machines, and never overwrites its outcome", async () => {
    const ledger = await PgLedger.open(await newDatabase());
    try {
      const job = { line: 1, source: 'imap://a@x', destination: 'imap://a@y', copied: 0, skipped: 0 };
      await ledger.recordJob('b', { ...job, status: 'running' });
      await ledger.recordProgress('b', job.source, job.destination, { copied: 40, skipped: 1, toCopy: 100 });
      assert.deepEqual((await ledger.jobs('b')).map((j) => [j.status, j.copied, j.skipped, j.toCopy]), [['running', 40, 1, 100]]);
      await ledger.recordJob('b', { ...job, status: 'complete', copied: 99 });
      // A progress update that arrives late changes nothing.
      await ledger.recordProgress('b', job.source, job.destination, { copied: 50, skipped: 1, toCopy: 100 });
      assert.deepEqual((await ledger.jobs('b')).map((j) => [j.status, j.copied, j.toCopy]), [['complete', 99, undefined]]);
    } finally {
      await ledger.close();
    }
  });

  test('eight processes opening a fresh database at once all get a working ledger', async () => {
    const state = await newDatabase();
    const opened = await Promise.all(Array.from({ length: 8 }, () => PgLedger.open(state)));
    try {
      const locks = await Promise.all(opened.map((l, i) => l.lockMailbox(`imap://race${i}@x`, 'imap://d@y')));
      await Promise.all(locks.map((l) => l.release()));
    } finally {
      await Promise.all(opened.map((l) => l.close()));
    }
  });

  test('the database dies mid-run: MM-STATE-WRITE, the mailbox stops; a rerun on a new ledger is exact', async () => {
    const doomed = await startPostgres();
    try {
      const user = await newUser();
      const state = await doomed.createDatabase('doomed');
      const args = migrateArgs('big', user, state);
      const run = runCli([...args, '--json'], env);
      // Kill PostgreSQL once the copy is under way (the ledger has rows).
      const c = new pg.Client({ connectionString: state });
      await c.connect();
      c.on('error', () => undefined);
      for (let i = 0; i < 400; i++) {
        const n = await c.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'mailmover_state' AND table_name = 'message'").then(async (r) => (r.rows[0].n ? (await c.query('SELECT count(*)::int AS n FROM mailmover_state.message')).rows[0].n : 0));
        if (n > 100) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      await doomed.kill();
      const out = await run;
      assert.equal(out.code, 1, out.stderr);
      assert.ok(out.stdout.trim(), `a report is printed: ${out.stderr}`);
      const report = JSON.parse(out.stdout) as { error?: { code: string } };
      assert.equal(report.error?.code, 'MM-STATE-WRITE');
      const rerun = await runCli(migrateArgs('big', user, await newDatabase()), env);
      assert.equal(rerun.code, 0, rerun.stderr);
      assert.deepEqual(await readMailbox(server, user, 'dst-pw'), await readMailbox(server, 'big', 'src-pw'));
    } finally {
      await doomed.stop();
    }
  });

  test('a local batch keeps its statuses in PostgreSQL: batch status reads them, a rerun skips the complete mailboxes', async () => {
    const state = await newDatabase();
    const dests = [await newUser(), await newUser(), await newUser()];
    await writeFile(path.join(dir, 'servers.yaml'), `source:\n  url: imap://127.0.0.1:${server.port}\ndestination:\n  url: imap://127.0.0.1:${server.port}\n`);
    const list = path.join(dir, 'pg-batch.csv');
    await writeFile(list, ['source_user,destination_user,source_password,destination_password', ...dests.map((d) => `small,${d},env:SRC,env:DST`)].join('\n') + '\n');
    const batchEnv = { SRC: 'src-pw', DST: 'dst-pw' };
    const args = ['batch', 'run', list, '--config', path.join(dir, 'servers.yaml'), '--state', state, '--report-dir', path.join(dir, 'pg-batch-reports'), '--json'];
    const first = await runCli(args, batchEnv);
    assert.equal(first.code, 0, first.stderr);
    const status = await runCli(['batch', 'status', list, '--state', state, '--json']);
    assert.equal(status.code, 0, status.stderr);
    const total = (await readMailbox(server, 'small', 'src-pw')).reduce((n, f) => n + f.messages.length, 0);
    assert.deepEqual((JSON.parse(status.stdout) as { mailboxes: { status: string; copied: number }[] }).mailboxes.map((j) => [j.status, j.copied]), Array(3).fill(['complete', total]));
    const again = await runCli(args, batchEnv);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { totals: { alreadyComplete: number } }).totals.alreadyComplete, 3);
    for (const d of dests) assert.deepEqual(await readMailbox(server, d, 'dst-pw'), await readMailbox(server, 'small', 'src-pw'));
  });

  test('the advisory lock is keyed on the mailbox, not its spelling: another machine spelling it differently is refused', async () => {
    const state = await newDatabase();
    // The holder has lock files of its own (another XDG_STATE_HOME stands for another machine):
    // only the database can refuse the second run.
    const elsewhere = await mkdtemp(path.join(os.tmpdir(), 'mm-pg-elsewhere-'));
    const script = `import { PgLedger } from ${JSON.stringify(new URL('../../src/state/pg-ledger.ts', import.meta.url).href)};
      const l = await PgLedger.open(process.env.STATE); await l.lockMailbox('imap://alice@127.0.0.1:1143', 'imap://bob@127.0.0.1:1143'); process.stdout.write('locked\\n'); setInterval(() => {}, 1000);`;
    const holder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...process.env, STATE: state, XDG_STATE_HOME: elsewhere }, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
        holder.on('exit', () => reject(new Error('the lock holder exited early')));
      });
      const ledger = await PgLedger.open(state);
      try {
        await assert.rejects(ledger.lockMailbox('imap://ALICE@localhost:1143', 'imap://Bob@localhost.:1143'), (e: Error & { code?: string }) => e.code === 'MM-STATE-LOCKED' && /another spelling/.test(e.message));
        // Another mailbox is free.
        await (await ledger.lockMailbox('imap://carol@localhost:1143', 'imap://bob@localhost:1143')).release();
      } finally {
        await ledger.close();
      }
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('close', r));
      await rm(elsewhere, { recursive: true, force: true });
    }
  });
});
