/**
 * Server limits shared by the workers of a queue through a real PostgreSQL 15
 * (src/batch/shared-limits.ts): connection slots as advisory locks, counted across hubs (one hub
 * per worker process) and freed when a worker dies; leaky-bucket rates and throttling pauses by the
 * database's clock; a ServerGate that consults them; aborts, errors and closing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { inspect } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { SharedLimitsHub, slotLockKey } from '../../src/batch/shared-limits.js';
import { ServerGate } from '../../src/copy/retry-policy.js';
import { sleep } from '../../src/core/sleep.js';
import { MigrateError } from '../../src/core/errors.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';

const MODULE = new URL('../../src/batch/shared-limits.ts', import.meta.url).pathname;

describe('server limits shared through PostgreSQL', () => {
  let db: PostgresServer;
  let url: string;
  let admin: pg.Client;
  const hubs: SharedLimitsHub[] = [];
  const newHub = (pollMs = 25, at = url) => {
    const h = new SharedLimitsHub(at, { pollMs });
    hubs.push(h);
    return h;
  };
  /** Slot locks of `key` held by any session, with the backend holding each. */
  const locks = async (key: string) =>
    (
      await admin.query<{ slot: number; pid: number }>(
        "SELECT objid::int AS slot, pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted AND classid = $1::oid ORDER BY 1",
        [String(slotLockKey(key) >>> 0)],
      )
    ).rows;
  /** Waits (at most `ms`) until `ok()` holds. */
  const until = async (ok: () => Promise<boolean>, ms = 3000) => {
    const deadline = Date.now() + ms;
    while (!(await ok())) {
      if (Date.now() > deadline) return false;
      await delay(20);
    }
    return true;
  };

  before(async () => {
    db = await startPostgres();
    url = await db.createDatabase('limits');
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
  });
  after(async () => {
    await Promise.all(hubs.map((h) => h.close()));
    await admin?.end().catch(() => undefined);
    await db?.stop();
  });

  test('two workers, 6 tasks each, through 2 slots: never more than 2 held at once, every task done', async () => {
    const key = 'imap://@slots.test:993';
    const limits = { maxConnections: 2 };
    const [a, b] = [newHub().limitsFor(key, limits), newHub().limitsFor(key, limits)];
    let holding = 0;
    let most = 0;
    const log: { t: number; who: string; delta: number }[] = [];
    const task = async (who: string, shared: typeof a) => {
      await shared.acquire();
      holding++;
      most = Math.max(most, holding);
      log.push({ t: performance.now(), who, delta: +1 });
      assert.ok((await locks(key)).length <= 2, 'the database never shows more than 2 slot locks');
      await delay(40 + Math.random() * 40);
      holding--; // before the slot is given back, so the count can only err on the safe side
      log.push({ t: performance.now(), who, delta: -1 });
      await shared.release();
    };
    await Promise.all([...Array.from({ length: 6 }, () => task('A', a)), ...Array.from({ length: 6 }, () => task('B', b))]);
    assert.equal(most, 2, 'both slots were used, never a third');
    assert.equal(log.filter((e) => e.delta > 0).length, 12);
    assert.deepEqual(
      ['A', 'B'].map((w) => log.filter((e) => e.who === w && e.delta > 0).length),
      [6, 6],
    );
    let running = 0;
    for (const e of log) assert.ok((running += e.delta) <= 2);
    assert.deepEqual(await locks(key), [], 'every slot given back');
  });

  test('a worker holding every slot is killed (SIGKILL): its slots free themselves within moments', async () => {
    const key = 'imap://@killed.test:143';
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { SharedLimitsHub } from ${JSON.stringify(MODULE)};
         const s = new SharedLimitsHub(process.env.DB_URL, { pollMs: 25 }).limitsFor(${JSON.stringify(key)}, { maxConnections: 2 });
         await s.acquire(); await s.acquire();
         process.stdout.write('held\\n');
         setInterval(() => undefined, 1000);`,
      ],
      { env: { ...process.env, DB_URL: url }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      assert.ok(await until(async () => out.includes('held'), 15_000), `the child took both slots: ${out}`);
      assert.equal((await locks(key)).length, 2);
      const mine = newHub().limitsFor(key, { maxConnections: 2 });
      assert.equal(await mine.tryAcquire(), false, 'no slot free while the child lives');
      const waiting = Promise.all([mine.acquire(AbortSignal.timeout(5000)), mine.acquire(AbortSignal.timeout(5000))]);
      await delay(100);
      const t0 = Date.now();
      child.kill('SIGKILL');
      await waiting;
      const took = Date.now() - t0;
      assert.ok(took < 2000, `the slots came free ${took} ms after the kill`);
      assert.equal((await locks(key)).length, 2);
      await mine.release();
      await mine.release();
      assert.deepEqual(await locks(key), []);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  test("a worker's lock session ended by the server: slots are taken again, or go to another worker", async () => {
    const key = 'imap://@terminated.test:143';
    const a = newHub().limitsFor(key, { maxConnections: 1 });
    const b = newHub().limitsFor(key, { maxConnections: 1 });
    await a.acquire();
    const [first] = await locks(key);
    assert.ok(first);
    // Nobody else wants the slot: A opens a new session and takes its slot again.
    await admin.query('SELECT pg_terminate_backend($1)', [first.pid]);
    assert.ok(await until(async () => (await locks(key)).some((l) => l.pid !== first.pid), 4000), 'A took its slot again in a new session');
    // Now B is waiting when the session ends: B gets the slot; A gives back a slot it lost without error.
    const [second] = await locks(key);
    const bGot = b.acquire(AbortSignal.timeout(3000));
    await delay(50);
    await admin.query('SELECT pg_terminate_backend($1)', [second!.pid]);
    await bGot;
    await a.release();
    assert.equal(await a.tryAcquire(), false, 'B holds the only slot');
    const aGot = a.acquire(AbortSignal.timeout(3000));
    await delay(100);
    await b.release();
    await aGot;
    assert.equal((await locks(key)).length, 1);
    await a.release();
    assert.deepEqual(await locks(key), []);
  });

  test('ServerGates of two workers share one slot: tryAcquire fails while the other holds it, acquire waits for its release', async () => {
    const key = 'imap://@gate.test:993';
    const limits = { maxConnections: 1 };
    const gateA = new ServerGate(limits, newHub().limitsFor(key, limits));
    const gateB = new ServerGate(limits, newHub().limitsFor(key, limits));
    await gateA.acquire();
    assert.equal(await gateB.tryAcquire(), false);
    let got = false;
    const waiting = gateB.acquire().then(() => (got = true));
    await delay(300);
    assert.equal(got, false, 'B waits while A holds the slot');
    const t0 = Date.now();
    gateA.release();
    await waiting;
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(await gateA.tryAcquire(), false, 'now B holds it');
    gateB.release();
    assert.ok(await until(async () => (await locks(key)).length === 0));
    assert.equal(await gateA.tryAcquire(), true);
    gateA.release();
  });

  test('an aborted acquire rejects with the signal reason and holds nothing afterwards', async () => {
    const key = 'imap://@abort.test:993';
    const a = newHub().limitsFor(key, { maxConnections: 1 });
    const b = newHub().limitsFor(key, { maxConnections: 1 });
    await a.acquire();
    const ac = new AbortController();
    const reason = new Error('stop waiting');
    const waiting = b.acquire(ac.signal);
    setTimeout(() => ac.abort(reason), 100);
    await assert.rejects(waiting, (err) => err === reason);
    await assert.rejects(b.acquire(AbortSignal.abort(reason)), (err) => err === reason, 'an aborted signal rejects at once');
    await a.release();
    await delay(200); // B's poll would have taken the slot by now had the waiter stayed
    assert.deepEqual(await locks(key), [], 'B took nothing');
    assert.equal(await a.tryAcquire(), true);
    await a.release();

    // Through a ServerGate: its local slot is given back too.
    const gate = new ServerGate({ maxConnections: 1 }, b);
    await a.acquire();
    await assert.rejects(gate.acquire(AbortSignal.timeout(150)), (err: Error) => err.name === 'TimeoutError');
    await a.release();
    assert.equal(await gate.tryAcquire(), true, 'the gate has its slot again');
    gate.release();
    assert.ok(await until(async () => (await locks(key)).length === 0));
  });

  test('rates: bookings of two workers are paced together, by the database clock', async () => {
    const a = newHub();
    const b = newHub();
    const limits = { maxMessagesPerSecond: 50 };
    const run = async (shared: ReturnType<SharedLimitsHub['limitsFor']>) => {
      for (let i = 0; i < 40; i++) await sleep(await shared.book(1, 1000));
    };
    let t0 = Date.now();
    await run(a.limitsFor('imap://@alone.test', limits));
    const alone = Date.now() - t0;
    t0 = Date.now();
    await Promise.all([run(a.limitsFor('imap://@rate.test', limits)), run(b.limitsFor('imap://@rate.test', limits))]);
    const together = Date.now() - t0;
    // The lower bounds are the point (two unshared buckets would take as long as one); the upper
    // ones only catch a runaway, with room for a loaded CI machine.
    assert.ok(alone >= 700 && alone < 4000, `40 messages at 50/s alone took ${alone} ms`);
    assert.ok(together >= 1500 && together < 6000, `80 messages at 50/s from two workers took ${together} ms`);

    // The byte rate: 50 kB at 100 kB/s books 500 ms for whoever comes next.
    const bytes = { maxBytesPerSecond: 100_000 };
    assert.equal(await a.limitsFor('imap://@bytes.test', bytes).book(1, 50_000), 0);
    const t1 = Date.now();
    const next = await b.limitsFor('imap://@bytes.test', bytes).book(1, 50_000);
    // 500 ms less the time between the two bookings.
    assert.ok(next >= 500 - (Date.now() - t1) - 50 && next <= 510, `the second booking waits ${next} ms`);
  });

  test('a throttling pause reaches the other workers', async () => {
    const limits = { maxMessagesPerSecond: 1000 };
    const a = newHub().limitsFor('imap://@pause.test', limits);
    const b = newHub().limitsFor('imap://@pause.test', limits);
    await a.pauseFor(500);
    const t0 = Date.now();
    const wait = await b.book(100, 100);
    assert.ok(wait >= 500 - (Date.now() - t0) - 50 && wait <= 500, `B waits ${wait} ms`);
    // Work booked during the pause is paced after it (100 messages at 1000/s: 100 ms), not all let
    // loose at its end.
    const later = await b.book(1, 100);
    const between = Date.now() - t0;
    assert.ok(later >= wait + 100 - between - 2 && later <= wait + 101, `the next booking waits for the first: ${wait} then ${later} ms, ${between} ms apart`);
    // book() honours a pause even with no rate set (ServerGate books only with a rate).
    await a.pauseFor(300);
    const noRate = await newHub().limitsFor('imap://@pause.test', {}).book(1, 1);
    assert.ok(noRate >= 100, `with no rate, still ${noRate} ms of pause`);

    // Through ServerGates: A is throttled, B's next take() waits.
    const gateA = new ServerGate(limits, newHub().limitsFor('imap://@pause-gate.test', limits));
    const gateB = new ServerGate(limits, newHub().limitsFor('imap://@pause-gate.test', limits));
    gateA.pauseFor(600);
    await delay(100); // the shared pause is recorded in the background
    const t1 = Date.now();
    await gateB.take(1, 100);
    const took = Date.now() - t1;
    assert.ok(took >= 380 && took < 2000, `B's take waited ${took} ms`);
  });

  test('many workers starting at once on a fresh database create the rate table together without error', async () => {
    const fresh = await db.createDatabase('fresh_limits');
    const many = Array.from({ length: 8 }, () => newHub(25, fresh).limitsFor('imap://@fresh.test', { maxMessagesPerSecond: 2 }));
    const waits = (await Promise.all(many.map((s) => s.book(1, 1)))).sort((x, y) => x - y);
    // One bucket for all: 500 ms per message, so the i-th booking waits about i × 500 ms (less the
    // moments between the bookings; nothing sleeps here).
    for (const [i, w] of waits.entries()) assert.ok(w >= i * 500 - 300 && w <= i * 500 + 5, `8 bookings of 500 ms each: ${waits.join(', ')}`);
    const check = new pg.Client({ connectionString: fresh });
    await check.connect();
    try {
      const { rows } = await check.query<{ server: string }>('SELECT server FROM mailmover_state.server_clock');
      assert.deepEqual(rows, [{ server: 'imap://@fresh.test' }]);
    } finally {
      await check.end();
    }
  });

  test('closing a hub gives its slots back and rejects what waits; unlimited slots need no database', async () => {
    const key = 'imap://@close.test:993';
    const hub = newHub();
    const s = hub.limitsFor(key, { maxConnections: 2 });
    assert.equal(hub.limitsFor(key, { maxConnections: 2 }), s, 'one object per server key');
    await s.acquire();
    await s.acquire();
    const waiting = assert.rejects(s.acquire(), (err: MigrateError) => err instanceof MigrateError && err.code === 'MM-QUEUE');
    assert.equal((await locks(key)).length, 2);
    await hub.close();
    await waiting;
    assert.deepEqual(await locks(key), []);
    await assert.rejects(s.acquire(), (err: MigrateError) => err.code === 'MM-QUEUE');
    await assert.rejects(s.book(1, 1), (err: MigrateError) => err.code === 'MM-QUEUE');
    await s.release(); // nothing to give back, no error
    await hub.close(); // idempotent

    // No connection cap: slots succeed at once, without ever connecting (this URL leads nowhere).
    const nowhere = newHub(25, 'postgres://mm:s3cret@127.0.0.1:1/none').limitsFor(key, {});
    await nowhere.acquire();
    assert.equal(await nowhere.tryAcquire(), true);
    await nowhere.release();
  });

  test('an unreachable database: MM-QUEUE errors of scope config that never show the password', async () => {
    const hub = newHub(25, 'postgres://mm:s3cret@127.0.0.1:1/none');
    const s = hub.limitsFor('imap://@down.test', { maxConnections: 1, maxMessagesPerSecond: 10 });
    for (const attempt of [() => s.acquire(), () => s.tryAcquire(), () => s.book(1, 1), () => s.pauseFor(100)]) {
      await assert.rejects(attempt(), (err: unknown) => {
        assert.ok(err instanceof MigrateError, String(err));
        assert.equal(err.code, 'MM-QUEUE');
        assert.equal(err.scope, 'config');
        assert.match(err.message, /postgres:\/\/mm:\*\*\*@127\.0\.0\.1:1\/none/);
        assert.match(err.message, /ECONNREFUSED/);
        assert.doesNotMatch(inspect(err, { depth: 10 }), /s3cret/);
        return true;
      });
    }
    await s.release(); // nothing held: no error
  });
});
