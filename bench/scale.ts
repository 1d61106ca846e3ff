/**
 * Big-folder benchmark (issue 16, "Scale"): one folder of 200,000 small messages (`--messages N`,
 * up to 1,000,000) in a throwaway Dovecot on 127.0.0.1, copied IMAP -> IMAP by the built CLI into a
 * fresh user of the same server:
 *   1. listing + planning alone: `mailmover plan --no-state` at each size of `--plan-at` (default
 *      50,000 and the full size), into an empty destination;
 *   2. the full copy (wall, peak RSS, tool CPU), then an independent check of the destination;
 *   3. a rerun with nothing to copy (wall, peak RSS);
 *   4. 10 new messages APPENDed to the source, then a rerun (wall), and the check again;
 *   5. the server's floor for that last rerun: 10 more messages read from the source and
 *      APPENDed to the destination folder by a bare client (SELECT, one MULTIAPPEND), timed.
 * The source is seeded by writing Maildir files straight into Dovecot's directory
 * (bench/maildir-seed.ts) and read back over IMAP before use.
 *
 * Run: `npm run bench:scale` (options after `--`: --messages N, --plan-at N,N, --timeout SECONDS,
 * --plan-only: step 1 alone, e.g. `-- --messages 1000000 --plan-at 50000,200000,1000000
 * --plan-only` for the cost of listing and planning up to a million; KEEP_TEST_DIRS=1 keeps the work dir).
 */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { imapClient, type ImapTarget } from './corpus.js';
import { seedMaildirInbox, scaleMessage } from './maildir-seed.js';
import { runMeasured, type RunResult } from './proc.js';
import { table } from './report.js';
import { groupCpuSeconds } from './server-cpu.js';
import { findExecutable } from './tools.js';
import { multiAppend } from '../src/stores/imap/multiappend.js';
import { startDovecot, type PlainDovecotServer } from '../test/helpers/dovecot.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const NEW_MESSAGES = 10;
/** Issue 16's targets for this case. */
const TARGET = { rssMB: 250, rerunSeconds: 2 };

const { values } = parseArgs({
  options: { messages: { type: 'string', default: '200000' }, 'plan-at': { type: 'string' }, timeout: { type: 'string', default: '3600' }, 'plan-only': { type: 'boolean', default: false } },
  strict: true,
});
const MESSAGES = Number(values.messages);
if (!Number.isInteger(MESSAGES) || MESSAGES < 1 || MESSAGES > 1_000_000) throw new Error('--messages must be a whole number from 1 to 1000000');
const PLAN_AT = [...new Set((values['plan-at'] ?? `${Math.min(50_000, MESSAGES)},${MESSAGES}`).split(',').map(Number))].sort((a, b) => a - b);
if (PLAN_AT.some((n) => !Number.isInteger(n) || n < 1 || n > MESSAGES)) throw new Error(`--plan-at: whole numbers from 1 to --messages (${MESSAGES})`);
const TIMEOUT_MS = Number(values.timeout) * 1000;

const log = (m: string) => process.stderr.write(m + '\n');
const mib = (r: RunResult) => (r.peakRssKiB === null ? NaN : r.peakRssKiB / 1024);

/** Every message of INBOX as "message-id|size|date|flags", sorted: the independent check (imapflow). */
async function inboxKeys(t: ImapTarget): Promise<string[]> {
  const c = imapClient(t);
  await c.connect();
  const keys: string[] = [];
  try {
    const lock = await c.getMailboxLock('INBOX', { readOnly: true });
    try {
      if ((c.mailbox && c.mailbox.exists) || 0) {
        for await (const m of c.fetch('1:*', { uid: true, size: true, internalDate: true, flags: true, envelope: true })) {
          if (!m.envelope) continue; // an unsolicited FETCH (FLAGS) update, not our answer
          const date = m.internalDate instanceof Date ? m.internalDate.getTime() : new Date(m.internalDate ?? 0).getTime();
          keys.push(`${m.envelope.messageId}|${m.size}|${date}|${[...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort().join(' ')}`);
        }
      }
    } finally {
      lock.release();
    }
  } finally {
    await c.logout().catch(() => undefined);
  }
  return keys.sort();
}

