/**
 * Batch speed-up (issue: "the batch's wall time with --parallel 1 vs --parallel 4"). Two throwaway
 * Dovecots on 127.0.0.1; MAILBOXES source mailboxes of MESSAGES messages each (about 20 KB, in two
 * folders), reached through the master user; the built CLI runs `batch run` into fresh
 * destination users, once with --parallel 1 and once with --parallel 4 (then 1 and 4 again, in
 * that order, to show the spread). Then the same batch with the ledger in PostgreSQL (a throwaway
 * PostgreSQL 15 cluster): `--parallel 4 --state postgres://...`, and queued (`--queue`) to two
 * `mailmover worker --parallel 2` processes on this box, to show what the shared database costs.
 * Run: `npm run bench:batch` (options: --mailboxes N, --messages N).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseEndpoint } from '../src/core/endpoint.js';
import { ImapStore } from '../src/stores/imap/imap-store.js';
import { startDovecot } from '../test/helpers/dovecot.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { runMeasured } from './proc.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const MAILBOXES = arg('--mailboxes', 40);
const MESSAGES = arg('--messages', 60);

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
  const [source, dest, db] = await Promise.all([startDovecot({ tls: false, fsync: 'default' }), startDovecot({ tls: false, fsync: 'default' }), startPostgres()]);
  try {
    const users = Array.from({ length: MAILBOXES }, (_, i) => `user${String(i + 1).padStart(3, '0')}`);
    for (const u of users) await source.addUser(u, 'pw');
    for (let i = 0; i < users.length; i += 8) await Promise.all(users.slice(i, i + 8).map((u) => seed(source.port, u)));
    await writeFile(join(work, 'servers.yaml'), `source:\n  url: imap://127.0.0.1:${source.port}\n  master: { user: admin, password: env:MASTER }\ndestination:\n  url: imap://127.0.0.1:${dest.port}\n  master: { user: admin, password: env:MASTER }\n`);
    console.log(`batch bench: ${MAILBOXES} mailboxes x ${MESSAGES} messages (~20 KB each, 2 folders), Dovecot master-user logins, 2 CPUs shared by both servers and mailmover`);
    const results: { parallel: number; seconds: number; rss: number }[] = [];
    const runRound = async (round: number, label: string, extra: string[]) => {
      const list = ['source_user,destination_user', ...users.map((u) => `${u},${u}r${round}`)].join('\n') + '\n';
      for (const u of users) await dest.addUser(`${u}r${round}`, 'pw');
      await writeFile(join(work, `list-${round}.csv`), list);
      const res = await runMeasured(
        join(ROOT, 'dist/cli/main.js'),
        ['batch', 'run', join(work, `list-${round}.csv`), '--config', join(work, 'servers.yaml'), ...extra, '--report-dir', join(work, `reports-${round}`), '--json'],
        { cwd: ROOT, env: { ...process.env, MASTER: 'adminpw' }, stdoutFile: join(work, `out-${round}.json`), stderrFile: join(work, `err-${round}.txt`), timeFile: join(work, `time-${round}.txt`), timeoutMs: 1_800_000 },
      );
      if (res.exitCode !== 0) throw new Error(`batch run exited ${res.exitCode}; see ${work}`);
      const rss = res.peakRssKiB === null ? NaN : res.peakRssKiB / 1024;
      console.log(`  ${label}: ${res.wallSeconds.toFixed(2)} s, peak RSS ${rss.toFixed(0)} MiB`);
      return { seconds: res.wallSeconds, rss };
    };
    // A first run warms the page cache and both Dovecots' indexes; it is shown, not counted.
    await runRound(6, 'warm-up run, --parallel 4 (not counted)', ['--parallel', '4', '--state', join(work, 'state-warm.db')]);
    for (const [round, parallel] of [1, 4, 1, 4].entries()) {
      const r = await runRound(round, `--parallel ${parallel}`, ['--parallel', String(parallel), '--state', join(work, `state-${round}.db`)]);
      results.push({ parallel, ...r });
    }
    const med = (p: number) => {
      const xs = results.filter((r) => r.parallel === p).map((r) => r.seconds).sort((a, b) => a - b);
      return xs.reduce((a, b) => a + b, 0) / xs.length;
    };
    console.log(`speed-up --parallel 4 vs 1 (mean of 2 runs each): ${(med(1) / med(4)).toFixed(2)}x (${med(1).toFixed(2)} s -> ${med(4).toFixed(2)} s)`);

    // The ledger in PostgreSQL, on this machine: its cost against the SQLite file above.
    await runRound(4, '--parallel 4, ledger in PostgreSQL', ['--parallel', '4', '--state', await db.createDatabase('bench_ledger')]);
    // Queued to two workers of 2 mailboxes each (the RSS is the enqueuing process's only).
    const queue = await db.createDatabase('bench_queue');
    const workers = [0, 1].map((k) =>
      spawn(process.execPath, [join(ROOT, 'dist/cli/main.js'), 'worker', '--queue', queue, '--parallel', '2', '--report-dir', join(work, `worker-${k}`)], { env: { ...process.env, MASTER: 'adminpw' }, stdio: 'ignore' }),
    );
    try {
      await runRound(5, '--queue, 2 workers x --parallel 2 (ledger and statuses in PostgreSQL)', ['--queue', queue]);
    } finally {
      for (const w of workers) w.kill('SIGINT');
      await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(undefined) : w.once('exit', r)))));
    }
  } finally {
    await Promise.all([source.stop(), dest.stop(), db.stop()]);
    await rm(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench:batch: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
