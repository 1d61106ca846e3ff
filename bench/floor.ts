/**
 * The floor of an IMAP -> IMAP copy on this box (issue 16: "say what the limit on this box is,
 * with a measured floor"). On one throwaway Dovecot (127.0.0.1, default mail_fsync, as
 * bench/run.ts), with the bench corpus:
 *   - read floor: every body FETCHed from the source and thrown away (2 connections, one folder
 *     each at a time, like mailmover's default lanes): what reading costs the server and the wire;
 *   - write floor: the corpus, generated into memory before the clock starts, MULTIAPPENDed into
 *     an empty user in mailmover's batches (up to 100 messages or 4 MiB, LITERAL+, 2 connections):
 *     what writing costs Dovecot (parse, save, index, fsync) with a client that costs almost
 *     nothing;
 *   - dsync (doveadm backup -R with imapc, bench/tools.ts) and mailmover (the built CLI) in the
 *     same run, for comparison.
 * No IMAP client can copy faster than the slower floor allows, and on 2 cores the two floors
 * share the CPU with the client itself.
 *
 * Then the floor of a rerun with nothing to copy (each timed RERUNS times, median): Node's bare
 * start (`node -e 0`); bench/quiet-client.mjs, a Node process that only logs in to both sides
 * with imapflow, asks each one LIST-STATUS and logs out; mailmover's rerun of its copy above (with
 * its ledger); mbsync's rerun of a copy of its own.
 *
 * Run: `npm run bench:floor` (options after `--`: --messages N, default 5000).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { buildMessage, buildSpec, imapClient, seedCorpus, type ImapTarget, type MessageSpec } from './corpus.js';
import { runMeasured, type RunResult } from './proc.js';
import { table } from './report.js';
import { groupCpuSeconds } from './server-cpu.js';
import { makeTool, type Ctx } from './tools.js';
import { batchMessages } from '../src/plan/message-plan.js';
import { multiAppend } from '../src/stores/imap/multiappend.js';
import { startDovecot } from '../test/helpers/dovecot.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({ options: { messages: { type: 'string', default: '5000' } }, strict: true });
const MESSAGES = Number(values.messages);
const RERUNS = 7;
const log = (m: string) => process.stderr.write(m + '\n');

/** Runs `lanes` workers over `folders` (each takes the next folder), like mailmover's lanes. */
async function overFolders(folders: string[], lanes: number, work: (folder: string, lane: number) => Promise<void>): Promise<void> {
  const queue = [...folders];
  await Promise.all(Array.from({ length: lanes }, async (_, lane) => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) await work(f, lane);
  }));
}