/** totals.messages of a `plan --json` report, or undefined when it cannot be read. */
async function planCount(file: string): Promise<number | undefined> {
  try {
    const report = JSON.parse(await readFile(file, 'utf8')) as { totals?: { messages?: number } };
    return report.totals?.messages;
  } catch {
    return undefined;
  }
}

function sameKeys(a: string[], b: string[]): string {
  if (a.length !== b.length) return `${b.length} messages at the destination, ${a.length} at the source`;
  let diff = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) diff++;
  return diff ? `${diff} messages differ in Message-ID, size, INTERNALDATE or flags` : 'exact (Message-ID, size, INTERNALDATE, flags of every message)';
}

/**
 * The floor of a rerun after new mail, on the server's side: the source's newest messages (UID
 * above what the destination got) read, then the destination folder SELECTed and the messages
 * APPENDed in one MULTIAPPEND, by a client that does nothing else. A table row like run()'s.
 */
async function serverFloor(src: ImapTarget, dst: ImapTarget, dovecotPid: number): Promise<string[]> {
  const [from, to] = [imapClient(src), imapClient(dst)];
  await Promise.all([from.connect(), to.connect()]);
  try {
    const st = await to.status('INBOX', { messages: true });
    const count = st ? (st.messages ?? 0) : 0;
    const before = await groupCpuSeconds(dovecotPid);
    const t0 = performance.now();
    const lock = await from.getMailboxLock('INBOX', { readOnly: true });
    const items = [];
    try {
      for await (const m of from.fetch(`${count + 1}:*`, { uid: true, source: true, flags: true, internalDate: true })) {
        if (m.source) items.push({ body: m.source, flags: [...(m.flags ?? [])].filter((f) => f !== '\\Recent'), internalDate: m.internalDate instanceof Date ? m.internalDate : undefined });
      }
    } finally {
      lock.release();
    }
    const dlock = await to.getMailboxLock('INBOX');
    try {
      await multiAppend(to, 'INBOX', items, { nonSync: true });
    } finally {
      dlock.release();
    }
    const wall = (performance.now() - t0) / 1000;
    const after = await groupCpuSeconds(dovecotPid);
    return [`floor: a bare client reads ${items.length} new and APPENDs them`, String(count + items.length), '0', wall.toFixed(2), '-', '-', before === null || after === null ? '-' : (after - before).toFixed(2), '', ''];
  } finally {
    await Promise.all([from.logout().catch(() => undefined), to.logout().catch(() => undefined)]);
  }
}

/** How listing + planning grew from the smallest size to each larger one (linear: at most the message factor). */
function printPlanGrowth(rows: string[][]): void {
  const plans = rows.filter((r) => r[0]!.startsWith('plan'));
  const a = plans[0];
  for (const b of plans.slice(1)) {
    console.log(`listing + planning: ${a![1]} -> ${b[1]} messages (${(Number(b[1]) / Number(a![1])).toFixed(1)}x the messages) took ${(Number(b[3]) / Number(a![3])).toFixed(2)}x the wall time, ${(Number(b[5]) / Number(a![5])).toFixed(2)}x the tool CPU and ${(Number(b[4]) / Number(a![4])).toFixed(2)}x the peak RSS (a linear cost grows by at most the message factor; the start-up cost is fixed)`);
  }
}

