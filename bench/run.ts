/**
 * mailmover benchmark: IMAP -> IMAP copy speed, memory and fidelity against mbsync.
 *
 *   node --import tsx bench/run.ts [--scale F | --messages N] [--rounds N] [--tools mailmover,mailmover-scan,mbsync]
 *                                  [--seed S] [--keep-dir DIR] [--timeout SECONDS] [--verify-all]
 *
 * One throwaway Dovecot on 127.0.0.1 (our child process), a seeded corpus for user `src`, and
 * for every run a fresh empty destination user `dstN` on the same server. Rounds are
 * interleaved (mailmover, mbsync, mailmover, mbsync, ...). See bench/README.md.
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
import { killAllChildren, rssMethod, runMeasured, tailOf, type RunResult } from './proc.js';
import { compare, describeCounts, folderCounts, snapshot, type Fidelity, type Snapshot } from './verify.js';

/**
 * The mailmover command line, one constant. Placeholders: {host}, {port}, {src}, {dst}, {work}.
 * Each destination gets a state ledger of its own in the work directory, so the rerun is incremental.
 * Passwords travel in MAILMOVER_FROM_PASSWORD / MAILMOVER_TO_PASSWORD. Runs with the repository
 * root as working directory. The built CLI is run as an installed `mailmover` command is: as an
 * executable, so its shebang's Node options (a small V8 young generation) apply.
 */
const MAILMOVER_COMMAND = ['dist/cli/main.js', 'migrate', '--from', 'imap://{src}@{host}:{port}', '--to', 'imap://{dst}@{host}:{port}', '--json', '--state', '{work}/state-{dst}.db'];
/** The file whose presence means "mailmover is built". */
const MAILMOVER_ENTRY = 'dist/cli/main.js';

const INSTALL_HINT = 'apt-get install -y dovecot-imapd isync';

