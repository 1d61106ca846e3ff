/**
 * The command line tells the truth: exit codes by class, help grouped by task and ending with the
 * exit codes, unknown options named before missing ones, a failed login shown as just the error,
 * Ctrl-C reported as interrupted (130), EPIPE ignored, and the message filters (--since, --before,
 * --max-age, --min-size, --just-folders) with their effect on verify and the ledger.
 * Real Dovecot; the built binary; mailboxes read back with imapflow (test/helpers/fixture.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { startDovecot, type DovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox, type FixtureFolder, type FixtureMessage } from '../helpers/fixture.js';
import { CLI, runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'mm-cli-truth-'));
const msg = (id: string, date: string, pad = 0): FixtureMessage => ({
  raw: Buffer.from(`From: a@example.org\r\nSubject: ${id}\r\nMessage-ID: <${id}@x>\r\n\r\nbody ${'x'.repeat(pad)}\r\n`),
  flags: ['\\Seen'],
  internalDate: new Date(date),
});
// Dates and sizes chosen so that each filter lets a different subset in.
const fixture: FixtureFolder[] = [
  { path: ['INBOX'], subscribed: true, messages: [msg('old-small', '2019-05-01T10:00:00Z'), msg('mid-big', '2022-05-01T10:00:00Z', 5000), msg('new-small', '2024-05-01T10:00:00Z')] },
  { path: ['Work', 'Deep'], subscribed: true, messages: [msg('new-big', '2024-06-01T10:00:00Z', 5000), msg('older', '2018-01-01T10:00:00Z')] },
];
const subjects = async (server: DovecotServer, user: string, pw: string) => {
  const folders = await readMailbox(server, user, pw);
  // Dovecot's own auto-created folders (Sent, Trash, ...) are left out: only the fixture's.
  return Object.fromEntries(folders.filter((f) => !f.noSelect && ['INBOX', 'Work/Deep'].includes(f.path.join('/'))).map((f) => [f.path.join('/'), f.messages.length]));
};


/**
 * Starts the CLI for a test that interrupts it: its stderr so far, and interrupt(), which sends
 * SIGINT and resolves with the exit code, or 'hung' (after a SIGKILL) when it does not exit within `ms`.
 */
