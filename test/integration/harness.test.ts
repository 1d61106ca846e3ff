/**
 * Proves the test infrastructure itself against real Dovecot: servers start in both layouts, users
 * can be added while running, TLS verifies against the generated CA, the fixture seeds and reads back
 * exactly, and stop() cleans up. If this file fails, integration failures elsewhere are not evidence
 * against mailmover.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import { startDovecot, type DovecotServer, MASTER_USER } from '../helpers/dovecot.js';
import {
  buildFixture,
  DEFAULT_BIG_MESSAGE_BYTES,
  expectedFromFixture,
  type FixtureFolder,
  fixtureStats,
  readMailbox,
  seedMailbox,
} from '../helpers/fixture.js';

/** Connects, runs `fn`, logs out. Rejects like imapflow's connect() (e.g. authenticationFailed). */
async function withClient<T>(opts: ImapFlowOptions, fn: (c: ImapFlow) => Promise<T>): Promise<T> {
  const c = new ImapFlow({ logger: false, ...opts });
  try {
    await c.connect();
  } catch (e) {
    // A failed connect (e.g. wrong password) leaves imapflow's socket and timers alive; without this
    // close() the test process lingers until imapflow's own timeouts fire.
    c.close();
    throw e;
  }
  try {
    return await fn(c);
  } finally {
    await c.logout().catch(() => c.close());
  }
}

/** Resolves true if something accepts TCP connections on the port. */
function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

const VARIANTS = [
  { name: "'/' separator, no prefix (Maildir LAYOUT=fs)", opts: { separator: '/', prefix: '' } },
  { name: "'.' separator, 'INBOX.' prefix (Maildir++)", opts: { separator: '.', prefix: 'INBOX.' } },
] as const;