/** Finds an executable by absolute candidates first, then on $PATH. */
function findExecutable(name: string, candidates: string[] = []): string | undefined {
  for (const c of candidates) if (existsSync(c)) return c;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS_FILE = join(ROOT, 'bench', 'results-latest.json');
const CORPUS_MARKER = 'bench-corpus.json';
/** Bump when the generator changes, so a --keep-dir corpus is not reused by mistake. */
const GENERATOR_VERSION = 1;

/** 'mailmover-scan' is mailmover with --scan against a private clamd (scanning on vs off). */
/**
 * 'mailmover-from-maildir' reads the source user's Maildir straight off Dovecot's disk
 * (`maildir:...?layout=fs`, as dsync does) into the IMAP destination; 'mailmover-to-maildir' writes
 * the destination user's Maildir on disk (then served by the same Dovecot for the fidelity check).
 */
type ToolName = 'mailmover' | 'mailmover-scan' | 'mailmover-from-maildir' | 'mailmover-to-maildir' | 'mbsync';
const TOOL_NAMES: readonly ToolName[] = ['mailmover', 'mailmover-scan', 'mailmover-from-maildir', 'mailmover-to-maildir', 'mbsync'];

const USAGE = `usage: node --import tsx bench/run.ts [options]
  --scale F           corpus size relative to the default 5,000 messages / ~410 MB (e.g. 0.1)
  --messages N        exact number of messages (overrides --scale)
  --rounds N          interleaved rounds per tool (default 3)
  --tools LIST        comma-separated: mailmover,mailmover-scan,mailmover-from-maildir,
                      mailmover-to-maildir,mbsync (default mailmover,mailmover-scan,mbsync;
                      mailmover-scan is mailmover with --scan against a private clamd;
                      the maildir ones read or write Dovecot's Maildir on disk)
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
      tools: { type: 'string', default: 'mailmover,mailmover-scan,mbsync' },
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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function versionOf(cmd: string | undefined, args: string[]): string {
  if (!cmd) return 'missing';
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return (r.stdout || r.stderr || '').trim().split('\n')[0] ?? '';
}

// ---------------------------------------------------------------------------------------------
// Tools

interface Prepared {
  cmd: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
}

interface Tool {
  name: ToolName;
  /** Why it cannot run, or undefined when it can. */
  unavailable?: string;
  prepare(dst: string): Promise<Prepared>;
  /** Runs after each copy and rerun, before the destination is read back (e.g. file ownership). */
  afterRun?(dst: string): Promise<void>;
}

interface Ctx {
  work: string;
  dovecot: PlainDovecotServer;
  /** The private clamd for 'mailmover-scan', when that tool runs. */
  clamd?: ClamdServer;
  passwords: Record<string, string>;
}

function mailmoverTool(ctx: Ctx, name: Exclude<ToolName, 'mbsync'>): Tool {
  const scan = name === 'mailmover-scan';
  const built = existsSync(join(ROOT, MAILMOVER_ENTRY));
  const clamd = findExecutable('clamd', ['/usr/sbin/clamd']);
  const unavailable = !built ? 'not built' : scan && !clamd ? 'clamd is not installed (apt-get install -y clamav-daemon)' : undefined;
  const maildirOf = (user: string) => `maildir:${join(ctx.dovecot.homeOf(user), 'Maildir')}?layout=fs`;
  return {
    name,
    ...(unavailable ? { unavailable } : {}),
    ...(name === 'mailmover-to-maildir'
      ? {
          // Dovecot serves the Maildir as the owner of its mail directory.
          afterRun: async (dst: string) => {
            const owner = spawnSync('stat', ['-c', '%u:%g', join(ctx.work, 'mail')], { encoding: 'utf8' }).stdout.trim();
            spawnSync('chown', ['-R', owner, ctx.dovecot.homeOf(dst)]);
          },
        }
      : {}),
    prepare: async (dst) => {
      const fill = (s: string) =>
        s
          .replace('{node}', process.execPath)
          .replace('{host}', ctx.dovecot.host)
          .replace('{port}', String(ctx.dovecot.port))
          .replace('{src}', 'src')
          .replace(/\{dst\}/g, dst)
          .replace('{work}', ctx.work);
      const [cmd, ...args] = MAILMOVER_COMMAND.map(fill);
      if (scan) args.push('--scan', ctx.clamd!.socketUrl());
      if (name === 'mailmover-from-maildir') args[args.indexOf('--from') + 1] = maildirOf('src');
      if (name === 'mailmover-to-maildir') {
        await mkdir(ctx.dovecot.homeOf(dst), { recursive: true });
        args[args.indexOf('--to') + 1] = maildirOf(dst);
      }
      return {
        cmd: cmd!,
        args,
        cwd: ROOT,
        env: { ...process.env, MAILMOVER_FROM_PASSWORD: ctx.passwords.src, MAILMOVER_TO_PASSWORD: ctx.passwords[dst] },
      };
    },
  };
}

function mbsyncTool(ctx: Ctx): Tool {
  const bin = findExecutable('mbsync', ['/usr/bin/mbsync']);
  return {
    name: 'mbsync',
    ...(bin ? {} : { unavailable: `not installed (${INSTALL_HINT})` }),
    prepare: async (dst) => {
      const dir = join(ctx.work, `mbsync-${dst}`);
      await mkdir(join(dir, 'state'), { recursive: true });
      const q = (s: string) => `"${s.replace(/["\\]/g, (c) => '\\' + c)}"`;
      const account = (name: string, user: string) =>
        [
          `IMAPAccount ${name}`,
          `Host ${ctx.dovecot.host}`,
          `Port ${ctx.dovecot.port}`,
          `User ${user}`,
          `Pass ${q(ctx.passwords[user]!)}`,
          'SSLType None',
          'AuthMechs LOGIN',
          'Timeout 120',
          '',
          `IMAPStore ${name}`,
          `Account ${name}`,
          '',
        ].join('\n');
      const rc = [
        '# generated by bench/run.ts (isync 1.4 option names)',
        account('far', 'src'),
        account('near', dst),
        'Channel bench',
        'Far :far:',
        'Near :near:',
        // '*' includes INBOX on an IMAP store (checked with mbsync -l against Dovecot)
        'Patterns *',
        'Create Near',
        'Sync Pull',
        'Expunge None',
        'Remove None',
        'CopyArrivalDate yes',
        `SyncState ${q(join(dir, 'state') + '/')}`,
        '',
      ].join('\n');
      const rcFile = join(dir, 'mbsyncrc');
      await writeFile(rcFile, rc, { mode: 0o600 });
      return { cmd: bin!, args: ['-c', rcFile, '-a'], cwd: dir, env: { ...process.env, HOME: dir } };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Runs

interface RunRecord {
  tool: ToolName;
  round: number;
  destinationUser: string;
  copy: RunResult;
  rerun?: RunResult;
  /** '' when every source folder has the same message count at the destination. */
  countCheck: string;
  /** After the rerun: '' when the counts did not change. */
  rerunCountCheck?: string;
  fidelity?: Fidelity;
  /** mailmover --json report (status + totals) or mbsync's stderr tail. */
  toolOutput?: unknown;
  ok: boolean;
  error?: string;
}

