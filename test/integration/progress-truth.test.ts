/**
 * The live line tells the truth from the first screen: on a pseudo-terminal (script(1), as a
 * user at a shell has), every status line of a run measures against the mailbox's true totals
 * (messages and bytes, as the source holds them), the count copied only rises, and the ETA,
 * once one is shown, is of the order of the time the run then really took. After Ctrl-C the
 * folders the run never reached say so. Real Dovecot; the built binary.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDovecot, type DovecotServer } from '../helpers/dovecot.js';
import { seedMailbox, type FixtureFolder, type FixtureMessage } from '../helpers/fixture.js';
import { CLI, runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'mm-progress-'));
const msg = (folder: string, i: number): FixtureMessage => ({
  raw: Buffer.from(`From: a@example.org\r\nSubject: ${folder} ${i}\r\nMessage-ID: <${folder}-${i}@x>\r\n\r\n${'line of text\r\n'.repeat(20 + ((i * 37) % 400))}`),
  flags: [],
  internalDate: new Date(Date.UTC(2024, 0, 1 + i)),
});
// Ten folders of six: the engine reports progress per batch (here a folder's worth), so many small folders give many screens.
const NAMES = ['INBOX', ...Array.from({ length: 9 }, (_, k) => `Folder ${k + 1}`)];
const folders: FixtureFolder[] = NAMES.map((name) => ({ path: [name], subscribed: true, messages: Array.from({ length: 6 }, (_, i) => msg(name, i)) }));
const TOTAL = folders.reduce((n, f) => n + f.messages.length, 0);
const BYTES = folders.reduce((n, f) => n + f.messages.reduce((b, m) => b + m.raw.length, 0), 0);

/** The status lines a terminal was shown (each redraw starts with a carriage return), with the time each arrived. */
interface Screen {
  at: number;
  text: string;
}

/** Runs the CLI under script(1) and collects every status line with its arrival time. */
function onTerminal(args: string[], env: Record<string, string>): { screens: Screen[]; done: Promise<number | null>; interrupt(): void; started: number } {
  const command = `"${process.execPath}" "${CLI}" ${args.map((a) => `'${a}'`).join(' ')}`;
  const child = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, ...env, COLUMNS: '200' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const screens: Screen[] = [];
  let pending = '';
  child.stdout.on('data', (d: Buffer) => {
    pending += d.toString();
    const parts = pending.split(/[\r\n]/);
    pending = parts.pop()!;
    for (const p of parts) {
      // eslint-disable-next-line no-control-regex -- the terminal's erase-line sequence
      const text = p.replace(/\u001b\[K/g, '').trim();
      if (text.startsWith('folders ')) screens.push({ at: Date.now(), text });
    }
  });
  child.stderr.resume();
  return { screens, done: new Promise((r) => child.on('close', (c) => r(c))), interrupt: () => child.kill('SIGINT'), started: Date.now() };
}

/** The numbers of one status line. */
function parse(text: string): { copied: number; total: string; bytesTotal: string; eta: string } {
  const m = /messages (\d+)\/(\S+).*? \S+ \S+\/(~?[\d.]+ \S+?|[\d.]+ \S+?\+) {2}.*ETA (\S+)$/.exec(text);
  assert.ok(m, `a status line: ${text}`);
  return { copied: Number(m[1]), total: m[2]!, bytesTotal: m[3]!, eta: m[4]! };
}

/** Seconds in "1m05s", "~12s", "1h02m". */
function seconds(eta: string): number {
  const m = /^~?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(eta);
  assert.ok(m, eta);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

describe('the live line measures against the true size from the first screen', () => {
  let server: DovecotServer;
  let n = 0;
  const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
  const fresh = async () => {
    const user = `d${++n}`;
    await server.addUser(user, 'dst-pw');
    return user;
  };
  const ends = (to: string) => ['--from', server.url('src'), '--to', server.url(to), '--from-tls-insecure', '--to-tls-insecure'];
  before(async () => {
    server = await startDovecot();
    await server.addUser('src', 'src-pw');
    await seedMailbox(server, 'src', 'src-pw', folders);
  });
  after(async () => server?.stop());

  test('every screen: the mailbox total; copied only rises; the ETA is of the order of the time left', async () => {
    const to = await fresh();
    // 10 messages a second: a run of about six seconds, long enough for many screens.
    const run = onTerminal(['migrate', ...ends(to), '--no-state', '--connections', '1', '--max-messages-per-second', '10'], env);
    assert.equal(await run.done, 0);
    const ended = Date.now();
    assert.ok(run.screens.length >= 5, `screens: ${run.screens.map((s) => s.text).join('\n')}`);
    let copied = -1;
    let timed = 0;
    for (const s of run.screens) {
      const p = parse(s.text);
      // From the first screen: the whole mailbox (estimated until each folder is listed, exact after).
      assert.equal(p.total.replace(/^~/, ''), String(TOTAL), s.text);
      assert.ok(!p.total.endsWith('+'), s.text);
      assert.ok(p.copied >= copied, `copied went down: ${s.text}`);
      copied = p.copied;
      const kib = Number(/([\d.]+)/.exec(p.bytesTotal)![1]);
      assert.ok(Math.abs(kib * 1024 - BYTES) < BYTES * 0.001 + 52, `bytes total ${p.bytesTotal} vs ${BYTES}: ${s.text}`);
      // Once a rate is known, the ETA is within a factor of three of the time the run really took from then on (or both under 2 s).
      if (p.eta !== '--' && p.copied >= 10 && p.copied <= TOTAL - 10) {
        const left = (ended - s.at) / 1000;
        const said = seconds(p.eta);
        assert.ok(said <= Math.max(2, 3 * left) && said >= Math.min(left / 3, left - 2), `ETA ${p.eta} with ${left.toFixed(1)} s really left: ${s.text}`);
        timed++;
      }
    }
    assert.ok(timed >= 2, `ETAs checked: ${timed}\n${run.screens.map((s) => s.text).join('\n')}`);
    assert.equal(copied, TOTAL);
  });

  test('Ctrl-C: folders reached are interrupted, the others not started (never ok); a rerun completes them', async () => {
    const to = await fresh();
    const reportFile = join(dir, 'interrupted.json');
    const args = ['migrate', ...ends(to), '--no-state', '--connections', '1', '--max-messages-per-second', '5', '--no-progress', '--report', reportFile];
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    for (let i = 0; i < 200 && !/source: /.test(stderr); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(stderr, new RegExp(`source: ${TOTAL} messages \\(.+\\) in \\d+ folders; to copy: ~${TOTAL}`));
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGINT');
    assert.equal(await exited, 130, stderr);
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as { status: string; folders: { source: string; state?: string }[] };
    assert.equal(report.status, 'interrupted');
    const states = report.folders.filter((f) => NAMES.includes(f.source)).map((f) => f.state);
    assert.ok(states.includes('interrupted'), JSON.stringify(report.folders));
    assert.ok(states.includes('not started'), JSON.stringify(report.folders));
    assert.ok(states.every((s) => s === 'complete' || s === 'interrupted' || s === 'not started'), JSON.stringify(states));
    // The summary's STATE column says the same: no folder the run never finished reads "ok".
    for (const f of report.folders.filter((x) => x.state === 'not started' || x.state === 'interrupted')) {
      const row = stdout.split('\n').find((l) => l.startsWith(f.source + ' '));
      assert.ok(row && row.trimEnd().endsWith(f.state!), `${f.source}: ${row}`);
    }
    const rerun = await runCli(['migrate', ...ends(to), '--no-state'], env);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stdout, new RegExp(`\\d+ already present`));
  });
});
