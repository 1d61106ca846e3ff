/**
 * Property: whatever well-framed but wrong answers a source gives (random combinations of the
 * scripted server's hostile faults over a random mailbox), a migration into a real Dovecot never
 * crashes, never runs past its deadline, never stores a message that is not byte for byte one of
 * the source's (nothing cut short, swapped or duplicated), accounts for every source message (at
 * the destination or reported), and asks to delete at the source only messages whose exact
 * bytes are at the destination. A fixed seed and number of runs keep it repeatable.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';
import { startScriptedImap, type ScriptedMessage, type UserFaults } from '../helpers/scripted-imap/server.js';
import { PERSONALITIES } from '../helpers/scripted-imap/personalities.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
const RUNS = 16;
const DEADLINE_MS = 60_000;

const FLAG_POOL = ['\\Seen', '\\Flagged', '\\Answered', '\\Draft', 'Work', '$Label1', '\\Bogus', 'a]b', '\\*', '%x'];

const mailbox = fc.array(
  fc.record({
    size: fc.integer({ min: 0, max: 3000 }),
    flags: fc.subarray(FLAG_POOL, { maxLength: 3 }),
    dup: fc.boolean(),
  }),
  { minLength: 1, maxLength: 7 },
);

function messages(spec: { size: number; flags: string[]; dup: boolean }[]): ScriptedMessage[] {
  const out: ScriptedMessage[] = [];
  spec.forEach((m, i) => {
    // A byte-identical duplicate of the previous message now and then (both must arrive).
    const raw =
      m.dup && out.length > 0
        ? out[out.length - 1]!.raw
        : Buffer.from(`From: p${i}@example.org\r\nSubject: prop ${i}\r\nMessage-ID: <p${i}@property.test>\r\n\r\n${'q'.repeat(m.size)}\r\n`);
    out.push({ raw, flags: m.flags, internalDate: new Date(Date.UTC(2022, 0, 1 + i)), uid: i + 1 });
  });
  return out;
}

/** Random hostile faults over UIDs 1..n. */
const faultsFor = (n: number): fc.Arbitrary<UserFaults> => {
  const uid = fc.integer({ min: 1, max: n });
  const uids = fc.uniqueArray(uid, { maxLength: 2 });
  const perUid = <T>(v: fc.Arbitrary<T>) => fc.dictionary(uid.map(String), v, { maxKeys: 2 });
  return fc
    .record(
      {
        truncateBody: perUid(fc.integer({ min: 0, max: 200 })),
        swapBodies: fc.array(fc.tuple(uid, uid), { maxLength: 1 }),
        omitFromBodyFetch: uids,
        okBeforeData: fc.constantFrom<boolean | 'all'>(false, true, 'all'),
        fetchWithoutUid: fc.constantFrom<boolean | 'all'>(false, true, 'all'),
        reportUidAs: perUid(uid),
        byeOnBodyFetch: uids,
        busy: perUid(fc.integer({ min: 1, max: 3 })),
      },
      { requiredKeys: [] },
    )
    .map((f) => {
      const out: UserFaults = {};
      if (f.truncateBody) out.truncateBody = { INBOX: Object.fromEntries(Object.entries(f.truncateBody).map(([k, v]) => [Number(k), v])) };
      if (f.swapBodies?.length) out.swapBodies = { INBOX: f.swapBodies.filter(([a, b]) => a !== b) };
      if (f.omitFromBodyFetch?.length) out.omitFromBodyFetch = { INBOX: f.omitFromBodyFetch };
      if (f.okBeforeData) out.okBeforeData = { INBOX: f.okBeforeData };
      if (f.fetchWithoutUid) out.fetchWithoutUid = { INBOX: f.fetchWithoutUid };
      if (f.reportUidAs) out.reportUidAs = { INBOX: Object.fromEntries(Object.entries(f.reportUidAs).map(([k, v]) => [Number(k), v])) };
      if (f.byeOnBodyFetch?.length) out.byeOnBodyFetch = { INBOX: f.byeOnBodyFetch };
      if (f.busy) {
        out.fetchFailures = { INBOX: Object.fromEntries(Object.entries(f.busy).map(([k, times]) => [Number(k), { times, response: 'NO [UNAVAILABLE] Message is being scanned' }])) };
      }
      return out;
    });
};

