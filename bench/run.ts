/**
 * mailmover benchmark: copy speed, memory, CPU, rerun cost and fidelity against Dovecot's dsync
 * and mbsync, IMAP -> IMAP and to/from archives on disk (tools: bench/tools.ts).
 *
 *   node --import tsx bench/run.ts [--scale F | --messages N] [--rounds N] [--tools mailmover,dsync,mbsync,...]
 *                                  [--seed S] [--keep-dir DIR] [--timeout SECONDS] [--verify-all]
 *
 * One throwaway Dovecot on 127.0.0.1 (our child process), a seeded corpus for user `src`, and
 * for every run a fresh empty destination user `dstN` on the same server. Rounds are
 * interleaved (mailmover, dsync, mbsync, mailmover, ...). See bench/README.md.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BASE_MESSAGES, buildMessage, buildSpec, seedCorpus, type CorpusSpec, type ImapTarget } from './corpus.js';
import { ClamdClient } from '../src/scan/clamd.js';
import { startDovecot, type PlainDovecotServer } from '../test/helpers/dovecot.js';
import { startClamd, type ClamdServer } from '../test/helpers/clamd.js';
import { snapshotCounts } from './archive-read.js';
import { killAllChildren, rssMethod, runMeasured, tailOf } from './proc.js';
import { f1, f2, ratio, ratioLine, RATIO_PAIRS, runLine, summarise, summaryTable, targetLines, type Measured, type RunRecord, type Summary } from './report.js';
import { groupCpuSeconds } from './server-cpu.js';
import { findExecutable, INSTALL_HINT, MAILMOVER_COMMAND, makeTool, TOOL_NAMES, type Ctx, type Prepared, type Tool, type ToolName } from './tools.js';
import { compare, describeCounts, folderCounts, snapshot, type Snapshot } from './verify.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS_FILE = join(ROOT, 'bench', 'results-latest.json');
const CORPUS_MARKER = 'bench-corpus.json';
/** Bump when the generator changes, so a --keep-dir corpus is not reused by mistake. */
const GENERATOR_VERSION = 1;

const USAGE = `usage: node --import tsx bench/run.ts [options]
  --scale F           corpus size relative to the default 5,000 messages / ~410 MB (e.g. 0.1)
  --messages N        exact number of messages (overrides --scale)
  --rounds N          interleaved rounds per tool (default 3)
  --tools LIST        comma-separated, from: mailmover, mailmover-scan, mailmover-from-maildir,
                      mailmover-to-maildir, mailmover-to-mbox, mbsync, mbsync-to-maildir, dsync,
                      dsync-from-maildir (default mailmover,dsync,mbsync). mailmover-scan is
                      mailmover with --scan against a private clamd; *-from-maildir read the
                      source user's Maildir on Dovecot's disk; *-to-maildir/-to-mbox write an
                      archive on disk; dsync is doveadm backup with imapc (see bench/README.md)
  --seed S            corpus seed (default "mailmover-bench-1")
  --keep-dir DIR      work in DIR and keep it afterwards; a corpus already seeded there with the
                      same --seed/--messages is reused (seeding skipped)
  --timeout SECONDS   limit for every tool process (default 1800)
  --verify-all        full fidelity check after every copy (default: first copy of each tool;
                      every copy gets a per-folder count check)
  --seed-connections N  parallel connections for seeding (default 3)
  -h, --help`;