async function oneRun(ctx: Ctx, tool: Tool, round: number, dst: string, src: Snapshot, opts: Options, fullCheck: boolean): Promise<RunRecord> {
  const target: ImapTarget = { host: ctx.dovecot.host, port: ctx.dovecot.port, user: dst, pass: ctx.passwords[dst]! };
  const p = await tool.prepare(dst);
  const files = (what: string) => ({
    stdoutFile: join(ctx.work, `${tool.name}-${dst}-${what}.out`),
    stderrFile: join(ctx.work, `${tool.name}-${dst}-${what}.err`),
    timeFile: join(ctx.work, `${tool.name}-${dst}-${what}.time`),
  });
  const copyFiles = files('copy');
  const copy = await runMeasured(p.cmd, p.args, { env: p.env, cwd: p.cwd, timeoutMs: opts.timeoutMs, ...copyFiles });
  await tool.afterRun?.(dst);
  const rec: RunRecord = { tool: tool.name, round, destinationUser: dst, copy, countCheck: '', ok: false };
  const problems: string[] = [];
  if (copy.timedOut) problems.push(`timed out after ${opts.timeoutMs / 1000} s`);
  else if (copy.exitCode !== 0) problems.push(`exit code ${copy.exitCode ?? copy.signal}`);
  rec.toolOutput = await toolOutput(tool.name, copyFiles.stdoutFile, copyFiles.stderrFile);
  if (problems.length) {
    const out = rec.toolOutput as { stderr?: string };
    const err = typeof out?.stderr === 'string' ? out.stderr.slice(-800) : await tailOf(copyFiles.stderrFile, 800);
    if (err) problems.push(`stderr: ${err}`);
  }
  try {
    rec.countCheck = describeCounts(src, await folderCounts(target));
    if (fullCheck) rec.fidelity = compare(src, await snapshot(target));
  } catch (err) {
    // e.g. the destination cannot be read: record it, keep benchmarking the other runs
    rec.countCheck = `cannot check the destination: ${(err as Error).message}`;
  }
  const rerunFiles = files('rerun');
  rec.rerun = await runMeasured(p.cmd, p.args, { env: p.env, cwd: p.cwd, timeoutMs: opts.timeoutMs, ...rerunFiles });
  await tool.afterRun?.(dst);
  if (rec.rerun.timedOut || rec.rerun.exitCode !== 0) problems.push(`rerun: ${rec.rerun.timedOut ? 'timed out' : `exit code ${rec.rerun.exitCode ?? rec.rerun.signal}`}`);
  const after = await folderCounts(target).then(
    (c) => describeCounts(src, c),
    (err: Error) => `cannot check the destination: ${err.message}`,
  );
  rec.rerunCountCheck = after === rec.countCheck ? '' : `after the rerun: ${after || 'complete'}`;
  rec.ok = !copy.timedOut && copy.exitCode === 0 && rec.countCheck === '';
  if (problems.length) rec.error = problems.join('; ');
  return rec;
}