function startCli(args: string[], env: Record<string, string>): { stderr(): string; interrupt(ms: number): Promise<number | null | 'hung'> } {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  return {
    stderr: () => stderr,
    interrupt: async (ms) => {
      child.kill('SIGINT');
      const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), ms))]);
      if (code === 'hung') child.kill('SIGKILL');
      return code;
    },
  };
}
describe('the command line tells the truth', () => {
  let server: DovecotServer;
  let n = 0;
  const fresh = async () => {
    const user = `d${++n}`;
    await server.addUser(user, 'dst-pw');
    return user;
  };
  const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
  const ends = (to: string) => ['--from', server.url('src'), '--to', server.url(to), '--from-tls-insecure', '--to-tls-insecure'];
  before(async () => {
    server = await startDovecot();
    await server.addUser('src', 'src-pw');
    await seedMailbox(server, 'src', 'src-pw', fixture);
  });
  after(async () => server?.stop());

  test('a wrong password: exit 4, just the error with a hint (no table, no "0 messages copied", no "..")', async () => {
    const to = await fresh();
    const run = await runCli(['migrate', ...ends(to), '--no-state'], { ...env, MAILMOVER_FROM_PASSWORD: 'wrong-pw' });
    assert.equal(run.code, 4, run.stderr);
    assert.match(run.stderr, /MM-AUTH-FAILED/);
    assert.match(run.stderr, /hint: /);
    assert.doesNotMatch(run.stdout + run.stderr, /SOURCE\s+DESTINATION/);
    assert.doesNotMatch(run.stdout + run.stderr, /0 messages \(0 B\) copied/);
    assert.doesNotMatch(run.stdout + run.stderr, /\.\./);
    const verify = await runCli(['verify', ...ends(to)], { ...env, MAILMOVER_TO_PASSWORD: 'wrong-pw' });
    assert.equal(verify.code, 4, verify.stderr + verify.stdout);
    assert.match(verify.stderr, /MM-AUTH-FAILED.*\nhint: /);
    assert.doesNotMatch(verify.stdout, /SOURCE\s+DESTINATION/);
  });

  test('a closed port: exit 5 (connection class)', async () => {
    const closed: Server = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const run = await runCli(['migrate', '--from', `imap://src@127.0.0.1:${port}`, '--to', server.url('x'), '--no-state'], env);
    assert.equal(run.code, 5, run.stderr);
    assert.match(run.stderr, /MM-CONNECT-REFUSED/);
  });

  test('an unknown option is named (with a suggestion) even when a required one is missing', async () => {
    const run = await runCli(['migrate', '--form', 'x']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /MM-USAGE: unknown option '--form'/);
    assert.match(run.stderr, /Did you mean --from\?/);
    const missing = await runCli(['plan', '--to', server.url('x')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /required option '--from <url>' not specified/);
  });

  test('--help: grouped by task, examples, exit codes at the end of every command; plan lists no copy-only option', async () => {
    const migrate = (await runCli(['migrate', '--help'])).stdout;
    for (const group of ['Endpoints and login:', 'What to copy:', 'Speed and limits:', 'Safety and state:', 'Scanning:', 'Output:', 'Examples:']) assert.ok(migrate.includes(`\n${group}\n`), group);
    assert.ok(migrate.indexOf('--scan-policy') > migrate.indexOf('Scanning:'));
    const plan = (await runCli(['plan', '--help'])).stdout;
    for (const copyOnly of ['--scan', '--retries', '--delete-source', '--sync-deletions', '--watch', '--max-bytes-per-second', '--just-folders']) assert.ok(!plan.includes(copyOnly), `plan --help lists ${copyOnly}`);
    for (const shared of ['--from-password-file', '--from-token-command', '--to-authzid', '--allow-plaintext', '--timeout', '--since', '--include']) assert.ok(plan.includes(shared), shared);
    for (const cmd of [['migrate'], ['plan'], ['verify'], ['report'], ['batch', 'run'], ['batch', 'status'], ['worker'], []]) {
      const help = await runCli([...cmd, '--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /Exit codes:\n(.*\n)*\s+130\s+interrupted.*\n\s*$/, `${cmd.join(' ')} --help ends with the exit codes`);
    }
  });

  test('report accepts the same login options as migrate (one argument set for every command)', async () => {
    const pw = join(dir, 'pw');
    writeFileSync(pw, 'src-pw\n', { mode: 0o600 });
    const state = join(dir, 'report-state.sqlite');
    const to = await fresh();
    const args = ['--from', server.url('src'), '--to', server.url(to), '--from-password-file', pw, '--to-tls-insecure', '--from-tls-insecure', '--timeout', '5'];
    assert.equal((await runCli(['migrate', ...args, '--state', state], { MAILMOVER_TO_PASSWORD: 'dst-pw' })).code, 0);
    const report = await runCli(['report', ...args, '--state', state]);
    assert.equal(report.code, 0, report.stderr);
    assert.match(report.stdout, /INBOX -> INBOX: 3 copied/);
  });

  test('piped into head: no EPIPE stack trace', () => {
    const out = spawnSync('sh', ['-c', `"${process.execPath}" "${CLI}" migrate --help | head -1`], { encoding: 'utf8' });
    assert.equal(out.status, 0);
    assert.equal(out.stdout, 'Usage: mailmover migrate [options]\n');
    assert.doesNotMatch(out.stderr, /EPIPE|Error/);
  });

  test('--since/--before/--min-size copy only matching messages; verify with the same filter matches; a later unfiltered run plans in full', async () => {
    const to = await fresh();
    const state = join(dir, 'filter-state.sqlite');
    const filter = ['--since', '2021-01-01', '--before', '2024-05-15', '--min-size', '1K'];
    const run = await runCli(['migrate', ...ends(to), '--state', state, ...filter, '--json'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as { totals: { copied: number } }).totals.copied, 1);
    assert.deepEqual(await subjects(server, to, 'dst-pw'), { INBOX: 1, 'Work/Deep': 0 });
    const same = await runCli(['verify', ...ends(to), ...filter], env);
    assert.equal(same.code, 0, same.stdout);
    const all = await runCli(['verify', ...ends(to)], env);
    assert.equal(all.code, 1, all.stdout);
    assert.match(all.stdout, /4 missing/);
    // --max-age (days back from now) on top: the 2024 messages are older than one day.
    const none = await runCli(['migrate', ...ends(to), '--state', state, '--max-age', '1', '--json'], env);
    assert.equal(none.code, 0, none.stderr);
    assert.equal((JSON.parse(none.stdout) as { totals: { copied: number } }).totals.copied, 0);
    // The filtered passes were not recorded as complete: this run lists every folder in full.
    const full = await runCli(['migrate', ...ends(to), '--state', state, '--json'], env);
    assert.equal(full.code, 0, full.stderr);
    const r = JSON.parse(full.stdout) as { totals: { copied: number }; folders: { incremental?: boolean }[] };
    assert.equal(r.totals.copied, 4);
    assert.ok(r.folders.every((f) => !f.incremental));
    assert.deepEqual(await subjects(server, to, 'dst-pw'), { INBOX: 3, 'Work/Deep': 2 });
    const bad = await runCli(['migrate', ...ends(to), '--since', '2024-01-01', '--before', '2023-01-01'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /MM-CONFIG-OPTION/);
    assert.equal((await runCli(['migrate', ...ends(to), '--since', 'yesterday'], env)).code, 2);
  });

  test('--just-folders creates the tree and copies no message; --dry is --dry-run', async () => {
    const to = await fresh();
    const dry = await runCli(['migrate', ...ends(to), '--no-state', '--dry'], env);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /Nothing was changed/);
    assert.deepEqual(await subjects(server, to, 'dst-pw'), { INBOX: 0 });
    const run = await runCli(['migrate', ...ends(to), '--no-state', '--just-folders'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await subjects(server, to, 'dst-pw'), { INBOX: 0, 'Work/Deep': 0 });
  });

  test('summary: "1 message", rates in whole or rounded units', async () => {
    const to = await fresh();
    const run = await runCli(['migrate', ...ends(to), '--no-state', '--include', '^Work/Deep$', '--since', '2024-01-01'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /complete: 1 message \(/);
    assert.doesNotMatch(run.stdout, /\d\.\d{2,} B\/s/);
  });

  test('on a terminal: "connecting to source ..." and "logged in" lines; none with --json', async () => {
    const to = await fresh();
    // script(1) gives the run a pseudo-terminal, as a user at a shell has.
    const onTty = (extra: string) =>
      spawnSync('script', ['-qec', `"${process.execPath}" "${CLI}" migrate ${ends(to).map((a) => `'${a}'`).join(' ')} --no-state ${extra}`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
    const plain = onTty('');
    assert.equal(plain.status, 0, plain.stdout);
    assert.match(plain.stdout, /connecting to source imap:\/\/src@127\.0\.0\.1:\d+ and destination imap:\/\/d\d+@127\.0\.0\.1:\d+/);
    assert.match(plain.stdout, /logged in to the source/);
    const json = onTty('--json');
    assert.equal(json.status, 0, json.stdout);
    assert.doesNotMatch(json.stdout, /connecting to|logged in/);
  });

  test('Ctrl-C during a slow login: exit 130, MM-ABORTED, status interrupted in the report', async () => {
    // Accepts and never greets; the signal is sent once mailmover is connected and waiting for the greeting.
    let accepted!: () => void;
    const connected = new Promise<void>((r) => (accepted = r));
    const silent: Server = createServer(() => accepted());
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const reportFile = join(dir, 'interrupted.json');
    try {
      const run = startCli(['migrate', '--from', `imap://src@127.0.0.1:${port}`, '--to', server.url('x'), '--no-state', '--timeout', '60', '--report', reportFile], env);
      await connected;
      await new Promise((r) => setTimeout(r, 300));
      const code = await run.interrupt(20_000);
      assert.equal(code, 130, run.stderr());
      assert.doesNotMatch(run.stderr(), /MM-TLS-FAILED|Unexpected close/);
      const report = JSON.parse(readFileSync(reportFile, 'utf8')) as { status: string; error?: { code: string } };
      assert.equal(report.status, 'interrupted');
      assert.equal(report.error?.code, 'MM-ABORTED');
    } finally {
      silent.close();
    }
  });

  test('Ctrl-C during a copy: exit 130, status interrupted; a rerun completes', async () => {
    const to = await fresh();
    const reportFile = join(dir, 'copy-interrupted.json');
    const run = startCli(['migrate', ...ends(to), '--no-state', '--max-messages-per-second', '0.5', '--connections', '1', '--no-progress', '--report', reportFile], env);
    for (let i = 0; i < 200 && !/plan: /.test(run.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500));
    const code = await run.interrupt(30_000);
    assert.equal(code, 130, run.stderr());
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as { status: string; error?: { code: string } };
    assert.equal(report.status, 'interrupted');
    const rerun = await runCli(['migrate', ...ends(to), '--no-state'], env);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.deepEqual(await subjects(server, to, 'dst-pw'), { INBOX: 3, 'Work/Deep': 2 });
  });
});
