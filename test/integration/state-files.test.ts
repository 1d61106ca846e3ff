/**
 * State and log files against a real Dovecot: a log path that cannot be opened or written is
 * MM-LOG-OPEN (exit 2) before anything is done; a log that fills up mid-run costs the log, never
 * the run or the mail; a damaged state file (garbage, damaged pages, a directory) is MM-STATE-OPEN
 * at open, naming the path and what to do; state and log files are created 0600 whatever the umask.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox, type FixtureFolder, type FixtureMessage } from '../helpers/fixture.js';
import { CLI, runCli, type CliResult } from '../helpers/cli.js';

const msg = (tag: string, i: number): FixtureMessage => ({
  raw: Buffer.from(`From: s@example.org\r\nSubject: ${tag} ${i}\r\nMessage-ID: <${tag}-${i}@files.test>\r\n\r\nbody ${i}\r\n`),
  flags: i % 2 ? ['\\Seen'] : [],
  internalDate: new Date(Date.UTC(2022, i % 12, 1 + (i % 28))),
});
const folders: FixtureFolder[] = ['INBOX', 'A', 'B', 'C', 'D', 'E'].map((name) => ({ path: [name], subscribed: true, messages: Array.from({ length: 20 }, (_, i) => msg(name, i)) }));

/** Runs the CLI under `sh` with a umask and optionally a file size limit (in 512-byte blocks; SIGXFSZ ignored, so writes fail with EFBIG). */
function runShell(args: string[], env: Record<string, string>, opts: { umask: string; fileBlocks?: number }): Promise<CliResult> {
  const started = Date.now();
  const quoted = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const script = `trap '' XFSZ; umask ${opts.umask}; ${opts.fileBlocks ? `ulimit -f ${opts.fileBlocks}; ` : ''}exec ${quoted}`;
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

describe('state and log files', () => {
  let server: PlainDovecotServer;
  let dir: string;
  let users = 0;
  const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
  const newUser = async () => {
    const user = `f${++users}`;
    await server.addUser(user, 'dst-pw');
    return user;
  };
  const ends = (user: string) => ['--from', `imap://src@127.0.0.1:${server.port}`, '--to', `imap://${user}@127.0.0.1:${server.port}`];
  const total = async (user: string) => (await readMailbox(server, user, 'dst-pw')).reduce((n, f) => n + f.messages.length, 0);

  before(async () => {
    server = await startDovecot({ tls: false });
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-files-test-'));
    await server.addUser('src', 'src-pw');
    await seedMailbox(server, 'src', 'src-pw', folders);
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('--log DIR and --log /dev/full: MM-LOG-OPEN, exit 2, nothing copied', async () => {
    const user = await newUser();
    const logDir = path.join(dir, 'logdir');
    mkdirSync(logDir);
    for (const [log, said] of [[logDir, /is a directory/], ['/dev/full', /no space left/]] as const) {
      const run = await runCli(['migrate', ...ends(user), '--no-state', '--log', log], env);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /MM-LOG-OPEN/);
      assert.match(run.stderr, said);
      assert.ok(run.stderr.includes(log));
      assert.doesNotMatch(run.stderr, /MM-INTERNAL/);
    }
    assert.equal(await total(user), 0, 'nothing was copied');
  });

  test('a log that cannot be written mid-run: noted once on stderr, the run completes and every message arrives', async () => {
    const user = await newUser();
    const log = path.join(dir, 'full.log');
    // 2 KiB: the first lines fit, the rest of the run's lines do not (EFBIG, as a full disk's ENOSPC).
    const run = await runShell(['migrate', ...ends(user), '--no-state', '--log', log], env, { umask: '022', fileBlocks: 4 });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr.match(/cannot be written/g)?.length, 1, run.stderr);
    assert.ok(statSync(log).size <= 2048 && statSync(log).size > 0);
    assert.deepEqual(await readMailbox(server, user, 'dst-pw'), await readMailbox(server, 'src', 'src-pw'));
  });

  test('a damaged state file (garbage, damaged pages, a directory): MM-STATE-OPEN at open, with the path and what to do; nothing copied', async () => {
    // A real ledger first, then copies of it damaged in two ways.
    const good = path.join(dir, 'good.db');
    const seeded = await newUser();
    assert.equal((await runCli(['migrate', ...ends(seeded), '--state', good], env)).code, 0);
    const garbage = path.join(dir, 'garbage.db');
    writeFileSync(garbage, Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 7919) % 251)));
    const damaged = path.join(dir, 'damaged.db');
    copyFileSync(good, damaged);
    const fd = openSync(damaged, 'r+');
    writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, 4096); // page 2 onwards overwritten
    closeSync(fd);
    const asDir = path.join(dir, 'state-dir');
    mkdirSync(asDir);
    const user = await newUser();
    for (const [state, said] of [[garbage, /damaged|not a database/], [damaged, /damaged/], [asDir, /is a directory/]] as const) {
      for (const args of [['migrate', ...ends(user), '--state', state], ['report', ...ends(seeded), '--state', state]]) {
        const run = await runCli(args, env);
        assert.equal(run.code, 2, `${args[0]} ${state}: ${run.stderr}`);
        assert.match(run.stderr, /MM-STATE-OPEN/);
        assert.match(run.stderr, said);
        assert.ok(run.stderr.includes(state), run.stderr);
        assert.doesNotMatch(run.stderr, /MM-INTERNAL|unable to open database file/);
      }
    }
    assert.match((await runCli(['migrate', ...ends(user), '--state', damaged], env)).stderr, /Move it aside/);
    assert.equal(await total(user), 0, 'nothing was copied');
  });

  test('the state file, its -wal and -shm, and the log are created 0600 whatever the umask', async () => {
    const user = await newUser();
    const sub = path.join(dir, 'modes');
    const state = path.join(sub, 'state.db');
    const log = path.join(sub, 'run.log');
    const run = await runShell(['migrate', ...ends(user), '--state', state, '--log', log], env, { umask: '000' });
    assert.equal(run.code, 0, run.stderr);
    const made = readdirSync(sub).filter((f) => f.startsWith('state.db') || f === 'run.log');
    assert.ok(made.includes('state.db') && made.includes('run.log'), made.join(' '));
    for (const f of made) assert.equal((statSync(path.join(sub, f)).mode & 0o777).toString(8), '600', f);
    // The WAL files exist while a ledger is open: open it again and look.
    const holder = spawn(process.execPath, ['-e', `const D=require(${JSON.stringify(path.join(process.cwd(), 'node_modules/better-sqlite3'))}); const d=new D(${JSON.stringify(state)}); d.prepare('select count(*) from mailbox').get(); process.stdout.write('open\\n'); setInterval(()=>{},1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', () => resolve());
        holder.on('exit', () => reject(new Error('exited early')));
      });
      const wal = readdirSync(sub).filter((f) => /^state\.db-(wal|shm)$/.test(f));
      assert.deepEqual(wal.sort(), ['state.db-shm', 'state.db-wal']);
      for (const f of wal) assert.equal((statSync(path.join(sub, f)).mode & 0o777).toString(8), '600', f);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('close', r));
    }
    assert.ok(readFileSync(log, 'utf8').includes('migration started'));
  });
});
