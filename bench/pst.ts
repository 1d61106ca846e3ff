/**
 * PST source throughput: `enron.pst` (pst-extractor's test file, 14 MB, 71 mail items) copied
 * by the built CLI into a throwaway Dovecot on 127.0.0.1, beside Debian's `readpst` converting the
 * same file to mbox files on the same box. Prints items/s and MB/s (of the PST file's size) and
 * peak RSS (GNU time %M, else VmHWM polled; see proc.ts) for each, best of `--rounds` (default 3;
 * the destination is emptied between rounds). Run: `npm run bench:pst` (options: --rounds N,
 * --file PATH for another PST).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDovecot } from '../test/helpers/dovecot.js';
import { killAllChildren, rssMethod, runMeasured, tailOf, type RunResult } from './proc.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const argOf = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const FILE = argOf('--file') ?? join(ROOT, 'node_modules/pst-extractor/example/testdata/enron.pst');
const ROUNDS = Number(argOf('--rounds') ?? 3);

interface Row {
  tool: string;
  items: number;
  seconds: number;
  peakRssMiB: number | null;
}

async function main(): Promise<void> {
  process.once('SIGINT', () => {
    killAllChildren();
    process.exit(130);
  });
  const bytes = statSync(FILE).size;
  const work = mkdtempSync(join(tmpdir(), 'mm-bench-pst-'));
  const d = await startDovecot({ separator: '/', tls: false });
  const rows: Row[] = [];
  try {
    await d.addUser('bench', 'pw');
    let best: { run: RunResult; items: number } | undefined;
    for (let round = 1; round <= ROUNDS; round++) {
      rmSync(d.homeOf('bench'), { recursive: true, force: true });
      const out = join(work, `mm-${round}.json`);
      const run = await runMeasured(process.execPath, [join(ROOT, 'dist/cli/main.js'), 'migrate', '--from', `pst:${FILE}`, '--to', d.url('bench'), '--no-state', '--no-progress', '--json'], {
        env: { ...process.env, MAILMOVER_TO_PASSWORD: 'pw' },
        timeoutMs: 600_000,
        stdoutFile: out,
        stderrFile: join(work, `mm-${round}.err`),
        timeFile: join(work, `mm-${round}.time`),
      });
      if (run.exitCode !== 0) throw new Error(`mailmover exited ${run.exitCode}: ${await tailOf(join(work, `mm-${round}.err`))}`);
      const report = JSON.parse(readFileSync(out, 'utf8')) as { totals: { copied: number } };
      if (!best || run.wallSeconds < best.run.wallSeconds) best = { run, items: report.totals.copied };
    }
    rows.push({ tool: 'mailmover pst: -> Dovecot (IMAP)', items: best!.items, seconds: best!.run.wallSeconds, peakRssMiB: best!.run.peakRssKiB && best!.run.peakRssKiB / 1024 });

    let bestReadpst: RunResult | undefined;
    for (let round = 1; round <= ROUNDS; round++) {
      const dir = join(work, `readpst-${round}`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir);
      const run = await runMeasured('readpst', ['-D', '-q', '-r', '-o', dir, FILE], { timeoutMs: 600_000, stdoutFile: join(work, 'rp.out'), stderrFile: join(work, 'rp.err'), timeFile: join(work, `rp-${round}.time`) });
      if (run.exitCode !== 0) throw new Error(`readpst exited ${run.exitCode}: ${await tailOf(join(work, 'rp.err'))}`);
      if (!bestReadpst || run.wallSeconds < bestReadpst.wallSeconds) bestReadpst = run;
    }
    // readpst's items: what it wrote as mail (From lines of its mbox files), the same 71 for enron.pst.
    const readpstItems = Number(execFileSync('sh', ['-c', `find "${join(work, 'readpst-1')}" -name mbox -exec grep -c '^From ' {} + | awk -F: '{s+=$NF} END {print s+0}'`]).toString().trim());
    rows.push({ tool: 'readpst -> mbox files', items: readpstItems, seconds: bestReadpst!.wallSeconds, peakRssMiB: bestReadpst!.peakRssKiB && bestReadpst!.peakRssKiB / 1024 });
  } finally {
    await d.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const mb = bytes / 1024 / 1024;
  console.log(`PST: ${FILE} (${mb.toFixed(1)} MB), best of ${ROUNDS} rounds; peak RSS by ${rssMethod()}`);
  console.log('tool                               items   seconds   items/s     MB/s   peak RSS');
  for (const r of rows) {
    console.log(`${r.tool.padEnd(34)} ${String(r.items).padStart(5)} ${r.seconds.toFixed(2).padStart(9)} ${(r.items / r.seconds).toFixed(1).padStart(9)} ${(mb / r.seconds).toFixed(2).padStart(8)} ${r.peakRssMiB === null ? '   unknown' : `${r.peakRssMiB.toFixed(0).padStart(6)} MiB`}`);
  }
}

main().catch((err) => {
  killAllChildren();
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
