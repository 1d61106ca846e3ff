/**
 * The state ledger against real Dovecot: reruns look only at what changed; a run killed with
 * SIGKILL at many points and then run again leaves every message at the destination exactly once;
 * a destination folder recreated behind our back (new UIDVALIDITY) is refilled exactly; a state
 * file from a newer version is refused and left untouched; two runs on one mailbox are refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ImapFlow } from 'imapflow';
import { type MigrateOptions } from '../../src/index.js';
import { migrateChecked } from '../helpers/migrate-checked.js';
import { Ledger } from '../../src/state/ledger.js';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox, type FixtureFolder, type FixtureMessage } from '../helpers/fixture.js';
import { CLI, runCli } from '../helpers/cli.js';
import { seededOffsets } from '../helpers/fault-proxy.js';

const msg = (tag: string, i: number, size = 200): FixtureMessage => ({
  raw: Buffer.from(`From: s@example.org\r\nSubject: ${tag} ${i}\r\nMessage-ID: <${tag}-${i}@state.test>\r\n\r\n${'s'.repeat(size + (i % 50))}\r\n`),
  flags: i % 3 === 0 ? ['\\Seen'] : i % 3 === 1 ? ['\\Answered', '$Label1'] : [],
  internalDate: new Date(Date.UTC(2022, i % 12, 1 + (i % 28), i % 24)),
});

describe('the state ledger', () => {
  let server: PlainDovecotServer;
  let dir: string;
  let users = 0;
  const small: FixtureFolder[] = [
    { path: ['INBOX'], subscribed: true, messages: Array.from({ length: 30 }, (_, i) => msg('in', i)) },
    { path: ['Work'], subscribed: true, messages: Array.from({ length: 20 }, (_, i) => msg('work', i)) },
    { path: ['Work', 'Old'], subscribed: false, messages: Array.from({ length: 10 }, (_, i) => msg('old', i)) },
  ];
  // A few thousand messages for the kill test (small ones: the point is many state writes).
  const big: FixtureFolder[] = ['INBOX', 'A', 'B', 'C'].map((name, k) => ({
    path: [name],
    subscribed: true,
    messages: Array.from({ length: 600 }, (_, i) => msg(`big${k}`, i, 100)),
  }));
  // A byte-identical duplicate must arrive twice, never once or three times.
  big[1]!.messages.push(big[1]!.messages[7]!);

  const newUser = async () => {
    const user = `d${++users}`;
    await server.addUser(user, 'dst-pw');
    return user;
  };
  const options = (src: string, user: string, state: string): MigrateOptions => ({
    from: { url: `imap://${src}@127.0.0.1:${server.port}`, password: 'src-pw' },
    to: { url: `imap://${user}@127.0.0.1:${server.port}`, password: 'dst-pw' },
    statePath: state,
  });
  const client = async (user: string, password: string) => {
    const c = new ImapFlow({ host: '127.0.0.1', port: server.port, secure: false, auth: { user, pass: password }, logger: false });
    await c.connect();
    return c;
  };

  before(async () => {
    server = await startDovecot({ tls: false });
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-state-test-'));
    await server.addUser('small', 'src-pw');
    await server.addUser('big', 'src-pw');
    await seedMailbox(server, 'small', 'src-pw', small);
    await seedMailbox(server, 'big', 'src-pw', big);
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('a rerun looks only at what changed: nothing, then only the new messages', async () => {
    const user = await newUser();
    const state = path.join(dir, 'incremental.db');
    const first = await migrateChecked(options('small', user, state));
    assert.equal(first.status, 'complete');
    assert.equal(first.totals.copied, 60);

    const second = await migrateChecked(options('small', user, state));
    assert.equal(second.status, 'complete');
    assert.equal(second.totals.copied, 0);
    assert.equal(second.totals.messages, 60);
    assert.ok(second.folders.filter((f) => !f.noSelect).every((f) => f.incremental), JSON.stringify(second.folders));

    const c = await client('small', 'src-pw');
    try {
      await c.append('INBOX', msg('in', 100).raw, ['\\Flagged'], msg('in', 100).internalDate);
      await c.append('Work/Old', msg('old', 100).raw, [], msg('old', 100).internalDate);
    } finally {
      await c.logout();
    }
    const third = await migrateChecked(options('small', user, state));
    assert.equal(third.status, 'complete');
    assert.equal(third.totals.copied, 2);
    assert.ok(third.folders.filter((f) => !f.noSelect).every((f) => f.incremental));
    assert.deepEqual(await readMailbox(server, user, 'dst-pw'), await readMailbox(server, 'small', 'src-pw'));
  });

  test('a destination folder recreated behind our back (new UIDVALIDITY) is planned in full and refilled exactly', async () => {
    const user = await newUser();
    const state = path.join(dir, 'validity.db');
    assert.equal((await migrateChecked(options('small', user, state))).status, 'complete');
    const c = await client(user, 'dst-pw');
    try {
      await c.mailboxDelete('Work/Old');
      await c.mailboxCreate('Work/Old');
      await c.mailboxUnsubscribe('Work/Old');
    } finally {
      await c.logout();
    }
    const again = await migrateChecked(options('small', user, state));
    assert.equal(again.status, 'complete');
    const old = again.folders.find((f) => f.source === 'Work/Old')!;
    assert.equal(old.incremental, undefined);
    assert.equal(old.copied, old.sourceCount);
    assert.ok(old.copied >= 10);
    assert.deepEqual(await readMailbox(server, user, 'dst-pw'), await readMailbox(server, 'small', 'src-pw'));
  });

  test('a source folder recreated (new UIDVALIDITY, same messages) is matched by content: nothing twice', async () => {
    await server.addUser('revalid', 'src-pw');
    await seedMailbox(server, 'revalid', 'src-pw', small);
    const user = await newUser();
    const state = path.join(dir, 'source-validity.db');
    assert.equal((await migrateChecked(options('revalid', user, state))).status, 'complete');
    const c = await client('revalid', 'src-pw');
    try {
      await c.mailboxDelete('Work/Old');
      await c.mailboxCreate('Work/Old');
      for (const m of small[2]!.messages) await c.append('Work/Old', m.raw, m.flags, m.internalDate);
      await c.append('Work/Old', msg('old', 77).raw, [], msg('old', 77).internalDate);
    } finally {
      await c.logout();
    }
    const again = await migrateChecked(options('revalid', user, state));
    assert.equal(again.status, 'complete');
    const old = again.folders.find((f) => f.source === 'Work/Old')!;
    assert.equal(old.incremental, undefined);
    assert.equal(old.copied, 1);
    assert.equal(old.alreadyPresent, 10);
    assert.deepEqual(await readMailbox(server, user, 'dst-pw'), await readMailbox(server, 'revalid', 'src-pw'));
  });

  test('killed with SIGKILL at 20 points and run again each time: every message exactly once', async () => {
    const expected = await readMailbox(server, 'big', 'src-pw');
    // How long an uninterrupted run takes, to spread the kill points over it.
    const timing = await newUser();
    const t0 = Date.now();
    assert.equal((await migrateChecked(options('big', timing, path.join(dir, 'timing.db')), { skipVerify: 'a timing run: a verify would lengthen the time the kill points are spread over' })).status, 'complete');
    const full = Date.now() - t0;
    // Node's own start (~0.2 s) comes first; kill anywhere from there to the end of the copy.
    const points = seededOffsets(20261121, 20, 150, 250 + full);
    for (const [i, at] of points.entries()) {
      const user = await newUser();
      const state = path.join(dir, `kill-${i}.db`);
      const args = ['migrate', '--from', `imap://big@127.0.0.1:${server.port}`, '--to', `imap://${user}@127.0.0.1:${server.port}`, '--state', state, '--json', '--connections', String(1 + (i % 2))];
      const env = { ...process.env, MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
      // Killed first at `at` ms, and (every third point) killed again in the rerun.
      const killed = await new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, [CLI, ...args], { env, stdio: 'ignore' });
        const timer = setTimeout(() => child.kill('SIGKILL'), at);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve(code);
        });
      });
      if (i % 3 === 0 && killed === null) {
        await new Promise<void>((resolve) => {
          const child = spawn(process.execPath, [CLI, ...args], { env, stdio: 'ignore' });
          const timer = setTimeout(() => child.kill('SIGKILL'), 300 + ((at * 7) % 700));
          child.on('close', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      // Every point is read back below; verify runs after every fifth (20 verifies of this mailbox would not fit the file's time).
      const check = i % 5 === 4 ? {} : { skipVerify: 'read back exactly below; verify runs after every fifth kill point only, for time' };
      const rerun = await runCli(args, { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' }, undefined, check);
      assert.equal(rerun.code, 0, `kill point ${i} at ${at} ms: ${rerun.stderr}`);
      assert.deepEqual(await readMailbox(server, user, 'dst-pw'), expected, `kill point ${i} at ${at} ms`);
      await rm(server.homeOf(user), { recursive: true, force: true });
    }
  });

  test('killed just before and just after every kind of state write, then run again: exact', async () => {
    const expected = await readMailbox(server, 'small', 'src-pw');
    for (const kind of ['reset', 'recordPresent', 'intend', 'settle', 'markSynced']) {
      for (const when of ['before', 'after']) {
        const user = await newUser();
        const state = path.join(dir, `write-${kind}-${when}.db`);
        const args = ['migrate', '--from', `imap://small@127.0.0.1:${server.port}`, '--to', `imap://${user}@127.0.0.1:${server.port}`, '--state', state, '--connections', '1'];
        const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
        const killed = await runCli(args, { ...env, MAILMOVER_TEST_KILL_AT: `${kind}:${when}:2` });
        assert.equal(killed.code, null, `${kind} ${when}: the run was killed (${killed.stderr})`);
        const rerun = await runCli(args, env);
        assert.equal(rerun.code, 0, `${kind} ${when}: ${rerun.stderr}`);
        assert.deepEqual(await readMailbox(server, user, 'dst-pw'), expected, `${kind} ${when}`);
      }
    }
  });

  test('a state file from a newer version is refused and left untouched', async () => {
    const user = await newUser();
    const state = path.join(dir, 'newer.db');
    const db = new Database(state);
    db.pragma('user_version = 99');
    db.exec('CREATE TABLE future (x INTEGER)');
    db.close();
    const before = createHash('sha256').update(await readFile(state)).digest('hex');
    const run = await runCli(['migrate', '--from', `imap://small@127.0.0.1:${server.port}`, '--to', `imap://${user}@127.0.0.1:${server.port}`, '--state', state], {
      MAILMOVER_FROM_PASSWORD: 'src-pw',
      MAILMOVER_TO_PASSWORD: 'dst-pw',
    });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /MM-STATE-VERSION/);
    assert.equal(createHash('sha256').update(await readFile(state)).digest('hex'), before);
    const got = await readMailbox(server, user, 'dst-pw');
    assert.ok(got.every((f) => f.messages.length === 0), 'nothing was copied');
  });

  test('a second run on the same mailbox is refused while the first holds the lock; a dead holder is taken over', async () => {
    const user = await newUser();
    const state = path.join(dir, 'lock.db');
    const from = `imap://small@127.0.0.1:${server.port}`;
    const to = `imap://${user}@127.0.0.1:${server.port}`;
    // This test process holds the lock, as a running mailmover would.
    const ledger = Ledger.open(state);
    const held = await ledger.lockMailbox(from, to);
    const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
    const refused = await runCli(['migrate', '--from', from, '--to', to, '--state', state], env);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /MM-STATE-LOCKED/);
    assert.match(refused.stderr, new RegExp(`pid ${process.pid}`));
    held.release();
    ledger.close();
    // A lock left by a process that no longer exists (killed) does not block.
    const db = new Database(state);
    db.prepare('UPDATE mailbox SET lock_pid = ?, lock_host = ?, lock_at = ?').run(2 ** 22 + 12345, os.hostname(), new Date().toISOString());
    db.close();
    const ok = await runCli(['migrate', '--from', from, '--to', to, '--state', state], env);
    assert.equal(ok.code, 0, ok.stderr);
  });
  test('flag changes between passes reach the destination: with the ledger (CONDSTORE) and without', async () => {
    await server.addUser('flags', 'src-pw');
    await seedMailbox(server, 'flags', 'src-pw', small);
    const user = await newUser();
    const state = path.join(dir, 'flags.db');
    assert.equal((await migrateChecked(options('flags', user, state))).status, 'complete');
    const c = await client('flags', 'src-pw');
    try {
      await c.mailboxOpen('INBOX');
      await c.messageFlagsAdd({ header: { 'message-id': '<in-1@state.test>' } }, ['\\Flagged', '$Urgent']);
      await c.messageFlagsRemove({ header: { 'message-id': '<in-3@state.test>' } }, ['\\Seen']);
      await c.mailboxOpen('Work');
      await c.messageFlagsSet({ header: { 'message-id': '<work-2@state.test>' } }, ['\\Seen', '\\Answered']);
    } finally {
      await c.logout();
    }
    const again = await migrateChecked(options('flags', user, state));
    assert.equal(again.status, 'complete');
    assert.ok(again.folders.filter((f) => !f.noSelect).every((f) => f.incremental));
    assert.equal(again.folders.reduce((n, f) => n + (f.flagsUpdated ?? 0), 0), 3);
    assert.equal(again.totals.copied, 0);
    assert.deepEqual(await readMailbox(server, user, 'dst-pw'), await readMailbox(server, 'flags', 'src-pw'));

    // Without a ledger the full plan finds the same message with other flags and updates them too.
    const c2 = await client('flags', 'src-pw');
    try {
      await c2.mailboxOpen('INBOX');
      await c2.messageFlagsSet({ header: { 'message-id': '<in-5@state.test>' } }, ['$Later']);
    } finally {
      await c2.logout();
    }
    const stateless = await migrateChecked({ ...options('flags', user, state), statePath: undefined });
    assert.equal(stateless.folders.find((f) => f.source === 'INBOX')!.flagsUpdated, 1);
    assert.deepEqual(await readMailbox(server, user, 'dst-pw'), await readMailbox(server, 'flags', 'src-pw'));
  });

  test('messages deleted at the source stay at the destination unless --sync-deletions', async () => {
    await server.addUser('del', 'src-pw');
    await seedMailbox(server, 'del', 'src-pw', small);
    const user = await newUser();
    const state = path.join(dir, 'deletions.db');
    assert.equal((await migrateChecked(options('del', user, state))).status, 'complete');
    const before = await readMailbox(server, user, 'dst-pw');
    const c = await client('del', 'src-pw');
    try {
      await c.mailboxOpen('INBOX');
      await c.messageDelete({ header: { 'message-id': '<in-4@state.test>' } });
      await c.mailboxOpen('Work');
      await c.messageDelete({ header: { 'message-id': '<work-9@state.test>' } });
    } finally {
      await c.logout();
    }
    const kept = await migrateChecked(options('del', user, state), { skipVerify: 'without --sync-deletions what was deleted at the source stays at the destination by design (asserted below)' });
    assert.equal(kept.status, 'complete');
    assert.deepEqual(await readMailbox(server, user, 'dst-pw'), before, 'off by default: nothing removed');
    const synced = await migrateChecked({ ...options('del', user, state), syncDeletions: true });
    assert.equal(synced.status, 'complete');
    assert.equal(synced.folders.reduce((n, f) => n + (f.deleted ?? 0), 0), 2);
    assert.deepEqual(await readMailbox(server, user, 'dst-pw'), await readMailbox(server, 'del', 'src-pw'));
  });

  test('--delete-source removes at the source only what is verified at the destination (a refused APPEND stays)', async () => {
    const quota = await startDovecot({
      tls: false,
      extraConfig: ['mail_plugins = $mail_plugins quota', 'plugin {', '  quota = count:User quota', '  quota_vsizes = yes', '  quota_max_mail_size = 64k', '}'].join('\n'),
    });
    try {
      await server.addUser('mover', 'src-pw');
      const moved: FixtureFolder[] = [{ path: ['INBOX'], subscribed: true, messages: Array.from({ length: 6 }, (_, i) => msg('mv', i, i === 2 ? 70_000 : 300)) }];
      await seedMailbox(server, 'mover', 'src-pw', moved);
      await quota.addUser('dst', 'dst-pw');
      const run = await runCli(
        ['migrate', '--from', `imap://mover@127.0.0.1:${server.port}`, '--to', `imap://dst@127.0.0.1:${quota.port}`, '--delete-source', '--state', path.join(dir, 'move.db'), '--json'],
        { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' },
      );
      assert.equal(run.code, 3, run.stderr);
      const report = JSON.parse(run.stdout) as { items: { messageId?: string }[]; folders: { source: string; sourceDeleted?: number }[] };
      assert.deepEqual(report.items.map((i) => i.messageId), ['mv-2@state.test']);
      assert.equal(report.folders.find((f) => f.source === 'INBOX')!.sourceDeleted, 5);
      const left = (await readMailbox(server, 'mover', 'src-pw')).find((f) => f.path[0] === 'INBOX')!.messages;
      assert.deepEqual(left.map((m) => m.size), [moved[0]!.messages[2]!.raw.length], 'only the refused message is still at the source');
      const arrived = (await readMailbox(quota, 'dst', 'dst-pw')).find((f) => f.path[0] === 'INBOX')!.messages;
      assert.equal(arrived.length, 5);
    } finally {
      await quota.stop();
    }
  });
  test('--watch wakes on new INBOX mail (IDLE) and keeps syncing until Ctrl-C, then stops cleanly; it holds the mailbox between passes; report prints the ledger', async () => {
    await server.addUser('watched', 'src-pw');
    await seedMailbox(server, 'watched', 'src-pw', small);
    const user = await newUser();
    const state = path.join(dir, 'watch.db');
    const from = `imap://watched@127.0.0.1:${server.port}`;
    const to = `imap://${user}@127.0.0.1:${server.port}`;
    // One machine: the lock files under the same $XDG_STATE_HOME for the watch and the second runs.
    const xdg = path.join(dir, 'watch-xdg');
    const child = spawn(process.execPath, [CLI, 'migrate', '--from', from, '--to', to, '--state', state, '--watch', '120', '--no-progress'], {
      env: { ...process.env, XDG_STATE_HOME: xdg, MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const passes = () => (stderr.match(/watch: pass \d+ done/g) ?? []).length;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const until = async (ok: () => boolean) => {
      for (let i = 0; i < 300 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(ok(), stderr);
    };
    await until(() => passes() >= 1);
    // Between passes the watch still holds the mailbox: a second run is refused, with either ledger or none.
    for (const ledger of [['--state', state], ['--state', path.join(dir, 'watch-other.db')], ['--no-state']]) {
      const second = await runCli(['migrate', '--from', from, '--to', to, ...ledger], { XDG_STATE_HOME: xdg, MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' });
      assert.equal(second.code, 2, `${ledger.join(' ')}: ${second.stderr}`);
      assert.match(second.stderr, /MM-STATE-LOCKED/);
    }
    const c = await client('watched', 'src-pw');
    try {
      await c.append('INBOX', msg('in', 500).raw, ['\\Seen'], msg('in', 500).internalDate);
    } finally {
      await c.logout();
    }
    // The interval is 2 minutes: only IDLE can bring the next pass within the wait below.
    const seen = passes();
    await until(() => passes() >= seen + 1 && /new mail at the source/.test(stderr));
    child.kill('SIGINT');
    // Ctrl-C ends the wait at once (the interval is 2 minutes).
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running 20 s after SIGINT'), 20_000))]);
    if (code === 'still running 20 s after SIGINT') child.kill('SIGKILL');
    assert.equal(code, 0, stderr);
    assert.deepEqual(await readMailbox(server, user, 'dst-pw'), await readMailbox(server, 'watched', 'src-pw'));

    const text = await runCli(['report', '--from', from, '--to', to, '--state', state], {});
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /INBOX -> INBOX: 31 copied; last complete pass 20\d\d-/);
    const json = await runCli(['report', '--from', from, '--to', to, '--state', state, '--json'], {});
    const r = JSON.parse(json.stdout) as { folders: { source: string; copies: number; intents: number }[] };
    assert.equal(r.folders.find((f) => f.source === 'Work')!.copies, 20);
    assert.ok(r.folders.every((f) => f.intents === 0), 'no intent left behind');
  });
});
