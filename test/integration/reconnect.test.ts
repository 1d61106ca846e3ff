/**
 * A destination connection cut in the middle of an APPEND literal: the folder is taken again on
 * new connections and the destination ends exact — no message lost, none duplicated. The cut is
 * made by a TCP proxy in front of a real Dovecot, at chosen byte offsets.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { migrate } from '../../src/index.js';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox, type FixtureFolder } from '../helpers/fixture.js';

/** Forwards to `port`; the `cutConnection`-th connection is cut after `cutAfter` client bytes. */
async function cuttingProxy(port: number, cutConnection: number, cutAfter: number): Promise<{ port: number; cuts: () => number; close: () => Promise<void> }> {
  let count = 0;
  let cuts = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const index = ++count;
    const upstream = createConnection({ host: '127.0.0.1', port });
    sockets.add(client).add(upstream);
    let sent = 0;
    client.on('data', (chunk: Buffer) => {
      if (index === cutConnection && sent + chunk.length > cutAfter) {
        upstream.write(chunk.subarray(0, Math.max(0, cutAfter - sent)));
        cuts++;
        client.destroy();
        upstream.destroy();
        return;
      }
      sent += chunk.length;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    cuts: () => cuts,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const folders: FixtureFolder[] = ['INBOX', 'Alpha', 'Beta'].map((name, k) => ({
  path: [name],
  subscribed: true,
  messages: Array.from({ length: 40 }, (_, i) => ({
    raw: Buffer.from(`From: cut@example.org\r\nSubject: ${name} ${i}\r\nMessage-ID: <cut-${k}-${i}@x>\r\n\r\n${'payload '.repeat(200 + i)}\r\n`),
    flags: i % 3 ? ['\\Seen'] : ['$Forwarded'],
    internalDate: new Date(Date.UTC(2022, k, 1 + (i % 28), i % 24)),
  })),
}));
const total = folders.reduce((n, f) => n + f.messages.length, 0);

describe('connection cut in the middle of an APPEND', () => {
  let server: PlainDovecotServer;
  before(async () => {
    server = await startDovecot({ tls: false });
    await server.addUser('src', 'src-pw');
    await seedMailbox(server, 'src', 'src-pw', folders);
  });
  after(async () => server?.stop());

  for (const cutAfter of [20_000, 61_111, 150_001]) {
    test(`cut after ${cutAfter} bytes: the folder is taken again and the destination is exact`, async () => {
      const user = `dst${cutAfter}`;
      await server.addUser(user, 'dst-pw');
      // Connection 1 is the first destination connection (the source has its own port).
      const proxy = await cuttingProxy(server.port, 1, cutAfter);
      try {
        const report = await migrate({
          from: { url: `imap://src@127.0.0.1:${server.port}`, password: 'src-pw' },
          to: { url: `imap://${user}@127.0.0.1:${proxy.port}`, password: 'dst-pw' },
          connections: 1,
          batchMessages: 10,
        });
        assert.equal(proxy.cuts(), 1, 'the cut happened');
        assert.equal(report.status, 'complete', JSON.stringify(report.folders.filter((f) => f.error)));
        assert.equal(report.totals.copied + report.totals.alreadyPresent, total);
        assert.deepEqual(await readMailbox(server, user, 'dst-pw'), await readMailbox(server, 'src', 'src-pw'));
      } finally {
        await proxy.close();
      }
    });
  }
});
