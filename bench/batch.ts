/**
 * Batch speed-up and memory (issue 16: "a batch of 200 small mailboxes with --parallel 8 in one
 * process: peak RSS and wall time beside --parallel 1"). Two throwaway Dovecots on 127.0.0.1;
 * MAILBOXES source mailboxes of MESSAGES messages each (about 20 KB, in two folders), reached
 * through the master user; the built CLI runs `batch run` (one process) into fresh destination
 * users at each --parallel level, the levels interleaved for --rounds rounds, every destination
 * checked over IMAP; one table puts the levels side by side. Then the same batch with the ledger in
 * PostgreSQL (a throwaway PostgreSQL 15 cluster) at the highest level, and queued (`--queue`) to two
 * `mailmover worker --parallel 2` processes on this box, to show what the shared database costs.
 * Run: `npm run bench:batch` (options after `--`: --mailboxes N, --messages N, --parallel LIST
 * (default 1,4: the levels compared, side by side in one table), --rounds N (default 2, the levels
 * interleaved), --no-warmup, --no-postgres (skip the PostgreSQL ledger and the queue runs)).
 * Issue 16's case: `npm run bench:batch -- --mailboxes 200 --parallel 1,8 --no-postgres`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseEndpoint } from '../src/core/endpoint.js';
import { ImapStore } from '../src/stores/imap/imap-store.js';
import { startDovecot } from '../test/helpers/dovecot.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { imapClient } from './corpus.js';
import { runMeasured } from './proc.js';
import { median, table } from './report.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: {
    mailboxes: { type: 'string', default: '40' },
    messages: { type: 'string', default: '60' },
    parallel: { type: 'string', default: '1,4' },
    rounds: { type: 'string', default: '2' },
    'no-warmup': { type: 'boolean', default: false },
    'no-postgres': { type: 'boolean', default: false },
  },
  strict: true,
});
const whole = (name: string, v: string, max: number) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be a whole number from 1 to ${max} (got "${v}")`);
  return n;
};
const MAILBOXES = whole('mailboxes', values.mailboxes, 5000);
const MESSAGES = whole('messages', values.messages, 100_000);
const LEVELS = [...new Set(values.parallel.split(',').map((v) => whole('parallel', v.trim(), 64)))];
const ROUNDS = whole('rounds', values.rounds, 20);

async function seed(port: number, user: string): Promise<void> {
  const store = new ImapStore({ endpoint: parseEndpoint(`imap://${user}@127.0.0.1:${port}`, 'to'), credentials: { password: 'pw' }, security: {}, side: 'destination' });
  await store.connect();
  try {
    await store.createFolder(['Archive']);
    for (const [folder, n] of [[['INBOX'], Math.ceil(MESSAGES / 2)], [['Archive'], Math.floor(MESSAGES / 2)]] as const) {
      const items = Array.from({ length: n }, (_, k) => ({
        body: Buffer.from(`From: a@example.org\r\nSubject: ${user} ${folder[0]} ${k}\r\nMessage-ID: <${user}-${folder[0]}-${k}@bench>\r\n\r\n${'body text line\r\n'.repeat(1300)}`),
        flags: k % 2 ? ['\\Seen'] : [],
        internalDate: new Date(Date.UTC(2021, 0, 1, 0, k)),
      }));
      const out = await store.appendBatch(folder, items);
      if (out.some((o) => !o.ok)) throw new Error('seeding failed');
    }
  } finally {
    await store.close();
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'mailmover-bench-batch-'));
  const postgres = !values['no-postgres'];
  const [source, dest, db] = await Promise.all([startDovecot({ tls: false, fsync: 'default' }), startDovecot({ tls: false, fsync: 'default' }), postgres ? startPostgres() : undefined]);
  try {
    const users = Array.from({ length: MAILBOXES }, (_, i) => `user${String(i + 1).padStart(4, '0')}`);
    for (const u of users) await source.addUser(u, 'pw');
    for (let i = 0; i < users.length; i += 8) await Promise.all(users.slice(i, i + 8).map((u) => seed(source.port, u)));
    await writeFile(join(work, 'servers.yaml'), `source:\n  url: imap://127.0.0.1:${source.port}\n  master: { user: admin, password: env:MASTER }\ndestination:\n  url: imap://127.0.0.1:${dest.port}\n  master: { user: admin, password: env:MASTER }\n`);
    console.log(`batch bench: ${MAILBOXES} mailboxes x ${MESSAGES} messages (~20 KB each, 2 folders), Dovecot master-user logins, one \`mailmover batch run\` process per run, 2 CPUs shared by both servers and mailmover (and other work on this box)`);
    const results: { parallel: number; seconds: number; rss: number }[] = [];
    let round = 0;
    const runRound = async (label: string, extra: string[]) => {
      round++;
      const list = ['source_user,destination_user', ...users.map((u) => `${u},${u}r${round}`)].join('\n') + '\n';
      for (const u of users) await dest.addUser(`${u}r${round}`, 'pw');
      await writeFile(join(work, `list-${round}.csv`), list);
      const res = await runMeasured(
        join(ROOT, 'dist/cli/main.js'),
        ['batch', 'run', join(work, `list-${round}.csv`), '--config', join(work, 'servers.yaml'), ...extra, '--report-dir', join(work, `reports-${round}`), '--json', '--no-log'],
        { cwd: ROOT, env: { ...process.env, MASTER: 'adminpw' }, stdoutFile: join(work, `out-${round}.json`), stderrFile: join(work, `err-${round}.txt`), timeFile: join(work, `time-${round}.txt`), timeoutMs: 3_600_000 },
      );
      if (res.exitCode !== 0) throw new Error(`batch run exited ${res.exitCode}; see ${work}/err-${round}.txt`);
      // Independent check: every destination mailbox holds all its messages (STATUS over IMAP).
      const short = await countShort(dest.port, users.map((u) => `${u}r${round}`));
      if (short.length) throw new Error(`${short.length} destination mailboxes are incomplete after "${label}", e.g. ${short.slice(0, 3).join(', ')}`);
      const rss = res.peakRssKiB === null ? NaN : res.peakRssKiB / 1024;
      console.log(`  ${label}: ${res.wallSeconds.toFixed(2)} s, peak RSS ${rss.toFixed(0)} MiB, tool CPU ${res.cpuSeconds?.toFixed(1) ?? '-'} s; all ${MAILBOXES} mailboxes complete`);
      return { seconds: res.wallSeconds, rss };
    };
    // A first run warms the page cache and both Dovecots' indexes; it is shown, not counted.
    const top = Math.max(...LEVELS);
    if (!values['no-warmup']) await runRound(`warm-up run, --parallel ${top} (not counted)`, ['--parallel', String(top), '--state', join(work, 'state-warm.db')]);
    for (let r = 0; r < ROUNDS; r++) {
      for (const parallel of LEVELS) {
        const res = await runRound(`--parallel ${parallel}`, ['--parallel', String(parallel), '--state', join(work, `state-${round + 1}.db`)]);
        results.push({ parallel, ...res });
      }
    }
    const rows = [['--parallel', 'runs', 'wall s (median)', 'mailboxes/s', 'messages/s', 'peak RSS MiB (median)']];
    for (const p of LEVELS) {
      const mine = results.filter((r) => r.parallel === p);
      const wall = median(mine.map((r) => r.seconds));
      const rss = median(mine.map((r) => r.rss));
      rows.push([String(p), String(mine.length), wall.toFixed(2), (MAILBOXES / wall).toFixed(1), ((MAILBOXES * MESSAGES) / wall).toFixed(0), rss.toFixed(0)]);
    }
    console.log(`\n${table(rows)}`);
    const base = LEVELS[0]!;
    for (const p of LEVELS.slice(1)) {
      const w = (lvl: number) => median(results.filter((r) => r.parallel === lvl).map((r) => r.seconds));
      const m = (lvl: number) => median(results.filter((r) => r.parallel === lvl).map((r) => r.rss));
      console.log(`--parallel ${p} vs ${base}: wall ${(w(p) / w(base)).toFixed(2)}x (speed-up ${(w(base) / w(p)).toFixed(2)}x), peak RSS ${(m(p) / m(base)).toFixed(2)}x`);
    }
    if (!db) return;
    // The ledger in PostgreSQL, on this machine: its cost against the SQLite file above.
    await runRound(`--parallel ${top}, ledger in PostgreSQL`, ['--parallel', String(top), '--state', await db.createDatabase('bench_ledger')]);
    // Queued to two workers of 2 mailboxes each (the RSS is the enqueuing process's only).
    const queue = await db.createDatabase('bench_queue');
    const workers = [0, 1].map((k) =>
      spawn(process.execPath, [join(ROOT, 'dist/cli/main.js'), 'worker', '--queue', queue, '--parallel', '2', '--report-dir', join(work, `worker-${k}`), '--no-log'], { env: { ...process.env, MASTER: 'adminpw' }, stdio: 'ignore' }),
    );
    try {
      await runRound('--queue, 2 workers x --parallel 2 (ledger and statuses in PostgreSQL)', ['--queue', queue]);
    } finally {
      for (const w of workers) w.kill('SIGINT');
      await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(undefined) : w.once('exit', r)))));
    }
  } finally {
    await Promise.all([source.stop(), dest.stop(), db?.stop()]);
    await rm(work, { recursive: true, force: true });
  }
}

/** The destination users (password "pw") whose INBOX + Archive do not hold MESSAGES messages. */
async function countShort(port: number, users: string[]): Promise<string[]> {
  const short: string[] = [];
  for (let i = 0; i < users.length; i += 8) {
    await Promise.all(
      users.slice(i, i + 8).map(async (user) => {
        const c = imapClient({ host: '127.0.0.1', port, user, pass: 'pw' });
        await c.connect();
        try {
          let n = 0;
          for (const box of ['INBOX', 'Archive']) {
            const st = await c.status(box, { messages: true }).catch(() => undefined);
            n += (st && st.messages) || 0;
          }
          if (n !== MESSAGES) short.push(`${user} (${n}/${MESSAGES})`);
        } finally {
          await c.logout().catch(() => undefined);
        }
      }),
    );
  }
  return short;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench:batch: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