interface Options {
  messages: number;
  rounds: number;
  tools: ToolName[];
  seed: string;
  keepDir?: string;
  timeoutMs: number;
  verifyAll: boolean;
  seedConnections: number;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      scale: { type: 'string' },
      messages: { type: 'string' },
      rounds: { type: 'string', default: '3' },
      tools: { type: 'string', default: 'mailmover,dsync,mbsync' },
      seed: { type: 'string', default: 'mailmover-bench-1' },
      'keep-dir': { type: 'string' },
      timeout: { type: 'string', default: '1800' },
      'verify-all': { type: 'boolean', default: false },
      'seed-connections': { type: 'string', default: '3' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const num = (name: string, v: string | undefined, min: number, max: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) usageError(`--${name} must be a number from ${min} to ${max} (got "${v}")`);
    return n;
  };
  const scale = values.scale === undefined ? 1 : num('scale', values.scale, 0.001, 100);
  const messages = values.messages === undefined ? Math.max(1, Math.round(BASE_MESSAGES * scale)) : Math.round(num('messages', values.messages, 1, 1_000_000));
  const tools = values.tools.split(',').map((t) => t.trim()).filter(Boolean);
  for (const t of tools) if (!TOOL_NAMES.includes(t as ToolName)) usageError(`unknown tool "${t}" (known: ${TOOL_NAMES.join(', ')})`);
  return {
    messages,
    rounds: Math.round(num('rounds', values.rounds, 1, 50)),
    tools: [...new Set(tools)] as ToolName[],
    seed: values.seed,
    ...(values['keep-dir'] ? { keepDir: resolve(values['keep-dir']) } : {}),
    timeoutMs: num('timeout', values.timeout, 0.1, 86_400) * 1000,
    verifyAll: values['verify-all'],
    seedConnections: Math.round(num('seed-connections', values['seed-connections'], 1, 16)),
  };
}

function usageError(msg: string): never {
  console.error(`bench: ${msg}\n${USAGE}`);
  process.exit(2);
}

const log = (msg: string) => process.stderr.write(msg + '\n');

function versionOf(cmd: string | undefined, args: string[]): string {
  if (!cmd) return 'missing';
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return (r.stdout || r.stderr || '').trim().split('\n')[0] ?? '';
}

// ---------------------------------------------------------------------------------------------
// Runs

/** Runs a tool process and measures our Dovecot's CPU time around it. */
async function measured(ctx: Ctx, p: Prepared, opts: Options, files: { stdoutFile: string; stderrFile: string; timeFile: string }): Promise<Measured> {
  const before = await groupCpuSeconds(ctx.dovecot.pid);
  const r = await runMeasured(p.cmd, p.args, { env: p.env, cwd: p.cwd, timeoutMs: opts.timeoutMs, ...files });
  const after = await groupCpuSeconds(ctx.dovecot.pid);
  return { ...r, serverCpuSeconds: before === null || after === null ? null : after - before };
}

async function oneRun(ctx: Ctx, tool: Tool, round: number, dst: string, src: Snapshot, opts: Options, fullCheck: boolean): Promise<RunRecord> {
  const target: ImapTarget = { host: ctx.dovecot.host, port: ctx.dovecot.port, user: dst, pass: ctx.passwords[dst]! };
  // The archive tools' destination is read back from disk (all of it, counts included); the others' over IMAP.
  const counts = async () => (tool.readBack ? snapshotCounts(await tool.readBack(dst)) : folderCounts(target));
  const p = await tool.prepare(dst);
  const files = (what: string) => ({
    stdoutFile: join(ctx.work, `${tool.name}-${dst}-${what}.out`),
    stderrFile: join(ctx.work, `${tool.name}-${dst}-${what}.err`),
    timeFile: join(ctx.work, `${tool.name}-${dst}-${what}.time`),
  });
  const copyFiles = files('copy');
  const copy = await measured(ctx, p, opts, copyFiles);
  await tool.afterRun?.(dst);
  const rec: RunRecord = { tool: tool.name, round, destinationUser: dst, copy, countCheck: '', ok: false };
  const problems: string[] = [];
  if (copy.timedOut) problems.push(`timed out after ${opts.timeoutMs / 1000} s`);
  else if (copy.exitCode !== 0) problems.push(`exit code ${copy.exitCode ?? copy.signal}`);
  rec.toolOutput = await toolOutput(tool.name, copyFiles.stdoutFile, copyFiles.stderrFile);
  if (problems.length) {
    const out = rec.toolOutput as { stderr?: string; error?: unknown; failedFolders?: unknown };
    const err = out?.failedFolders ? JSON.stringify(out.failedFolders).slice(0, 800) : typeof out?.stderr === 'string' ? out.stderr.slice(-800) : await tailOf(copyFiles.stderrFile, 800);
    if (err) problems.push(`${out?.failedFolders ? 'failed folders' : 'stderr'}: ${err}`);
  }
  try {
    if (fullCheck) {
      const dstSnap = tool.readBack ? await tool.readBack(dst) : await snapshot(target);
      rec.countCheck = describeCounts(src, snapshotCounts(dstSnap));
      rec.fidelity = compare(src, dstSnap);
    } else {
      rec.countCheck = describeCounts(src, await counts());
    }
  } catch (err) {
    // e.g. the destination cannot be read: record it, keep benchmarking the other runs
    rec.countCheck = `cannot check the destination: ${(err as Error).message}`;
  }
  rec.rerun = await measured(ctx, p, opts, files('rerun'));
  await tool.afterRun?.(dst);
  if (rec.rerun.timedOut || rec.rerun.exitCode !== 0) problems.push(`rerun: ${rec.rerun.timedOut ? 'timed out' : `exit code ${rec.rerun.exitCode ?? rec.rerun.signal}`}`);
  const after = await counts().then(
    (c) => describeCounts(src, c),
    (err: Error) => `cannot check the destination: ${err.message}`,
  );
  rec.rerunCountCheck = after === rec.countCheck ? '' : `after the rerun: ${after || 'complete'}`;
  rec.ok = !copy.timedOut && copy.exitCode === 0 && rec.countCheck === '';
  if (problems.length) rec.error = problems.join('; ');
  return rec;
}

