/**
 * Memory bounds (issue: "a 50 MB message and a folder of 50,000 messages must not blow memory
 * up"). Seeds two mailboxes in a throwaway Dovecot on 127.0.0.1 — one 50 MB message, and one
 * folder of 50,000 small messages — copies each with the built CLI and prints wall time and peak
 * RSS (GNU time %M). Run: `npm run bench:memory` (options: --messages N, --big-mb N).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEndpoint } from '../src/core/endpoint.js';
import { ImapStore } from '../src/stores/imap/imap-store.js';
import { startDovecot } from '../test/helpers/dovecot.js';
import { runMeasured } from './proc.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const MESSAGES = arg('--messages', 50_000);
const BIG_MB = arg('--big-mb', 50);

function bigMessage(mb: number): Buffer {
  const line = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3\r\n';
  const head = 'From: big@example.org\r\nTo: you@example.org\r\nSubject: 50 MB\r\nMessage-ID: <big-1@bench>\r\n' +
    'Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n';
  return Buffer.concat([Buffer.from(head), Buffer.from(line.repeat(Math.ceil((mb * 1024 * 1024) / line.length)))]);
}

/** Seeds through mailmover's own MULTIAPPEND (fast), 500 messages a command. */
async function seed(port: number, user: string, password: string, messages: Buffer[] | ((i: number) => Buffer), count: number): Promise<void> {
  const store = new ImapStore({ endpoint: parseEndpoint(`imap://${user}@127.0.0.1:${port}`, 'to'), credentials: { password }, security: {}, side: 'destination' });
  await store.connect();
  try {
    const get = typeof messages === 'function' ? messages : (i: number) => messages[i]!;
    for (let i = 0; i < count; i += 500) {
      const items = Array.from({ length: Math.min(500, count - i) }, (_, k) => ({ body: get(i + k), flags: (i + k) % 3 ? ['\\Seen'] : [], internalDate: new Date(Date.UTC(2020, 0, 1, 0, 0, i + k)) }));
      const out = await store.appendBatch(['INBOX'], items);
      if (out.some((o) => !o.ok)) throw new Error('seeding failed');
    }
  } finally {
    await store.close();
  }
}

async function main(): Promise<void> {
  const users = { huge: 'huge-pw', many: 'many-pw', d1: 'd1-pw', d2: 'd2-pw' };
  // Plain IMAP and Dovecot's default mail_fsync, like bench/run.ts. The instance's temp dir also takes
  // the tools' output files; stop() removes it.
  const dovecot = await startDovecot({ tls: false, fsync: 'default' });
  const dir = dovecot.dir;
  try {
    for (const [user, password] of Object.entries(users)) await dovecot.addUser(user, password);
    console.log(`seeding: one ${BIG_MB} MB message; ${MESSAGES} small messages in one folder ...`);
    await seed(dovecot.port, 'huge', users.huge, [bigMessage(BIG_MB)], 1);
    const small = (i: number) => Buffer.from(`From: m${i}@example.org\r\nSubject: message ${i}\r\nMessage-ID: <m${i}@bench>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n${'lorem ipsum dolor sit amet '.repeat(60)}\r\n`);
    await seed(dovecot.port, 'many', users.many, small, MESSAGES);
    const rows: string[] = [];
    for (const [from, to, label] of [['huge', 'd1', `one ${BIG_MB} MB message`], ['many', 'd2', `${MESSAGES} messages in one folder`]] as const) {
      for (const pass of ['copy', 'rerun']) {
        const r = await runMeasured(join(ROOT, 'dist', 'cli', 'main.js'), ['migrate', '--from', `imap://${from}@127.0.0.1:${dovecot.port}`, '--to', `imap://${to}@127.0.0.1:${dovecot.port}`, '--json'], {
          cwd: ROOT,
          env: { ...process.env, MAILMOVER_FROM_PASSWORD: users[from], MAILMOVER_TO_PASSWORD: users[to] },
          timeoutMs: 900_000,
          stdoutFile: join(dir, `${to}-${pass}.out`),
          stderrFile: join(dir, `${to}-${pass}.err`),
          timeFile: join(dir, `${to}-${pass}.time`),
        });
        rows.push(`| ${label} | ${pass} | ${r.exitCode} | ${r.wallSeconds.toFixed(2)} | ${r.peakRssKiB ? (r.peakRssKiB / 1024).toFixed(0) : '-'} |`);
      }
    }
    console.log('\n| mailbox | pass | exit | wall s | peak RSS MiB |\n|---|---|---|---|---|\n' + rows.join('\n'));
  } finally {
    await dovecot.stop();
  }
}

await main();