async function main(): Promise<number> {
  const doveadm = findExecutable('doveadm', ['/usr/bin/doveadm']);
  if (!doveadm) throw new Error('doveadm not found (apt-get install -y dovecot-imapd)');
  if (!findExecutable('main.js', [CLI])) throw new Error('mailmover is not built (npm run build)');
  // Dovecot's imap processes are limited to 256 MB by default; SELECT of a Maildir folder of a
  // million messages needs more (measured: the process died "Out of memory" refreshing its uidlist,
  // and mailmover reported MM-CONNECTION-LOST for the folder). A server for such folders raises it.
  const dovecot: PlainDovecotServer = await startDovecot({ tls: false, fsync: 'default', extraConfig: 'default_vsz_limit = 2G\n' });
  const work = dovecot.dir;
  const conf = join(work, 'dovecot.conf');
  const owner = spawnSync('stat', ['-c', '%u:%g', join(work, 'mail')], { encoding: 'utf8' }).stdout.trim();
  const target = (user: string): ImapTarget => ({ host: dovecot.host, port: dovecot.port, user, pass: `${user}-pw` });
  const users = ['src', 'dst', ...PLAN_AT.filter((n) => n !== MESSAGES).map((n) => `src${n}`), ...PLAN_AT.map((n) => `plan${n}`)];
  for (const u of users) await dovecot.addUser(u, `${u}-pw`);
  const rows: string[][] = [['step', 'messages', 'exit', 'wall s', 'peak RSS MiB', 'tool CPU s', 'server CPU s', 'target', 'check']];
  let failed = false;
  const run = async (label: string, args: string[], from: string, to: string, count: number, target?: string) => {
    const name = label.replace(/[^a-z0-9]+/gi, '-');
    const before = await groupCpuSeconds(dovecot.pid);
    const r = await runMeasured(CLI, args, {
      cwd: ROOT,
      env: { ...process.env, MAILMOVER_FROM_PASSWORD: `${from}-pw`, MAILMOVER_TO_PASSWORD: `${to}-pw` },
      timeoutMs: TIMEOUT_MS,
      stdoutFile: join(work, `${name}.out`),
      stderrFile: join(work, `${name}.err`),
      timeFile: join(work, `${name}.time`),
    });
    const after = await groupCpuSeconds(dovecot.pid);
    if (r.exitCode !== 0) failed = true;
    const server = before === null || after === null ? '-' : (after - before).toFixed(2);
    const row = [label, String(count), String(r.exitCode ?? r.signal), r.wallSeconds.toFixed(2), mib(r).toFixed(0), r.cpuSeconds?.toFixed(2) ?? '-', server, target ?? '', ''];
    rows.push(row);
    log(`  ${label}: exit ${r.exitCode}, ${r.wallSeconds.toFixed(2)} s, peak RSS ${mib(r).toFixed(0)} MiB`);
    return { r, row, out: join(work, `${name}.out`) };
  };
  const url = (u: string) => `imap://${u}@127.0.0.1:${dovecot.port}`;
  try {
    log(`bench:scale: Dovecot pid ${dovecot.pid} on 127.0.0.1:${dovecot.port}, work dir ${work}`);
    for (const n of PLAN_AT.filter((x) => x !== MESSAGES)) {
      const s = seedMaildirInbox({ maildir: join(dovecot.homeOf(`src${n}`), 'Maildir'), count: n, doveadm, conf, user: `src${n}`, owner });
      log(`bench:scale: seeded src${n} with ${n} messages in ${s.toFixed(1)} s`);
    }
    const seedSeconds = seedMaildirInbox({ maildir: join(dovecot.homeOf('src'), 'Maildir'), count: MESSAGES, doveadm, conf, user: 'src', owner, onProgress: (d) => log(`  written ${d}/${MESSAGES}`) });
    log(`bench:scale: seeded src with ${MESSAGES} messages (files + doveadm force-resync) in ${seedSeconds.toFixed(1)} s; reading it back...`);
    // --plan-only reads nothing back (a million envelopes over IMAP): each plan's own count is the check, below.
    const srcKeys = values['plan-only'] ? [] : await inboxKeys(target('src'));
    if (!values['plan-only'] && srcKeys.length !== MESSAGES) throw new Error(`the seeded source has ${srcKeys.length} messages, expected ${MESSAGES}`);

    // 1. listing + planning alone, no ledger, into an empty destination
    for (const n of PLAN_AT) {
      const from = n === MESSAGES ? 'src' : `src${n}`;
      const p = await run(`plan (list + plan, --no-state)`, ['plan', '--from', url(from), '--to', url(`plan${n}`), '--no-state', '--json'], from, `plan${n}`, n);
      // The plan's report counts the source's messages: the listing was whole.
      const counted = await planCount(p.out);
      p.row[8] = counted === n ? `listed ${n}` : `listed ${counted ?? '?'} of ${n}`;
      if (counted !== n) failed = true;
    }
    if (values['plan-only']) {
      console.log(`\nListing and planning one folder (mailmover plan --no-state), IMAP on one Dovecot 2.3 (127.0.0.1); 2 CPUs.`);
      console.log(table(rows));
      printPlanGrowth(rows);
      return failed ? 1 : 0;
    }
    // 2.-4. copy, rerun, 10 new + rerun; one ledger for the destination
    const migrate = ['migrate', '--from', url('src'), '--to', url('dst'), '--json', '--state', join(work, 'state.db')];
    const copy = await run('full copy', migrate, 'src', 'dst', MESSAGES, `RSS < ${TARGET.rssMB} MB`);
    copy.row[8] = sameKeys(srcKeys, await inboxKeys(target('dst')));
    const rerun = await run('rerun, nothing new', migrate, 'src', 'dst', MESSAGES, `< ${TARGET.rerunSeconds} s`);
    const addNew = async (tag: string, first: number) => {
      const c = imapClient(target('src'));
      await c.connect();
      try {
        for (let i = 0; i < NEW_MESSAGES; i++) {
          const m = scaleMessage(first + i, tag);
          await c.append('INBOX', m.body, m.flags, m.internalDate);
        }
      } finally {
        await c.logout().catch(() => undefined);
      }
    };
    await addNew('new', MESSAGES);
    const after10 = await run(`rerun after ${NEW_MESSAGES} new`, migrate, 'src', 'dst', MESSAGES + NEW_MESSAGES, `< ${TARGET.rerunSeconds} s`);
    after10.row[8] = sameKeys(await inboxKeys(target('src')), await inboxKeys(target('dst')));

    // 5. The server's floor for the rerun after new mail: what a client that does nothing else
    // spends to SELECT the destination folder of this size and APPEND 10 messages to it (one
    // MULTIAPPEND on one connection). No peer runs a full copy here: mbsync, one APPEND per
    // message, was measured at under 70 messages/s once the folder passed 90,000.
    await addNew('floor', MESSAGES + NEW_MESSAGES);
    const floorRow = await serverFloor(target('src'), target('dst'), dovecot.pid);
    rows.push(floorRow);
    console.log(`\nOne folder of ${MESSAGES} small messages (~1 KB), IMAP -> IMAP on one Dovecot 2.3 (127.0.0.1, default mail_fsync), mailmover with its defaults and a ledger; 2 CPUs shared with other work.`);
    console.log(table(rows));
    const rssMB = (mib(copy.r) * 1048576) / 1e6;
    const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
    console.log(`\nIssue 16 targets: full copy peak RSS ${rssMB.toFixed(0)} MB < ${TARGET.rssMB} MB: ${verdict(rssMB < TARGET.rssMB)}; ` +
      `rerun ${rerun.r.wallSeconds.toFixed(2)} s < ${TARGET.rerunSeconds} s: ${verdict(rerun.r.wallSeconds < TARGET.rerunSeconds)}; ` +
      `rerun after ${NEW_MESSAGES} new ${after10.r.wallSeconds.toFixed(2)} s < ${TARGET.rerunSeconds} s: ${verdict(after10.r.wallSeconds < TARGET.rerunSeconds)}`);
    console.log(`The server's floor for the rerun after ${NEW_MESSAGES} new: ${floorRow[3]} s (${floorRow[6]} s of Dovecot's CPU) to SELECT the destination folder and APPEND ${NEW_MESSAGES} messages with a bare client; mailmover's rerun after ${NEW_MESSAGES} new took ${after10.r.wallSeconds.toFixed(2)} s (${after10.row[6]} s of Dovecot's CPU).`);
    printPlanGrowth(rows);
    if (rows.slice(1).some((r) => r[8] && !r[8].startsWith('exact'))) failed = true;
    return failed ? 1 : 0;
  } finally {
    await dovecot.stop(); // removes the work dir unless KEEP_TEST_DIRS=1
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`bench:scale: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