describe('test harness: throwaway Dovecot + fixture', () => {
  const servers: DovecotServer[] = [];
  let fixture: FixtureFolder[];

  before(async () => {
    fixture = buildFixture();
    // Start both in parallel: each start is ~100 ms, mostly openssl and doveconf.
    servers.push(...(await Promise.all(VARIANTS.map((v) => startDovecot(v.opts)))));
  });

  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  test('fixture has the promised shape and is deterministic', () => {
    const stats = fixtureStats(fixture);
    assert.ok(stats.folders >= 30, `${stats.folders} folders`);
    assert.ok(stats.messages >= 150 && stats.messages <= 300, `${stats.messages} messages`);
    assert.ok(Math.max(...fixture.map((f) => f.path.length)) >= 5, '5 levels deep');
    const big = fixture.find((f) => f.path.join('/') === 'Big')!.messages[0]!;
    assert.equal(big.raw.length, DEFAULT_BIG_MESSAGE_BYTES);
    // Same options, same bytes (a small big message keeps this cheap).
    const digest = (fx: FixtureFolder[]) => {
      const h = createHash('sha256');
      for (const f of fx) {
        h.update(JSON.stringify([f.path, f.subscribed]));
        for (const m of f.messages) h.update(m.raw).update(JSON.stringify([m.flags, m.internalDate.getTime()]));
      }
      return h.digest('hex');
    };
    assert.equal(digest(buildFixture({ bigMessageBytes: 65_536 })), digest(buildFixture({ bigMessageBytes: 65_536 })));
    assert.equal(buildFixture({ bigMessageBytes: 65_536 }).find((f) => f.path[0] === 'Big')!.messages[0]!.raw.length, 65_536);
  });

  for (const [i, variant] of VARIANTS.entries()) {
    describe(variant.name, () => {
      const srv = () => servers[i]!;

      test('announces the configured namespace', async () => {
        await srv().addUser('ns-check', 'pw');
        const ns = await withClient({ host: '127.0.0.1', port: srv().port, secure: false, doSTARTTLS: false, auth: { user: 'ns-check', pass: 'pw' } },
          async (c) => c.namespace);
        assert.deepEqual({ prefix: ns?.prefix, delimiter: ns?.delimiter }, { prefix: variant.opts.prefix, delimiter: variant.opts.separator });
        assert.equal(srv().separator, variant.opts.separator);
        assert.equal(srv().prefix, variant.opts.prefix);
        assert.equal(srv().url('ns-check'), `imap://ns-check@127.0.0.1:${srv().port}`);
        assert.equal(srv().url('ns-check', { tls: true }), `imaps://ns-check@127.0.0.1:${srv().tlsPort}`);
      });

      test('users added after start log in; wrong passwords and unknown users do not', async () => {
        const s = srv();
        await s.addUser('carol', 'carolpw');
        const base = { host: '127.0.0.1', port: s.port, secure: false, doSTARTTLS: false } as const;
        await withClient({ ...base, auth: { user: 'carol', pass: 'carolpw' } }, async () => undefined);
        // Master user: log in as carol with admin's password.
        await withClient({ ...base, auth: { user: `carol${MASTER_USER.separator}${MASTER_USER.user}`, pass: MASTER_USER.password } },
          async () => undefined);
        await assert.rejects(withClient({ ...base, auth: { user: 'carol', pass: 'wrong' } }, async () => undefined),
          (e: { authenticationFailed?: boolean }) => e.authenticationFailed === true);
        await assert.rejects(withClient({ ...base, auth: { user: 'nobody-here', pass: 'x' } }, async () => undefined),
          (e: { authenticationFailed?: boolean }) => e.authenticationFailed === true);
      });

      test('TLS (implicit and STARTTLS) verifies against caFile, and fails without it', async () => {
        const s = srv();
        await s.addUser('tls-user', 'pw');
        const ca = readFileSync(s.caFile);
        const auth = { user: 'tls-user', pass: 'pw' };
        for (const host of ['127.0.0.1', 'localhost']) {
          const secure = await withClient({ host, port: s.tlsPort, secure: true, tls: { ca, rejectUnauthorized: true }, auth },
            async (c) => c.secureConnection);
          assert.equal(secure, true);
        }
        const upgraded = await withClient({ host: '127.0.0.1', port: s.port, secure: false, doSTARTTLS: true, tls: { ca, rejectUnauthorized: true }, auth },
          async (c) => c.secureConnection);
        assert.equal(upgraded, true);
        // Without the CA the certificate must not verify: proves verification is really on.
        await assert.rejects(withClient({ host: '127.0.0.1', port: s.tlsPort, secure: true, tls: { rejectUnauthorized: true }, auth }, async () => undefined),
          /certificate|self[- ]signed|verify/i);
      });

      test('seeded fixture reads back identical (bytes, flags, dates, folders, subscriptions)', async () => {
        const s = srv();
        await s.addUser('alice', 'alicepw');
        await seedMailbox(s, 'alice', 'alicepw', fixture);
        const got = await readMailbox(s, 'alice', 'alicepw');
        const expected = expectedFromFixture(fixture, { namespace: { prefix: s.prefix, delimiter: s.separator } });
        assert.deepEqual(got, expected);
        // Spot checks that the comparison is not vacuous.
        assert.ok(got.some((f) => f.noSelect), 'has \\Noselect placeholders');
        assert.ok(got.some((f) => !f.subscribed && !f.noSelect), 'has unsubscribed folders');
        const dupes = got.find((f) => f.path.join('/') === 'Duplicates')!;
        assert.equal(new Set(dupes.messages.map((m) => m.sha256)).size, 3, '6 messages, 3 distinct contents');
        // Reading is side-effect free: a second read is identical (no \Seen set by the fetch).
        assert.deepEqual(await readMailbox(s, 'alice', 'alicepw'), got);
      });
    });
  }

  test('stop() kills our master, frees the ports and removes the dir', async () => {
    const s = await startDovecot();
    assert.equal(await portOpen(s.port), true);
    await s.stop();
    assert.throws(() => process.kill(s.pid, 0), { code: 'ESRCH' });
    assert.equal(await portOpen(s.port), false);
    assert.equal(await portOpen(s.tlsPort), false);
    assert.equal(existsSync(s.dir), process.env.KEEP_TEST_DIRS === '1');
    await s.stop(); // idempotent
  });
});