async function toolOutput(tool: ToolName, stdoutFile: string, stderrFile: string): Promise<unknown> {
  if (tool.startsWith('mailmover')) {
    try {
      const report = JSON.parse(await readFile(stdoutFile, 'utf8')) as { status?: unknown; totals?: unknown; error?: unknown; folders?: { source: string; state: string; error?: { code?: string; message?: string } }[] };
      const failedFolders = (report.folders ?? []).filter((f) => f.state === 'failed').map((f) => ({ folder: f.source, code: f.error?.code, message: f.error?.message }));
      return { status: report.status, totals: report.totals, ...(report.error ? { error: report.error } : {}), ...(failedFolders.length ? { failedFolders } : {}) };
    } catch {
      return { stdout: await tailOf(stdoutFile, 500), stderr: await tailOf(stderrFile, 500) };
    }
  }
  // mbsync warns about LOGIN without TLS on every connection: expected here (plain loopback)
  const err = (await tailOf(stderrFile, 4000))
    .split('\n')
    .filter((l) => l && !l.includes('Password is being sent in the clear'))
    .join('\n')
    .slice(-1000);
  return err ? { stderr: err } : {};
}

// ---------------------------------------------------------------------------------------------
// Work dir and corpus

interface Marker {
  generator: number;
  seed: string;
  messages: number;
}

/** Creates (or, for --keep-dir, prepares) the work dir; returns whether the corpus can be reused. */
async function prepareWorkDir(opts: Options): Promise<{ work: string; reuse: boolean }> {
  if (!opts.keepDir) {
    const work = await mkdtemp(join(tmpdir(), 'mailmover-bench-'));
    await chmod(work, 0o755);
    return { work, reuse: false };
  }
  const work = opts.keepDir;
  await mkdir(work, { recursive: true });
  await chmod(work, 0o755);
  const entries = await readdir(work);
  let marker: Marker | undefined;
  try {
    marker = JSON.parse(await readFile(join(work, CORPUS_MARKER), 'utf8')) as Marker;
  } catch {
    marker = undefined;
  }
  if (!marker && entries.length) throw new Error(`--keep-dir ${work} is not empty and was not made by the benchmark; use an empty or new directory`);
  const reuse = !!marker && marker.generator === GENERATOR_VERSION && marker.seed === opts.seed && marker.messages === opts.messages && existsSync(join(work, 'mail', 'src'));
  // everything except the source mailbox and its marker (when reused) goes; without the marker the
  // next --keep-dir run would take the dir for a foreign one
  for (const e of entries) {
    if ((e === 'mail' || e === CORPUS_MARKER) && reuse) continue;
    await rm(join(work, e), { recursive: true, force: true });
  }
  if (reuse) {
    for (const e of await readdir(join(work, 'mail'))) if (e !== 'src') await rm(join(work, 'mail', e), { recursive: true, force: true });
  }
  return { work, reuse };
}

