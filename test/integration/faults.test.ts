/**
 * Network faults between mailmover and a real Dovecot, injected by a TCP proxy on loopback:
 * connections cut or reset at many byte offsets (in the middle of FETCH and APPEND literals
 * too), stalled, delayed. After every run the destination is read back from Dovecot directly
 * (not through the proxy) and must equal the source exactly: nothing lost, nothing twice.
 *
 * And a fault of Dovecot's own: a message file it cannot read makes it drop the connection
 * ("FETCH failed"); that message is isolated and reported, everything else arrives.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { type MigrateOptions } from '../../src/index.js';
import { migrateChecked } from '../helpers/migrate-checked.js';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox, type FixtureFolder } from '../helpers/fixture.js';
import { seededOffsets, startFaultProxy, type Fault, type FaultProxy } from '../helpers/fault-proxy.js';

const folders: FixtureFolder[] = ['INBOX', 'Projects', 'Archive'].map((name, k) => ({
  path: [name],
  subscribed: true,
  messages: Array.from({ length: 25 }, (_, i) => ({
    raw: Buffer.from(
      `From: fault@example.org\r\nSubject: ${name} ${i}\r\nMessage-ID: <fault-${k}-${i}@x>\r\n\r\n${(i === 7 ? 'large literal line\r\n'.repeat(15_000) : 'body line\r\n'.repeat(50 + 40 * i))}`,
    ),
    flags: i % 4 === 0 ? ['\\Seen', '$Label1'] : i % 4 === 1 ? ['\\Flagged'] : [],
    internalDate: new Date(Date.UTC(2021, k, 1 + (i % 27), i % 24, 7)),
  })),
}));
// A byte-identical duplicate: it must arrive twice, never three times and never once.
folders[1]!.messages.push(folders[1]!.messages[3]!);
const totalBytes = folders.reduce((n, f) => n + f.messages.reduce((m, x) => m + x.raw.length, 0), 0);

describe('network faults between mailmover and a real Dovecot', () => {
  let server: PlainDovecotServer;
  let expected: Awaited<ReturnType<typeof readMailbox>>;
  let users = 0;
  const proxies: FaultProxy[] = [];

  /** Runs a migration with the given faults on the source side and the destination side. */
  const runWith = async (sourceFaults: Fault[], destFaults: Fault[], extra: Partial<MigrateOptions> = {}) => {
    const user = `dst${++users}`;
    await server.addUser(user, 'dst-pw');
    const [src, dst] = await Promise.all([startFaultProxy({ host: '127.0.0.1', port: server.port }, sourceFaults), startFaultProxy({ host: '127.0.0.1', port: server.port }, destFaults)]);
    proxies.push(src, dst);
    const report = await migrateChecked({
      from: { url: `imap://src@127.0.0.1:${src.port}`, password: 'src-pw' },
      to: { url: `imap://${user}@127.0.0.1:${dst.port}`, password: 'dst-pw' },
      batchMessages: 8,
      retry: { baseDelayMs: 10, maxDelayMs: 100 },
      ...extra,
    });
    const fired = [...src.stats().fired, ...dst.stats().fired];
    if (process.env.DBG) console.log(JSON.stringify({ src: src.stats(), dst: dst.stats(), totals: report.totals }));
    await Promise.all([src.close(), dst.close()]);
    return { user, report, fired };
  };

  before(async () => {
    server = await startDovecot({ tls: false });
    await server.addUser('src', 'src-pw');
    await seedMailbox(server, 'src', 'src-pw', folders);
    expected = await readMailbox(server, 'src', 'src-pw');
  });
  after(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await server?.stop();
  });

  // Past the greeting, login and folder list (a few KB), anywhere in the mail that follows.
  const sourceCuts = seededOffsets(4242, 8, 6_000, Math.floor(totalBytes * 0.9));
  const destCuts = seededOffsets(1717, 8, 6_000, Math.floor(totalBytes * 0.9));
  const cases: { name: string; source: Fault[]; dest: Fault[] }[] = [
    ...sourceCuts.map((at, i) => ({ name: `source ${i % 2 ? 'reset' : 'cut'} after ${at} bytes of answers`, source: [{ connection: 1, direction: 'down' as const, afterBytes: at, action: { kind: i % 2 ? ('reset' as const) : ('cut' as const) } }], dest: [] })),
    ...destCuts.map((at, i) => ({ name: `destination ${i % 2 ? 'reset' : 'cut'} after ${at} bytes of APPENDs`, source: [], dest: [{ connection: 1, direction: 'up' as const, afterBytes: at, action: { kind: i % 2 ? ('reset' as const) : ('cut' as const) } }] })),
    {
      name: 'both sides cut, on the second connection pair too',
      source: [
        { connection: 1, direction: 'down', afterBytes: 150_000, action: { kind: 'cut' } },
        { connection: 2, direction: 'down', afterBytes: 90_000, action: { kind: 'cut' } },
      ],
      dest: [
        { connection: 1, direction: 'up', afterBytes: 220_000, action: { kind: 'cut' } },
        { connection: 2, direction: 'up', afterBytes: 40_000, action: { kind: 'reset' } },
      ],
    },
  ];
  for (const [i, c] of cases.entries()) {
    test(`${c.name}: the destination ends exact`, async () => {
      // One connection pair carries everything, so that every offset is reached (the last case uses two).
      const { user, report, fired } = await runWith(c.source, c.dest, { connections: i === cases.length - 1 ? 2 : 1 });
      assert.ok(fired.length >= 1, 'the fault fired');
      assert.equal(report.status, 'complete', JSON.stringify({ error: report.error, folders: report.folders.filter((f) => f.error), items: report.items }));
      assert.deepEqual(await readMailbox(server, user, 'dst-pw'), expected);
    });
  }

  test('a stalled destination (no bytes, connection open) is given up after the idle timeout and rebuilt', async () => {
    const { user, report, fired } = await runWith([], [{ connection: 1, direction: 'up', afterBytes: 100_000, action: { kind: 'stall' } }], { idleTimeoutSeconds: 2, connections: 1 });
    assert.equal(fired.length, 1);
    assert.equal(report.status, 'complete', JSON.stringify(report.error ?? report.items));
    assert.deepEqual(await readMailbox(server, user, 'dst-pw'), expected);
  });

  test('a stalled source is rebuilt the same way; delays change nothing', async () => {
    const { user, report, fired } = await runWith(
      [
        { connection: 1, direction: 'down', afterBytes: 60_000, action: { kind: 'delay', ms: 300 } },
        { connection: 1, direction: 'down', afterBytes: 200_000, action: { kind: 'stall' } },
      ],
      // 'every': the idle destination may itself time out while the source is stalled, and be rebuilt.
      [{ connection: 'every', direction: 'up', afterBytes: 30_000, action: { kind: 'delay', ms: 300 } }],
      { idleTimeoutSeconds: 2, connections: 1 },
    );
    assert.equal(report.status, 'complete', JSON.stringify(report.error ?? report.items));
    assert.ok(fired.length >= 3, JSON.stringify(fired));
    assert.deepEqual(await readMailbox(server, user, 'dst-pw'), expected);
  });

  test("a message Dovecot cannot read (it drops the connection each time) is isolated and reported; the rest arrives", async () => {
    await server.addUser('broken', 'broken-pw');
    await seedMailbox(server, 'broken', 'broken-pw', folders);
    // The mail processes run as an unprivileged user: a file mode of 000 makes the message unreadable.
    let victim: string | undefined;
    for (const entry of await readdir(server.homeOf('broken'), { recursive: true, withFileTypes: true })) {
      const file = path.join(entry.parentPath, entry.name);
      if (entry.isFile() && /\/cur$/.test(entry.parentPath) && (await readFile(file, 'latin1')).includes('<fault-1-5@x>')) victim = file;
    }
    assert.ok(victim, 'found the message file');
    await chmod(victim, 0o000);
    await server.addUser('dstb', 'dst-pw');
    const report = await migrateChecked({
      from: { url: `imap://broken@127.0.0.1:${server.port}`, password: 'broken-pw' },
      to: { url: `imap://dstb@127.0.0.1:${server.port}`, password: 'dst-pw' },
      batchMessages: 8,
      retry: { baseDelayMs: 10, maxDelayMs: 100 },
    });
    assert.equal(report.status, 'partial', JSON.stringify(report.error ?? report.folders.filter((f) => f.error)));
    assert.equal(report.items.length, 1);
    const [item] = report.items;
    assert.equal(item!.code, 'MM-FETCH-FAILED');
    // Dovecot cannot even describe it (its header is in the unreadable file), so only its UID is known.
    assert.equal(item!.uid, 6);
    assert.equal(item!.folder, 'Projects');
    assert.match(item!.reason, /closed the connection/);
    const got = await readMailbox(server, 'dstb', 'dst-pw');
    const want = expected.map((f) => (f.path[0] === 'Projects' ? { ...f, messages: f.messages.filter((m) => m.size !== folders[1]!.messages[5]!.raw.length) } : f));
    assert.deepEqual(got, want);
  });
});