async function toolOutput(tool: ToolName, stdoutFile: string, stderrFile: string): Promise<unknown> {
  if (tool !== 'mbsync') {
    try {
      const report = JSON.parse(await readFile(stdoutFile, 'utf8')) as { status?: unknown; totals?: unknown; error?: unknown };
      return { status: report.status, totals: report.totals, ...(report.error ? { error: report.error } : {}) };
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
// Output

interface Summary {
  tool: ToolName;
  runs: number;
  okRuns: number;
  wallSeconds: number;
  messagesPerSecond: number;
  megabytesPerSecond: number;
  peakRssMiB: number;
  rerunSeconds: number;
  fidelity: string;
}

function summarise(tool: ToolName, records: RunRecord[], src: Snapshot): Summary | undefined {
  const all = records.filter((r) => r.tool === tool);
  if (!all.length) return undefined;
  const ok = all.filter((r) => r.ok);
  const use = ok.length ? ok : all;
  const wall = median(use.map((r) => r.copy.wallSeconds));
  const rss = median(use.map((r) => r.copy.peakRssKiB ?? NaN).filter((x) => !Number.isNaN(x)));
  const rerun = median(use.flatMap((r) => (r.rerun ? [r.rerun.wallSeconds] : [])));
  const fid = all.find((r) => r.fidelity)?.fidelity;
  const notes: string[] = [];
  if (fid) notes.push(fid.summary);
  else if (all[0]!.countCheck) notes.push(all[0]!.countCheck);
  const otherIssues = new Set(all.flatMap((r) => [r.fidelity && r !== all.find((x) => x.fidelity) && !r.fidelity.exact ? `run ${r.round}: ${r.fidelity.summary}` : '', r.countCheck && r.fidelity === undefined ? `run ${r.round}: ${r.countCheck}` : '', r.rerunCountCheck ? `run ${r.round} ${r.rerunCountCheck}` : '']).filter(Boolean));
  notes.push(...otherIssues);
  if (ok.length < all.length) notes.push(`${all.length - ok.length}/${all.length} runs FAILED`);
  return {
    tool,
    runs: all.length,
    okRuns: ok.length,
    wallSeconds: wall,
    messagesPerSecond: src.messages / wall,
    megabytesPerSecond: src.bytes / 1e6 / wall,
    peakRssMiB: rss / 1024,
    rerunSeconds: rerun,
    fidelity: notes.join('; ') || 'exact',
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => '| ' + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join(' | ') + ' |';
  return [fmt(rows[0]!), '|' + widths.map((w, i) => '-'.repeat(i === widths.length - 1 ? rows[0]![i]!.length + 2 : w + 2)).join('|') + '|', ...rows.slice(1).map(fmt)].join('\n');
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');

function runLine(r: RunRecord, src: Snapshot): string {
  const w = r.copy.wallSeconds;
  const rss = r.copy.peakRssKiB === null ? '-' : f0(r.copy.peakRssKiB / 1024);
  const parts = [
    `${r.tool} round ${r.round} (${r.destinationUser}): ${f2(w)} s`,
    `${f0(src.messages / w)} msgs/s`,
    `${f1(src.bytes / 1e6 / w)} MB/s`,
    `RSS ${rss} MiB`,
    `rerun ${r.rerun ? f2(r.rerun.wallSeconds) : '-'} s`,
  ];
  const check = r.fidelity ? `fidelity: ${r.fidelity.summary}` : `counts: ${r.countCheck || 'ok'}`;
  return `  ${parts.join(', ')}; ${check}${r.rerunCountCheck ? `; ${r.rerunCountCheck}` : ''}${r.error ? `\n    PROBLEM: ${r.error}` : ''}`;
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
    const ctx = { work, passwords: ctxPasswords } as Ctx;
    for (const name of opts.tools) ctxTools.push(name === 'mbsync' ? mbsyncTool(ctx) : mailmoverTool(ctx, name));
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
          await rm(join(work, `mbsync-${dst}`), { recursive: true, force: true });
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
    const mm = summaries.find((s) => s.tool === 'mailmover');
    const mb = summaries.find((s) => s.tool === 'mbsync');
    const ms = summaries.find((s) => s.tool === 'mailmover-scan');
    const scanRatio = mm && ms && mm.okRuns && ms.okRuns ? { wall: ms.wallSeconds / mm.wallSeconds, throughput: ms.megabytesPerSecond / mm.megabytesPerSecond, rss: ms.peakRssMiB / mm.peakRssMiB } : undefined;
    const ratios = mm && mb ? { wall: mm.wallSeconds / mb.wallSeconds, rss: mm.peakRssMiB / mb.peakRssMiB, rerun: mm.rerunSeconds / mb.rerunSeconds } : undefined;

    const env = {
      node: process.version,
      dovecot: versionOf(dovecotBin, ['--version']),
      mbsync: versionOf(findExecutable('mbsync', ['/usr/bin/mbsync']), ['--version']),
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
    const rows = [['tool', 'runs ok', 'full copy wall s (median)', 'msgs/s', 'MB/s', 'peak RSS MiB', 'rerun s', 'fidelity']];
    for (const s of summaries) {
      // no successful run: its numbers are no measurement (see the per-run lines and the JSON)
      const v = (x: string) => (s.okRuns ? x : '-');
      rows.push([s.tool, `${s.okRuns}/${s.runs}`, v(f2(s.wallSeconds)), v(f0(s.messagesPerSecond)), v(f1(s.megabytesPerSecond)), v(f0(s.peakRssMiB)), v(f2(s.rerunSeconds)), s.fidelity]);
    }
    console.log(table(rows));
    if (ratios) {
      console.log(`\nmailmover/mbsync: wall time ${ratios.wall.toFixed(2)}x, peak RSS ${ratios.rss.toFixed(2)}x, rerun ${ratios.rerun.toFixed(2)}x (below 1 = mailmover better)`);
    }
    if (clamdAlone) console.log(`clamd alone (the corpus streamed to clamd 4 at a time, no IMAP): ${f2(clamdAlone.seconds)} s, ${f1(clamdAlone.megabytesPerSecond)} MB/s`);
    if (scanRatio) {
      console.log(
        `scanning on/off (mailmover-scan/mailmover): wall time ${scanRatio.wall.toFixed(2)}x, throughput ${scanRatio.throughput.toFixed(2)}x, peak RSS ${scanRatio.rss.toFixed(2)}x ` +
          `(clamd with its clean-file cache off and the EICAR test signatures only: a full signature database costs more)`,
      );
    }
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
      ...(ratios ? { ratios } : {}),
      ...(scanRatio ? { scanOnOff: scanRatio } : {}),
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
