/**
 * The demo: two throwaway Dovecot servers on loopback (a Courier/Cyrus-style source with the
 * "INBOX." prefix and "." separator, and a Dovecot-style destination with "/"), a sample mailbox
 * with nested folders seeded into the source, then `mailmover migrate` run twice through the real
 * CLI: the first run copies everything, the second finds nothing to copy. Servers are stopped
 * (by their own PIDs) at the end. Run with `npm run demo` (or `bash scripts/demo.sh` on a fresh machine).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDovecot } from '../test/helpers/dovecot.js';
import { buildFixture, seedMailbox } from '../test/helpers/fixture.js';

const cli = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');

async function main(): Promise<void> {
  console.log('Starting two throwaway Dovecot servers on 127.0.0.1 ...');
  const source = await startDovecot({ separator: '.', prefix: 'INBOX.' });
  const dest = await startDovecot({ separator: '/', prefix: '' });
  const work = mkdtempSync(join(tmpdir(), 'mailmover-demo-'));
  try {
    await source.addUser('alice', 'old-secret');
    await dest.addUser('alice', 'new-secret');
    const folders = buildFixture({ bigMessageBytes: 2 * 1024 * 1024 });
    const count = folders.reduce((n, f) => n + f.messages.length, 0);
    console.log(`Seeding the source: ${folders.length} folders, ${count} messages (prefix "INBOX.", separator ".") ...`);
    await seedMailbox(source, 'alice', 'old-secret', folders);

    const env = { ...process.env, MAILMOVER_FROM_PASSWORD: 'old-secret', MAILMOVER_TO_PASSWORD: 'new-secret', NODE_EXTRA_CA_CERTS: source.caFile };
    const report = join(work, 'report.json');
    const args = ['migrate', '--from', source.url('alice'), '--to', dest.url('alice'), '--to-tls-insecure', '--state', join(work, 'state.db'), '--report', report];
    console.log(`\n$ mailmover ${args.join(' ')}\n`);
    const first = spawnSync(process.execPath, [cli, ...args], { env, stdio: 'inherit' });
    console.log(`(exit code ${first.status})`);
    const r = JSON.parse(readFileSync(report, 'utf8')) as { status: string; totals: Record<string, number> };
    console.log(`\nReport ${report}: status ${r.status}, totals ${JSON.stringify(r.totals)}`);

    console.log(`\nRunning the same command again: it finds everything in place and copies nothing.\n`);
    const second = spawnSync(process.execPath, [cli, ...args.slice(0, -2)], { env, stdio: 'inherit' });
    console.log(`(exit code ${second.status})`);
    if (first.status !== 0 || second.status !== 0) process.exitCode = 1;
  } finally {
    await Promise.all([source.stop(), dest.stop()]);
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