/** Checks the source as read back over IMAP against the spec (seeding went right). */
function checkSource(spec: CorpusSpec, src: Snapshot, sha?: string[]): void {
  const expected = new Map<string, number>();
  for (const m of spec.messages) expected.set(m.folder, (expected.get(m.folder) ?? 0) + 1);
  const problems: string[] = [];
  for (const f of spec.folders) {
    const got = src.folders.get(f);
    if (!got) problems.push(`folder ${f} missing`);
    else if (got.messages.length !== (expected.get(f) ?? 0)) problems.push(`${f}: ${got.messages.length} messages, expected ${expected.get(f) ?? 0}`);
  }
  if (sha) {
    const bySha = new Map(sha.map((s, i) => [s, spec.messages[i]!]));
    let bad = 0;
    for (const [path, f] of src.folders) {
      for (const m of f.messages) {
        const s = bySha.get(m.sha256);
        if (!s || s.folder !== path || s.internalDate.getTime() !== m.internalDate || [...s.flags].sort().join(' ') !== m.flags.join(' ')) bad++;
      }
    }
    if (bad) problems.push(`${bad} messages differ from the generated ones`);
  }
  if (problems.length) throw new Error(`the seeded source mailbox is not what was generated: ${problems.slice(0, 5).join('; ')}`);
}

// ---------------------------------------------------------------------------------------------

/**
 * Streams every corpus message to clamd, `parallel` at a time, and times the scanning only: the
 * messages are built (untimed) in chunks of about 40 MB, then each chunk is scanned (timed).
 */
async function scanCorpus(spec: CorpusSpec, clamd: ClamdServer, parallel = 4): Promise<{ seconds: number; megabytesPerSecond: number }> {
  const client = new ClamdClient({ kind: 'unix', path: clamd.socketPath }, { timeoutMs: 300_000 });
  let bytes = 0;
  let seconds = 0;
  for (let i = 0; i < spec.messages.length; ) {
    const chunk: Buffer[] = [];
    let size = 0;
    for (; i < spec.messages.length && size < 40e6; i++) {
      const raw = buildMessage(spec.seed, spec.messages[i]!);
      chunk.push(raw);
      size += raw.length;
    }
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        for (let k = next++; k < chunk.length; k = next++) await client.scan(chunk[k]!);
      }),
    );
    seconds += (performance.now() - t0) / 1000;
    bytes += size;
  }
  return { seconds, megabytesPerSecond: bytes / 1e6 / seconds };
}

