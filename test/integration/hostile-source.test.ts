/**
 * A broken or hostile source can never make mailmover lose, corrupt or duplicate mail while it
 * reports success. The source is the scripted IMAP server with its hostile faults (bodies cut
 * short or swapped, messages left out of an answer, the tagged OK before the data, answers
 * without UIDs, a UID listed twice, a 300 MB literal for a 2 KB message, a listing that trickles,
 * an answer that never ends, a BYE instead of data, a greeting that never ends); the destination
 * is a real Dovecot, read back independently. Each case also runs again against a healthy source
 * with the same ledger: what was not copied arrives then, exactly once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox } from '../helpers/fixture.js';
import { runCli, type CliCheck, type CliResult } from '../helpers/cli.js';
import { startScriptedImap, type ScriptedImapServer, type ScriptedMessage, type UserFaults } from '../helpers/scripted-imap/server.js';
import { PERSONALITIES } from '../helpers/scripted-imap/personalities.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
const work = mkdtempSync(path.join(os.tmpdir(), 'mm-hostile-'));

/** Prints the process's peak RSS on stderr at exit (loaded into the CLI with NODE_OPTIONS). */
const RSS_PROBE = path.join(work, 'rss-probe.mjs');
writeFileSync(RSS_PROBE, "process.on('exit', () => process.stderr.write(`\\nMAXRSS_KB ${process.resourceUsage().maxRSS}\\n`));\n");

const message = (i: number): ScriptedMessage => ({
  raw: Buffer.from(`From: s${i}@example.org\r\nTo: u@example.org\r\nSubject: message ${i}\r\nMessage-ID: <m${i}@hostile.test>\r\nDate: Mon, 1 Mar 2021 10:0${i % 10}:00 +0000\r\n\r\nbody of message ${i}\r\n${'z'.repeat(1500 + i)}\r\n`),
  flags: i % 2 ? ['\\Seen'] : [],
  internalDate: new Date(Date.UTC(2021, 2, 1, 10, i)),
  uid: i,
});
const MESSAGES = Array.from({ length: 8 }, (_, i) => message(i + 1));
const SHAS = MESSAGES.map((m) => sha(m.raw));

interface CliReport {
  status: string;
  totals: { copied: number; skipped: number; alreadyPresent: number };
  folders: { source: string; copied: number; vanished: number; error?: { code: string; message: string } }[];
  items: { uid: number; code: string; reason: string }[];
  error?: { code: string; message: string };
}