/** UIDs of `UID STORE set +FLAGS (\Deleted)` lines. */
function deletedUids(log: readonly string[]): number[] {
  return log
    .filter((l) => /UID STORE \S+ \+FLAGS[^(]*\(\\\\?Deleted\)/i.test(l))
    .flatMap((l) =>
      /UID STORE (\S+)/i
        .exec(l)![1]!
        .split(',')
        .flatMap((part) => {
          const [a, b] = part.split(':').map(Number);
          return b === undefined ? [a!] : Array.from({ length: b - a! + 1 }, (_, k) => a! + k);
        }),
    );
}

describe('property: random hostile answers never corrupt, duplicate, lose or wrongly delete (real Dovecot destination)', () => {
  let dovecot: PlainDovecotServer;
  let users = 0;
  before(async () => {
    dovecot = await startDovecot({ tls: false });
  });
  after(async () => dovecot?.stop());

  test(`${RUNS} random sources`, async () => {
    await fc.assert(
      fc.asyncProperty(
        mailbox.chain((spec) => fc.tuple(fc.constant(spec), faultsFor(spec.length), fc.boolean())),
        async ([spec, faults, move]) => {
          const msgs = messages(spec);
          const source = await startScriptedImap({
            personality: PERSONALITIES.exchange,
            users: { src: { password: 'src-pw', folders: [{ name: 'INBOX', subscribed: true, messages: msgs }] } },
            faults: { src: faults },
          });
          try {
            const user = `p${++users}`;
            await dovecot.addUser(user, 'dst-pw');
            const args = ['migrate', '--from', `imap://src@127.0.0.1:${source.port}`, '--to', `imap://${user}@127.0.0.1:${dovecot.port}`, '--json', '--no-state', '--retry-delay', '0.01', '--idle-timeout', '5'];
            if (move) args.push('--delete-source');
            const run = await runCli(args, env, DEADLINE_MS + 10_000);
            const context = `faults ${JSON.stringify(faults)} move ${move}\n${run.stderr.slice(-1500)}`;
            assert.ok(run.ms < DEADLINE_MS, `took ${run.ms} ms; ${context}`);
            assert.ok([0, 1, 3].includes(run.code ?? -1), `exit ${run.code}; ${context}`);
            assert.doesNotMatch(run.stderr, /MM-INTERNAL|TypeError|ReferenceError/, context);
            const report = JSON.parse(run.stdout) as { status: string; items: unknown[]; error?: unknown };
            const got = ((await readMailbox(dovecot, user, 'dst-pw')).find((f) => f.path[0] === 'INBOX')?.messages ?? []).map((m) => m.sha256);
            // Nothing that is not exactly a source message, and no message more often than the source holds it.
            const want = new Map<string, number>();
            for (const m of msgs) want.set(sha(m.raw), (want.get(sha(m.raw)) ?? 0) + 1);
            const have = new Map<string, number>();
            for (const s of got) have.set(s, (have.get(s) ?? 0) + 1);
            for (const [s, n] of have) assert.ok(n <= (want.get(s) ?? 0), `stored ${n}× a message the source holds ${want.get(s) ?? 0}×; ${context}`);
            // Every source message is accounted for: at the destination, or reported (unless the folder failed as a whole).
            if (run.code !== 1) assert.equal(got.length + report.items.length, msgs.length, `${JSON.stringify(report.items)}; ${context}`);
            if (run.code === 0) assert.equal(report.status, 'complete');
            // A move asks to delete only UIDs whose exact bytes arrived.
            for (const uid of deletedUids(source.log)) {
              const m = msgs.find((x) => x.uid === uid);
              assert.ok(m && have.has(sha(m.raw)), `UID ${uid} was marked for deletion without an exact copy; ${context}`);
            }
          } finally {
            await source.stop();
          }
        },
      ),
      { numRuns: RUNS, seed: 20261202, endOnFailure: true },
    );
  });
});