async function main(): Promise<number> {
  const opts = parseOptions();
  const dovecotBin = findExecutable('dovecot', ['/usr/sbin/dovecot']);
  if (!dovecotBin) {
    console.error(`bench: dovecot is not installed (looked in /usr/sbin and $PATH). Install it: ${INSTALL_HINT}`);
    return 2;
  }
  let dovecot: PlainDovecotServer | undefined;
  let clamd: ClamdServer | undefined;
  let work: string | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      killAllChildren();
      if (dovecot) await dovecot.stop().catch(() => undefined);
      if (clamd) await clamd.stop().catch(() => undefined);
      if (work && !opts.keepDir) await rm(work, { recursive: true, force: true }).catch(() => undefined);
    })());
  const onSignal = (sig: NodeJS.Signals) => {
    log(`\nbench: ${sig}, stopping our processes and cleaning up${opts.keepDir ? '' : ' the temp dir'}...`);
    void cleanup().then(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Dovecot needs nothing here: test/helpers/dovecot.ts SIGKILLs the instances it started (their own
  // process group) in its own 'exit' hook, and --keep-dir is never removed by it.
  process.on('exit', () => {
    killAllChildren();
  });

  try {
    const prepared = await prepareWorkDir(opts);
    work = prepared.work;
    const ctxPasswords: Record<string, string> = { src: randomBytes(9).toString('base64url') };
    const ctxTools: Tool[] = [];
    const ctx = { root: ROOT, work, passwords: ctxPasswords } as Ctx;
    for (const name of opts.tools) ctxTools.push(makeTool(ctx, name));
    for (const t of ctxTools) if (t.unavailable) log(`${t.name}: ${t.unavailable}`);
    const tools = ctxTools.filter((t) => !t.unavailable);
    if (!tools.length) {
      console.error('bench: no tool to run');
      return 2;
    }
    const runsTotal = opts.rounds * tools.length;
    for (let i = 1; i <= runsTotal; i++) ctxPasswords[`dst${i}`] = randomBytes(9).toString('base64url');

    const spec = buildSpec(opts.seed, opts.messages);
    log(`bench: work dir ${work}${opts.keepDir ? ' (kept)' : ' (removed at the end)'}`);
    // Plain IMAP (both tools are configured without TLS) and Dovecot's default mail_fsync, so the
    // numbers compare with those measured against a stock server. The work dir is ours: with
    // --keep-dir its mail/ (the seeded corpus) survives for the next run.
    dovecot = await startDovecot({ dir: work, tls: false, fsync: 'default' });
    for (const [user, password] of Object.entries(ctxPasswords)) await dovecot.addUser(user, password);
    ctx.dovecot = dovecot;
    if (tools.some((t) => t.name === 'mailmover-scan')) {
      // A stream limit above the corpus's largest message, so that every message is scanned.
      clamd = await startClamd({ streamMaxLength: '100M', disableCache: true });
      ctx.clamd = clamd;
      log(`bench: clamd pid ${clamd.pid} on ${clamd.socketPath} (signature database: the EICAR test signatures only)`);
    }
    log(`bench: dovecot pid ${dovecot.pid} on ${dovecot.host}:${dovecot.port} (log ${dovecot.logFile})`);
    const srcTarget: ImapTarget = { host: dovecot.host, port: dovecot.port, user: 'src', pass: ctxPasswords.src! };

    let seedInfo: { seconds: number; reused: boolean } = { seconds: 0, reused: prepared.reuse };
    let sha: string[] | undefined;
    if (prepared.reuse) {
      log(`bench: reusing the corpus in ${join(work, 'mail', 'src')} (--keep-dir)`);
    } else {
      log(`bench: seeding ${spec.messages.length} messages (${spec.counts.small} small, ${spec.counts.medium} medium, ${spec.counts.large} large) into ${spec.folders.length} folders...`);
      let lastPct = -1;
      const res = await seedCorpus(srcTarget, spec, opts.seedConnections, (done, total) => {
        const pct = Math.floor((done * 100) / total);
        if (pct !== lastPct && pct % 10 === 0) {
          lastPct = pct;
          log(`  seeded ${done}/${total}`);
        }
      });
      sha = res.sha256;
      seedInfo = { seconds: res.seconds, reused: false };
      log(`bench: seeded ${res.messages} messages, ${(res.bytes / 1e6).toFixed(1)} MB in ${res.seconds.toFixed(1)} s`);
      if (opts.keepDir) await writeFile(join(work, CORPUS_MARKER), JSON.stringify({ generator: GENERATOR_VERSION, seed: opts.seed, messages: opts.messages } satisfies Marker) + '\n');
    }
    const src = await snapshot(srcTarget);
    checkSource(spec, src, sha);
    log(`bench: source: ${src.messages} messages, ${(src.bytes / 1e6).toFixed(1)} MB (RFC822.SIZE), ${[...src.folders.values()].length} folders`);

    const records: RunRecord[] = [];
    let n = 0;
    for (let round = 1; round <= opts.rounds; round++) {
      for (const tool of tools) {
        const dst = `dst${++n}`;
        const fullCheck = opts.verifyAll || !records.some((r) => r.tool === tool.name && r.fidelity);
        log(`bench: [${n}/${runsTotal}] ${tool.name} round ${round} -> ${dst}...`);
        const rec = await oneRun(ctx, tool, round, dst, src, opts, fullCheck);
        records.push(rec);
        log(runLine(rec, src));
        if (!opts.keepDir) {
          await rm(dovecot.homeOf(dst), { recursive: true, force: true });
          await tool.cleanup?.(dst);
        }
      }
    }

    // clamd alone: the corpus streamed straight to it (4 at a time, as mailmover scans), no IMAP.
    // The ceiling for any migration that scans on this box.
    let clamdAlone: { seconds: number; megabytesPerSecond: number } | undefined;
    if (clamd) {
      log('bench: clamd alone: streaming the corpus to clamd (no IMAP)...');
      clamdAlone = await scanCorpus(spec, clamd);
      log(`  clamd alone: ${f2(clamdAlone.seconds)} s, ${f1(clamdAlone.megabytesPerSecond)} MB/s`);
    }
    const summaries = tools.map((t) => summarise(t.name, records, src)).filter((s): s is Summary => !!s);
    const ratios = RATIO_PAIRS.flatMap(([a, b, what]) => {
      const r = ratio(summaries, a, b);
      return r ? [{ ...r, what }] : [];
    });

    const env = {
      node: process.version,
      dovecot: versionOf(dovecotBin, ['--version']),
      mbsync: versionOf(findExecutable('mbsync', ['/usr/bin/mbsync']), ['--version']),
      doveadm: versionOf(findExecutable('doveadm', ['/usr/bin/doveadm']), ['-c', join(dovecot.dir, 'dovecot.conf'), 'version']),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? '',
      kernel: release(),
      loadAverageAtStart: loadavg(),
      rssMethod: rssMethod(),
      mailFsync: 'default (optimized)',
    };
    const corpus = {
      seed: opts.seed,
      messages: src.messages,
      bytes: src.bytes,
      folders: src.folders.size,
      small: spec.counts.small,
      medium: spec.counts.medium,
      large: spec.counts.large,
      withFlags: spec.counts.withFlags,
      seedSeconds: seedInfo.seconds,
      reused: seedInfo.reused,
    };

    console.log(
      `\nCorpus: ${corpus.messages} messages, ${(corpus.bytes / 1e6).toFixed(1)} MB, ${corpus.folders} folders ` +
        `(${corpus.small} small, ${corpus.medium} medium, ${corpus.large} large; flags on ${corpus.withFlags}), seed "${corpus.seed}"`,
    );
    console.log(`Server: ${env.dovecot} on 127.0.0.1, Maildir, default mail_fsync; ${env.cpus} CPUs; load at start ${env.loadAverageAtStart.map((x) => x.toFixed(2)).join(' ')}`);
    console.log(`Medians of ${opts.rounds} interleaved round(s); peak RSS by ${env.rssMethod}; MB = 10^6 bytes, RSS in MiB.\n`);
    console.log(summaryTable(summaries));
    console.log(
      '\ntool CPU: user + system seconds of the tool process (GNU time). server CPU: CPU seconds of every process of the bench Dovecot during the copy ' +
        "(/proc, before/after). dsync's server CPU is only the source side (imapc reads over IMAP; doveadm writes the destination itself, in its tool CPU).",
    );
    if (ratios.length) console.log('\nRatios of the medians (a / b; below 1 = a is faster, smaller or cheaper; msgs/s and MB/s above 1 = a is faster):');
    for (const r of ratios) console.log(`  ${r.what}\n    ${ratioLine(r)}`);
    const targets = targetLines(summaries);
    if (targets.length) console.log(`\nIssue 16 targets (mailmover, default settings, this run):\n${targets.join('\n')}`);
    if (clamdAlone) console.log(`clamd alone (the corpus streamed to clamd 4 at a time, no IMAP): ${f2(clamdAlone.seconds)} s, ${f1(clamdAlone.megabytesPerSecond)} MB/s`);
    for (const t of ctxTools) if (t.unavailable) console.log(`${t.name}: ${t.unavailable}`);

    const results = {
      generatedAt: new Date().toISOString(),
      command: process.argv.slice(2),
      options: { ...opts, timeoutMs: undefined, timeoutSeconds: opts.timeoutMs / 1000 },
      mailmoverCommand: MAILMOVER_COMMAND.join(' '),
      environment: env,
      corpus,
      runs: records,
      summary: summaries,
      ratios,
      targets: targetLines(summaries).map((l) => l.trim()),
      ...(clamdAlone ? { clamdAlone } : {}),
      unavailable: Object.fromEntries(ctxTools.filter((t) => t.unavailable).map((t) => [t.name, t.unavailable])),
    };
    await writeFile(RESULTS_FILE, JSON.stringify(results, null, 2) + '\n');
    log(`\nbench: raw results written to ${RESULTS_FILE}`);
    return summaries.every((s) => s.okRuns === s.runs) ? 0 : 1;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