describe('a hostile source into a real Dovecot', () => {
  let dovecot: PlainDovecotServer;
  const servers: ScriptedImapServer[] = [];
  let users = 0;
  before(async () => {
    dovecot = await startDovecot({ tls: false });
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await dovecot?.stop();
  });

  const source = async (faults: UserFaults, opts: { hostileGreeting?: { bytes: number } } = {}) => {
    const s = await startScriptedImap({
      personality: PERSONALITIES.exchange,
      users: { src: { password: 'src-pw', folders: [{ name: 'INBOX', subscribed: true, messages: MESSAGES }] } },
      faults: { src: faults },
      ...opts,
    });
    servers.push(s);
    return s;
  };
  const destination = async () => {
    const user = `h${++users}`;
    await dovecot.addUser(user, 'dst-pw');
    return user;
  };
  const migrate = (src: ScriptedImapServer, user: string, extra: string[] = [], moreEnv: Record<string, string> = {}, check: CliCheck = {}): Promise<CliResult> =>
    runCli(['migrate', '--from', `imap://src@127.0.0.1:${src.port}`, '--to', `imap://${user}@127.0.0.1:${dovecot.port}`, '--json', '--retry-delay', '0.02', ...extra], { ...env, ...moreEnv }, undefined, check);
  const inbox = async (user: string) => ((await readMailbox(dovecot, user, 'dst-pw')).find((f) => f.path[0] === 'INBOX')?.messages ?? []).map((m) => m.sha256);
  const report = (run: CliResult) => JSON.parse(run.stdout) as CliReport;
  /** The exit code and the skipped items as [uid, code]. */
  const outcome = (run: CliResult) => ({ code: run.code, skipped: report(run).items.map((x) => [x.uid, x.code]) });

  /** Nothing at the destination that is not a source message, and nothing twice. */
  const assertClean = (got: string[]) => {
    assert.equal(new Set(got).size, got.length, 'a message arrived twice');
    for (const s of got) assert.ok(SHAS.includes(s), 'a message arrived that the source does not hold (cut short or changed)');
  };

  /** A first run from `src` into a new destination user, with a ledger of its own. */
  const withLedger = async (src: ScriptedImapServer) => {
    const user = await destination();
    const state = path.join(work, `${user}.db`);
    return { user, state, run: await migrate(src, user, ['--state', state]) };
  };

  /** The same ledger against a healthy source: everything arrives, exactly once. */
  const healthyRerun = async (user: string, state: string) => {
    const healthy = await source({});
    const run = await migrate(healthy, user, ['--state', state]);
    assert.equal(run.code, 0, run.stderr);
    const got = await inbox(user);
    assert.deepEqual([...got].sort(), [...SHAS].sort(), 'after a healthy rerun the destination holds each source message once');
  };

  test('a body cut short (headers intact) is not stored, and a rerun without a ledger adds no short copy', async () => {
    const src = await source({ truncateBody: { INBOX: { 2: 60 } } });
    const user = await destination();
    for (let i = 0; i < 2; i++) {
      const run = await migrate(src, user, ['--no-state']);
      assert.deepEqual(outcome(run), { code: 3, skipped: [[2, 'MM-FETCH-MISMATCH']] }, run.stderr);
      assert.match(report(run).items[0]!.reason, /60 bytes for UID 2, listed at \d+ bytes/);
    }
    const got = await inbox(user);
    assertClean(got);
    assert.equal(got.length, 7);
  });

  test('a body cut short is never deleted at the source by --delete-source', async () => {
    const src = await source({ truncateBody: { INBOX: { 2: 60 } } });
    const user = await destination();
    const run = await migrate(src, user, ['--delete-source', '--no-state']);
    // The scripted server refuses STORE/EXPUNGE; what matters is what mailmover asked to delete.
    const deletes = src.log.filter((l) => /\bSTORE\b/i.test(l));
    assert.ok(deletes.length > 0, `no deletion was attempted: ${run.stderr}`);
    for (const line of deletes) {
      const set = /STORE\s+(\S+)/i.exec(line)![1]!;
      const uids = set.split(',').flatMap((part) => {
        const [a, b] = part.split(':').map(Number);
        return b === undefined ? [a!] : Array.from({ length: b - a! + 1 }, (_, k) => a! + k);
      });
      assert.ok(!uids.includes(2), `UID 2 (cut short) was marked for deletion: ${line}`);
      assert.equal(uids.length, 7, line);
    }
  });

  test('a source whose listed sizes are all estimates: copied as sent, said in the report, and a move deletes nothing', async () => {
    // Every body differs from its RFC822.SIZE (the final CRLF left out), identity intact: what a
    // gateway that reports sizes of another format looks like.
    const src = await source({ truncateBody: { INBOX: Object.fromEntries(MESSAGES.map((m) => [m.uid!, m.raw.length - 2])) } });
    const user = await destination();
    const run = await migrate(src, user, ['--no-state', '--delete-source'], {}, {
      skipVerify: 'the source lists estimated sizes, so verify (which compares listed sizes) sees every message as changed',
    });
    const r = JSON.parse(run.stdout) as CliReport & { sourceSizes?: string };
    assert.equal(r.sourceSizes, 'estimates', run.stdout);
    // The first bodies are judged before the evidence is in (see SizeTrust); none is lost for good.
    assert.equal((await inbox(user)).length + r.items.length, MESSAGES.length, JSON.stringify(r.items));
    assert.ok((await inbox(user)).length >= MESSAGES.length - 5);
    assert.equal(src.log.filter((l) => /\bSTORE\b/i.test(l)).length, 0, 'a move deleted at the source although no exact copy can be proven');
  });

  test("another message's bytes under a UID are not stored (no message twice, none lost for good)", async () => {
    const src = await source({ swapBodies: { INBOX: [[1, 5]] } });
    const { user, state, run } = await withLedger(src);
    assert.equal(run.code, 3, run.stderr);
    assert.deepEqual(report(run).items.map((x) => [x.uid, x.code]).sort(), [
      [1, 'MM-FETCH-MISMATCH'],
      [5, 'MM-FETCH-MISMATCH'],
    ]);
    const got = await inbox(user);
    assertClean(got);
    assert.equal(got.length, 6);
    await healthyRerun(user, state);
  });

  test('a message left out of the answer is reported (not "vanished"), and the next run copies it', async () => {
    const src = await source({ omitFromBodyFetch: { INBOX: [3] } });
    const { user, state, run } = await withLedger(src);
    assert.equal(run.code, 3, run.stderr);
    const r = report(run);
    assert.deepEqual(
      r.items.map((x) => [x.uid, x.code]),
      [[3, 'MM-FETCH-INCOMPLETE']],
    );
    assert.equal(r.folders.find((f) => f.source === 'INBOX')!.vanished, 0);
    assertClean(await inbox(user));
    await healthyRerun(user, state);
  });

  for (const [name, faults] of [
    ['the tagged OK before the data', { okBeforeData: { INBOX: 'all' } }],
    ['answers without the UID item', { fetchWithoutUid: { INBOX: 'all' } }],
  ] as const) {
    test(`${name} (listing and bodies): never "nothing to copy", nothing wrong stored, a healthy rerun completes`, async () => {
      const src = await source(faults as UserFaults);
      const user = await destination();
      const state = path.join(work, `${user}.db`);
      const run = await migrate(src, user, ['--state', state]);
      const r = report(run);
      assert.notEqual(run.code, 0, `reported success: ${run.stdout}`);
      assert.notEqual(r.status, 'complete');
      const got = await inbox(user);
      assertClean(got);
      // Every source message is either at the destination or reported.
      assert.equal(got.length + r.items.length, MESSAGES.length, JSON.stringify(r.items));
      await healthyRerun(user, state);
    });
  }

  test('a listing that names UID 3 twice and UID 4 never: m3 arrives once, m4 is reported and arrives on the next run', async () => {
    const src = await source({ reportUidAs: { INBOX: { 4: 3 } } });
    const { user, state, run } = await withLedger(src);
    assert.equal(run.code, 3, run.stderr);
    const r = report(run);
    assert.deepEqual(
      r.items.map((x) => x.uid),
      [4],
    );
    const got = await inbox(user);
    assertClean(got);
    assert.equal(got.length, 7);
    assert.ok(got.includes(SHAS[2]!));
    await healthyRerun(user, state);
  });

  test('a 300 MB literal for a 1.5 KB message is refused at its marker: bounded memory, one message reported', async () => {
    const src = await source({ oversizeBody: { INBOX: { 6: 300 * 1024 * 1024 } } });
    const user = await destination();
    const run = await migrate(src, user, ['--no-state', '--max-message-size', '1M'], { NODE_OPTIONS: `--import=${RSS_PROBE}` });
    assert.equal(run.code, 3, run.stderr);
    const r = JSON.parse(run.stdout.replace(/\nMAXRSS_KB.*$/s, '')) as CliReport;
    assert.deepEqual(
      r.items.map((x) => [x.uid, x.code]),
      [[6, 'MM-RESPONSE-TOO-LARGE']],
    );
    const rss = Number(/MAXRSS_KB (\d+)/.exec(run.stderr)?.[1]);
    assert.ok(rss > 0 && rss < 400 * 1024, `peak RSS ${rss} KB`);
    const got = await inbox(user);
    assertClean(got);
    assert.equal(got.length, 7);
  });

  test('a source that trickles its listing for longer than --idle-timeout: the waiting destination is kept alive', async () => {
    const src = await source({ slowListing: { INBOX: { delayMs: 700 } } });
    const user = await destination();
    const run = await migrate(src, user, ['--no-state', '--idle-timeout', '2', '--connections', '1']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual((await inbox(user)).sort(), [...SHAS].sort());
  });

  test('a flood of untagged EXISTS while the source lists: the waiting destination is kept alive', async () => {
    const src = await source({ untaggedFlood: { INBOX: { kind: 'EXISTS', count: 150_000 } } });
    const user = await destination();
    const run = await migrate(src, user, ['--no-state', '--idle-timeout', '2', '--connections', '1']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.deepEqual((await inbox(user)).sort(), [...SHAS].sort());
  });

  test('an answer that never ends costs bounded time and ends the folder with a reason', async () => {
    const src = await source({ endlessLine: { INBOX: { bytes: 2 * 1024 * 1024 } } });
    const user = await destination();
    const began = Date.now();
    const run = await migrate(src, user, ['--no-state', '--idle-timeout', '1', '--connections', '1'], {});
    const took = Date.now() - began;
    assert.equal(run.code, 1, run.stderr);
    // Each attempt waits out --idle-timeout; the folder's reconnect budget bounds the whole (before it: about 90 s here).
    assert.ok(took < 75_000, `took ${took} ms`);
    const r = report(run);
    const failed = r.folders.find((f) => f.source === 'INBOX')?.error ?? r.error;
    assert.ok(failed, run.stdout);
    assert.equal(failed.code, 'MM-FOLDER-GAVE-UP', failed.message);
    assert.equal((await inbox(user)).length, 0);
  });

  test('a BYE instead of the data costs that message with a clear reason (no raw TypeError)', async () => {
    const src = await source({ byeOnBodyFetch: { INBOX: [2] } });
    const user = await destination();
    const run = await migrate(src, user, ['--no-state']);
    assert.deepEqual(outcome(run), { code: 3, skipped: [[2, 'MM-FETCH-FAILED']] }, run.stderr);
    assert.doesNotMatch(run.stdout + run.stderr, /TypeError/);
    assert.equal((await inbox(user)).length, 7);
  });

  test('a greeting that never ends fails the connection at once, not after buffering it', async () => {
    const src = await source({}, { hostileGreeting: { bytes: 64 * 1024 * 1024 } });
    const user = await destination();
    const began = Date.now();
    const run = await migrate(src, user, ['--no-state']);
    assert.equal(run.code, 5, run.stderr);
    assert.ok(Date.now() - began < 12_000, `took ${Date.now() - began} ms`);
    assert.match(report(run).error?.code ?? '', /^MM-CONNECT-/);
  });
});