async function main(): Promise<void> {
  const dovecot = await startDovecot({ tls: false, fsync: 'default' });
  const pw = (u: string) => `${u}-${randomBytes(6).toString('hex')}`;
  const passwords: Record<string, string> = Object.fromEntries(['src', 'wfloor', 'dsync1', 'mm1', 'mb1'].map((u) => [u, pw(u)]));
  for (const [u, p] of Object.entries(passwords)) await dovecot.addUser(u, p);
  const target = (user: string): ImapTarget => ({ host: dovecot.host, port: dovecot.port, user, pass: passwords[user]! });
  const rows: string[][] = [['what', 'wall s', 'server CPU s', 'client CPU s', 'messages']];
  try {
    const spec = buildSpec('mailmover-bench-1', MESSAGES);
    log(`bench:floor: seeding ${MESSAGES} messages...`);
    await seedCorpus(target('src'), spec, 3);
    const byFolder = new Map<string, MessageSpec[]>();
    for (const m of spec.messages) byFolder.set(m.folder, [...(byFolder.get(m.folder) ?? []), m]);
    const folders = [...byFolder.keys()].sort((a, b) => byFolder.get(b)!.length - byFolder.get(a)!.length);
    const measure = async (what: string, count: number, fn: () => Promise<void>) => {
      const cpu0 = process.cpuUsage();
      const s0 = await groupCpuSeconds(dovecot.pid);
      const t0 = performance.now();
      await fn();
      const wall = (performance.now() - t0) / 1000;
      const s1 = await groupCpuSeconds(dovecot.pid);
      const c = process.cpuUsage(cpu0);
      rows.push([what, wall.toFixed(2), s0 === null || s1 === null ? '-' : (s1 - s0).toFixed(2), ((c.user + c.system) / 1e6).toFixed(2), String(count)]);
      log(`  ${what}: ${wall.toFixed(2)} s`);
      return wall;
    };

    // Read floor: FETCH BODY.PEEK[] of everything, bodies dropped.
    let fetched = 0;
    const clients = [imapClient(target('src')), imapClient(target('src'))];
    for (const c of clients) await c.connect();
    await measure('read floor: FETCH every body (2 connections)', MESSAGES, () =>
      overFolders(folders, 2, async (folder, lane) => {
        const c = clients[lane]!;
        const lock = await c.getMailboxLock(folder, { readOnly: true });
        try {
          for await (const m of c.fetch('1:*', { uid: true, source: true })) if (m.source) fetched++;
        } finally {
          lock.release();
        }
      }),
    );
    for (const c of clients) await c.logout();
    if (fetched !== MESSAGES) throw new Error(`read floor: ${fetched} bodies, expected ${MESSAGES}`);

    // Write floor: the corpus in memory first, then MULTIAPPEND in mailmover's batches.
    log('bench:floor: generating the corpus in memory...');
    const bodies = new Map(spec.messages.map((m) => [m.index, buildMessage(spec.seed, m)]));
    const writers = [imapClient(target('wfloor')), imapClient(target('wfloor'))];
    for (const c of writers) await c.connect();
    for (const f of spec.folders) if (f !== 'INBOX') await writers[0]!.mailboxCreate(f.split('/'));
    const writeWall = await measure('write floor: MULTIAPPEND the corpus from memory (2 connections)', MESSAGES, () =>
      overFolders(folders, 2, async (folder, lane) => {
        const items = byFolder.get(folder)!.map((m) => ({ body: bodies.get(m.index)!, size: bodies.get(m.index)!.length, flags: m.flags, internalDate: m.internalDate }));
        for (const batch of batchMessages(items, { maxBytes: 4 * 1024 * 1024, maxMessages: 100 })) await multiAppend(writers[lane]!, folder, batch, { nonSync: true });
      }),
    );
    // Everything arrived: the floor is a copy, not a partial one.
    let written = 0;
    for (const f of spec.folders) {
      const st = await writers[0]!.status(f, { messages: true });
      written += st ? (st.messages ?? 0) : 0;
    }
    for (const c of writers) await c.logout();
    bodies.clear();
    if (written !== MESSAGES) throw new Error(`write floor: ${written} messages at the destination, expected ${MESSAGES}`);

    // The tools, in the same run.
    const ctx = { root: ROOT, work: dovecot.dir, dovecot, passwords } as Ctx;
    const runTool = async (what: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string) => {
      const s0 = await groupCpuSeconds(dovecot.pid);
      const r: RunResult = await runMeasured(cmd, args, { cwd, env, timeoutMs: 1_800_000, stdoutFile: join(dovecot.dir, `${what}.out`), stderrFile: join(dovecot.dir, `${what}.err`), timeFile: join(dovecot.dir, `${what}.time`) });
      const s1 = await groupCpuSeconds(dovecot.pid);
      if (r.exitCode !== 0) throw new Error(`${what} exited ${r.exitCode}`);
      rows.push([what, r.wallSeconds.toFixed(2), s0 === null || s1 === null ? '-' : (s1 - s0).toFixed(2), r.cpuSeconds?.toFixed(2) ?? '-', String(MESSAGES)]);
      log(`  ${what}: ${r.wallSeconds.toFixed(2)} s`);
      return r.wallSeconds;
    };
    const dsync = await makeTool(ctx, 'dsync').prepare('dsync1');
    const dsyncWall = await runTool('dsync (imapc), doveadm writes the destination itself', dsync.cmd, dsync.args, dsync.env, dsync.cwd);
    const mm = await makeTool(ctx, 'mailmover').prepare('mm1');
    const mmWall = await runTool('mailmover (defaults)', mm.cmd, mm.args, mm.env, mm.cwd);

    // The floor of a rerun: each command RERUNS times, the median.
    const quiet: string[][] = [['rerun with nothing to copy', 'median wall s', 'min s', 'max s', 'runs']];
    const timeRuns = async (what: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string) => {
      const walls: number[] = [];
      for (let i = 0; i < RERUNS; i++) {
        const r = await runMeasured(cmd, args, { cwd, env, timeoutMs: 120_000, stdoutFile: join(dovecot.dir, `quiet.out`), stderrFile: join(dovecot.dir, `quiet.err`), timeFile: join(dovecot.dir, `quiet.time`) });
        if (r.exitCode !== 0) throw new Error(`${what} exited ${r.exitCode}`);
        walls.push(r.wallSeconds);
      }
      walls.sort((a, b) => a - b);
      const median = walls[Math.floor(walls.length / 2)]!;
      quiet.push([what, median.toFixed(3), walls[0]!.toFixed(3), walls[walls.length - 1]!.toFixed(3), String(RERUNS)]);
      log(`  ${what}: ${median.toFixed(3)} s`);
      return median;
    };
    log('bench:floor: the floor of a rerun...');
    const nodeStart = await timeRuns('Node starts and exits (node -e 0)', process.execPath, ['-e', '0'], process.env, ROOT);
    const quietEnv = { ...process.env, QUIET_HOST: dovecot.host, QUIET_PORT: String(dovecot.port), QUIET_USERS: `src:${passwords.src},mm1:${passwords.mm1}` };
    const bare = await timeRuns('bare Node + imapflow client: log in to both, LIST-STATUS each, log out', process.execPath, [join(ROOT, 'bench', 'quiet-client.mjs')], quietEnv, ROOT);
    const mmRerun = await timeRuns('mailmover rerun (its ledger)', mm.cmd, mm.args, mm.env, mm.cwd);
    let mbRerun: number | undefined;
    const mbTool = makeTool(ctx, 'mbsync');
    if (!mbTool.unavailable) {
      const mb = await mbTool.prepare('mb1');
      await runTool('mbsync (its copy, before its reruns)', mb.cmd, mb.args, mb.env, mb.cwd);
      mbRerun = await timeRuns('mbsync rerun (its state)', mb.cmd, mb.args, mb.env, mb.cwd);
    }

    console.log(`\nThe floor of an IMAP -> IMAP copy of ${MESSAGES} messages on this box (Dovecot 2.3 on 127.0.0.1, default mail_fsync, 2 CPUs; server CPU = every process of the bench Dovecot)`);
    console.log(table(rows));
    const w = writeWall;
    console.log(`\nWriting through APPEND alone takes ${w.toFixed(2)} s = ${(w / dsyncWall).toFixed(2)}x dsync's whole copy (${dsyncWall.toFixed(2)} s): ` +
      `an IMAP -> IMAP copy cannot reach 0.75x dsync (${(0.75 * dsyncWall).toFixed(2)} s) on this box unless the write floor is below that. mailmover: ${mmWall.toFixed(2)} s = ${(mmWall / w).toFixed(2)}x the write floor.`);
    console.log(`\nThe floor of a rerun with nothing to copy (${RERUNS} runs each, wall from spawn to exit):`);
    console.log(table(quiet));
    console.log(
      `\nNode's own start is ${nodeStart.toFixed(3)} s; a Node process that does nothing but log in to both servers with imapflow and list their folders with status takes ${bare.toFixed(3)} s; ` +
        `mailmover's whole rerun ${mmRerun.toFixed(3)} s (${(mmRerun / bare).toFixed(2)}x that).` +
        (mbRerun !== undefined ? ` mbsync's rerun: ${mbRerun.toFixed(3)} s; 2x mbsync = ${(2 * mbRerun).toFixed(3)} s, ${2 * mbRerun < bare ? 'below' : 'above'} the bare Node + imapflow client.` : ' (mbsync not installed: no rerun to compare with)'),
    );
  } finally {
    await dovecot.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench:floor: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
