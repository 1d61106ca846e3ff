/**
 * The pure parts of fault tolerance: how a server's answer is classified, how long to wait, and
 * how a list of messages survives lost connections while the message that causes them is isolated.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyResponse } from '../../src/stores/imap/imap-errors.js';
import { backoffDelay, DEFAULT_RETRY, MAX_SUGGESTED_MS, ServerGate } from '../../src/copy/retry-policy.js';
import { isolateLosses } from '../../src/copy/isolate.js';
import { parseSize } from '../../src/cli/option-parsers.js';

describe('classifyResponse', () => {
  const cases: [string, string, number | undefined, boolean][] = [
    ['NO [UNAVAILABLE] Message is being scanned', 'later', undefined, false],
    ['NO [INUSE] Mailbox is locked by another process', 'later', undefined, false],
    ['NO [LIMIT] Request is throttled. Suggested Backoff Time: 2500 milliseconds', 'later', 2500, false],
    ['NO Request is throttled. Suggested Backoff Time: 300 ms', 'later', 300, false],
    ['NO [THROTTLED] Too many requests', 'later', undefined, false],
    ['NO Server busy, try again later', 'later', undefined, false],
    ['NO [LIMIT] Mail too large', 'never', undefined, false],
    ['NO [CANNOT] Bad message', 'never', undefined, false],
    ['NO [TOOBIG] Message exceeds the size limit', 'never', undefined, false],
    ['NO [OVERQUOTA] Quota exceeded (mailbox for user is full)', 'never', undefined, true],
    ['NO Quota exceeded', 'never', undefined, true],
    ['BAD Command syntax error', 'never', undefined, false],
    ['NO Something we have never seen', 'now', undefined, false],
  ];
  for (const [text, retry, after, overQuota] of cases) {
    test(text, () => {
      const c = classifyResponse(text);
      assert.equal(c.retry, retry);
      assert.equal(c.retryAfterMs, after);
      assert.equal(c.overQuota, overQuota);
    });
  }
  test('no text at all is worth one more try', () => assert.equal(classifyResponse(undefined).retry, 'now'));
});

describe('backoffDelay', () => {
  test('doubles from the base, with jitter between half and all of it, up to the maximum', () => {
    const p = { attempts: 3, baseDelayMs: 1000, maxDelayMs: 8000 };
    assert.equal(backoffDelay(p, 1, undefined, () => 0), 500);
    assert.equal(backoffDelay(p, 1, undefined, () => 0.999999), 1000);
    assert.equal(backoffDelay(p, 3, undefined, () => 0.999999), 4000);
    assert.equal(backoffDelay(p, 10, undefined, () => 0.999999), 8000);
    for (let r = 1; r < 8; r++) {
      const d = backoffDelay(p, r);
      const nominal = Math.min(8000, 1000 * 2 ** (r - 1));
      assert.ok(d >= nominal / 2 && d <= nominal, `${r}: ${d}`);
    }
  });
  test("a server's suggested backoff is a floor, capped", () => {
    assert.equal(backoffDelay(DEFAULT_RETRY, 1, 7000, () => 0), 7000);
    assert.equal(backoffDelay(DEFAULT_RETRY, 1, 10 ** 9, () => 0), MAX_SUGGESTED_MS);
  });
});

describe('ServerGate', () => {
  test('holds every waiter until the pause is over; a later pause never shortens an earlier one', async () => {
    const gate = new ServerGate();
    const t0 = Date.now();
    await gate.wait();
    assert.ok(Date.now() - t0 < 50);
    gate.pauseFor(150);
    gate.pauseFor(10);
    await Promise.all([gate.wait(), gate.wait()]);
    assert.ok(Date.now() - t0 >= 140, `${Date.now() - t0}`);
  });
  test('an abort ends the wait', async () => {
    const gate = new ServerGate();
    gate.pauseFor(10_000);
    await assert.rejects(gate.wait(AbortSignal.timeout(20)));
  });
});

describe('ServerGate limits', () => {
  test('connection slots: a waiter gets the slot given back, tryAcquire never waits', async () => {
    const gate = new ServerGate({ maxConnections: 1 });
    await gate.acquire();
    assert.equal(await gate.tryAcquire(), false);
    let got = false;
    const waiting = gate.acquire().then(() => (got = true));
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(got, false);
    gate.release();
    await waiting;
    assert.equal(got, true);
    gate.release();
    assert.equal(await gate.tryAcquire(), true);
  });
  test("rates are booked at the limit's pace across callers", async () => {
    const gate = new ServerGate({ maxMessagesPerSecond: 100, maxBytesPerSecond: 1_000_000 });
    const t0 = Date.now();
    await Promise.all([gate.take(10, 1000), gate.take(10, 1000), gate.take(10, 1000)]);
    // 30 messages at 100/s: the third booking starts 200 ms in.
    assert.ok(Date.now() - t0 >= 190, `${Date.now() - t0}`);
    const g2 = new ServerGate({ maxBytesPerSecond: 1000 });
    const t1 = Date.now();
    await g2.take(1, 300);
    await g2.take(1, 1);
    assert.ok(Date.now() - t1 >= 290, 'bytes too');
  });
});

describe('isolateLosses', () => {
  const lost = new Error('lost');
  const base = (done: Set<number>, given: Map<number, number>) => ({
    done,
    isLoss: (e: unknown) => e === lost,
    recover: async () => undefined,
    giveUp: (uid: number, _e: unknown, n: number) => {
      given.set(uid, n);
      done.add(uid);
    },
    suspectLimit: 3,
    maxLossesInARow: 6,
  });

  test('a message that breaks the connection each time is given up; everything else is done once', async () => {
    const done = new Set<number>();
    const given = new Map<number, number>();
    const handled: number[] = [];
    await isolateLosses([1, 2, 3, 4, 5, 6], {
      ...base(done, given),
      step: async (part) => {
        for (const uid of part) {
          if (uid === 4) throw lost;
          handled.push(uid);
          done.add(uid);
        }
      },
    });
    assert.deepEqual([...given], [[4, 3]]);
    assert.deepEqual(handled.sort(), [1, 2, 3, 5, 6]);
  });

  test('a network blip costs nothing: progress made before the loss is kept', async () => {
    const done = new Set<number>();
    const given = new Map<number, number>();
    let blips = 1;
    await isolateLosses([1, 2, 3], {
      ...base(done, given),
      step: async (part) => {
        for (const uid of part) {
          if (uid === 2 && blips-- > 0) throw lost;
          done.add(uid);
        }
      },
    });
    assert.equal(given.size, 0);
    assert.deepEqual([...done].sort(), [1, 2, 3]);
  });

  test('losses in a row with no progress end it with the last error; other errors pass through', async () => {
    await assert.rejects(
      isolateLosses([1, 2], { ...base(new Set(), new Map()), suspectLimit: 100, step: async () => Promise.reject(lost) }),
      (e) => e === lost,
    );
    const other = new Error('other');
    await assert.rejects(
      isolateLosses([1], { ...base(new Set(), new Map()), step: async () => Promise.reject(other) }),
      (e) => e === other,
    );
  });
});

describe('parseSize', () => {
  const p = parseSize('--max-message-size');
  test('binary units, with or without B', () => {
    assert.equal(p('1048576'), 1048576);
    assert.equal(p('25M'), 25 * 1024 * 1024);
    assert.equal(p('1.5G'), 1.5 * 1024 ** 3);
    assert.equal(p('10MB'), 10 * 1024 * 1024);
    assert.equal(p('512k'), 512 * 1024);
    assert.equal(p('2MiB'), 2 * 1024 * 1024);
  });
  test('bad sizes are usage errors', () => {
    for (const bad of ['', 'abc', '-1', '0', '10X', '1e3']) assert.throws(() => p(bad), { code: 'MM-CONFIG-OPTION' });
  });
});
