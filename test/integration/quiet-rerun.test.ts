/**
 * The quiet rerun (copy/quiet-stage.ts): with CONDSTORE at both sides, a rerun whose ledger marks
 * match both sides' LIST-STATUS answers opens no folder at all; anything that moved (a flag at the
 * source, a message at the destination, a new message) is still found and carried over. Real
 * Dovecot, the built CLI, and a relay on loopback that records the commands mailmover sends.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox, type FixtureFolder, type FixtureMessage } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';

const msg = (folder: string, i: number): FixtureMessage => ({
  raw: Buffer.from(`From: q@example.org\r\nSubject: ${folder} ${i}\r\nMessage-ID: <quiet-${folder}-${i}@x>\r\n\r\nbody ${i}\r\n`),
  flags: i % 2 ? ['\\Seen'] : [],
  internalDate: new Date(Date.UTC(2023, 2, 1 + i)),
});
const NAMES = ['INBOX', 'Work', 'Work/Clients', 'Archive'];
const folders: FixtureFolder[] = NAMES.map((n) => ({ path: n.split('/'), subscribed: true, messages: Array.from({ length: 5 }, (_, i) => msg(n.replace('/', '-'), i)) }));

/** A TCP relay to `port` that keeps every command line a client sends (tag removed). */
interface Relay {
  port: number;
  commands: string[];
  /** Called with the number of LOGOUTs seen since `commands` was last emptied. */
  onLogout?: (n: number) => void;
  close(): Promise<void>;
}

async function commandRelay(port: number): Promise<Relay> {
  const commands: string[] = [];
  // eslint-disable-next-line prefer-const
  let relay: Relay;
  const server: Server = createServer((client) => {
    const upstream = createConnection(port, '127.0.0.1');
    let pending = '';
    client.on('data', (chunk) => {
      pending += chunk.toString('latin1');
      const lines = pending.split('\r\n');
      pending = lines.pop()!;
      for (const l of lines) {
        commands.push(l.replace(/^\S+ /, ''));
        if (/^\S+ LOGOUT$/i.test(l)) relay.onLogout?.(commands.filter((c) => /^LOGOUT$/i.test(c)).length);
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  relay = { port: address.port, commands, close: () => new Promise((resolve) => server.close(() => resolve())) };
  return relay;
}

const opened = (commands: string[]) => commands.filter((c) => /^(SELECT|EXAMINE|STATUS) /i.test(c)).map((c) => c.replace(/^\S+ /, '').replace(/^"(.*)"$/, '$1').replace(/ .*$/, ''));

describe('a quiet rerun opens no folder', () => {
  let server: PlainDovecotServer;
  let relay: Relay;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mm-quiet-'));
  const state = path.join(dir, 'state.db');
  const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
  // Both sides through the relay, so that every command either side is sent is seen.
  const ends = () => ['--from', `imap://src@127.0.0.1:${relay.port}`, '--to', `imap://dst@127.0.0.1:${relay.port}`, '--state', state, '--json', '--no-progress'];
  /** One migrate; the commands it sent are those seen before runCli's own verify starts. */
  let sent: string[] = [];
  const run = async () => {
    relay.commands.length = 0;
    relay.onLogout = (n) => {
      // Both connections of the run logged out: what follows is runCli's verify.
      if (n === 2) sent = [...relay.commands];
    };
    const r = await runCli(['migrate', ...ends()], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return JSON.parse(r.stdout) as { totals: { copied: number; flagsUpdated?: number }; verdict?: string; folders: { source: string; incremental?: boolean; sourceCount: number; alreadyPresent: number }[] };
  };
  const client = async (user: string, pass: string) => {
    const c = new ImapFlow({ host: '127.0.0.1', port: server.port, secure: false, auth: { user, pass }, logger: false });
    await c.connect();
    return c;
  };

  before(async () => {
    server = await startDovecot({ tls: false });
    await server.addUser('src', 'src-pw');
    await server.addUser('dst', 'dst-pw');
    await seedMailbox(server, 'src', 'src-pw', folders);
    relay = await commandRelay(server.port);
  });
  after(async () => {
    await relay?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('first copy, then a rerun: LIST-STATUS at each side, no SELECT, EXAMINE or STATUS; the report counts every folder as present', async () => {
    const first = await run();
    assert.equal(first.totals.copied, 20);
    const quiet = await run();
    assert.equal(quiet.totals.copied, 0);
    assert.equal(quiet.verdict, 'perfect');
    assert.deepEqual(opened(sent), [], `commands: ${sent.join(' | ')}`);
    assert.ok(sent.filter((c) => /^LIST .*RETURN \(STATUS \(.*HIGHESTMODSEQ/.test(c)).length === 2, 'one LIST-STATUS with HIGHESTMODSEQ per side');
    // Dovecot's own special folders (Drafts, Sent, ...) are there too, empty.
    for (const f of quiet.folders) {
      const n = NAMES.includes(f.source) ? 5 : 0;
      assert.equal(f.incremental, true, f.source);
      assert.equal(f.sourceCount, n, f.source);
      assert.equal(f.alreadyPresent, n, f.source);
    }
    assert.equal(quiet.folders.filter((f) => f.sourceCount === 5).length, NAMES.length);
  });

  test('a flag changed at the source: only that folder is opened, and the flag arrives', async () => {
    const c = await client('src', 'src-pw');
    try {
      const lock = await c.getMailboxLock('Work/Clients');
      try {
        await c.messageFlagsAdd({ header: { 'message-id': '<quiet-Work-Clients-0@x>' } }, ['\\Flagged']);
      } finally {
        lock.release();
      }
    } finally {
      await c.logout();
    }
    const r = await run();
    assert.equal(r.totals.flagsUpdated, 1);
    assert.deepEqual([...new Set(opened(sent))].filter((n) => n !== 'Work/Clients'), [], `commands: ${sent.join(' | ')}`);
    const dest = await readMailbox(server, 'dst', 'dst-pw');
    const sha = createHash('sha256').update(msg('Work-Clients', 0).raw).digest('hex');
    const m = dest.find((f) => f.path.join('/') === 'Work/Clients')!.messages.find((x) => x.sha256 === sha)!;
    assert.ok(m.flags.includes('\\Flagged'), m.flags.join(' '));
    // And quiet again after that.
    await run();
    assert.deepEqual(opened(sent), []);
  });

  test('a message deleted at the destination behind our back is copied again; a new source message arrives', async () => {
    const d = await client('dst', 'dst-pw');
    try {
      const lock = await d.getMailboxLock('Archive');
      try {
        await d.messageDelete({ header: { 'message-id': '<quiet-Archive-3@x>' } });
      } finally {
        lock.release();
      }
    } finally {
      await d.logout();
    }
    const s = await client('src', 'src-pw');
    try {
      await s.append('INBOX', Buffer.from('From: q@example.org\r\nSubject: late\r\nMessage-ID: <quiet-late@x>\r\n\r\nlate\r\n'), ['\\Seen'], new Date(Date.UTC(2024, 0, 2)));
    } finally {
      await s.logout();
    }
    const r = await run();
    assert.equal(r.totals.copied, 2);
    const src = await readMailbox(server, 'src', 'src-pw');
    const dest = await readMailbox(server, 'dst', 'dst-pw');
    const shape = (box: typeof src) => box.map((f) => ({ path: f.path.join('/'), messages: f.messages })).sort((a, b) => a.path.localeCompare(b.path));
    assert.deepEqual(shape(dest), shape(src), 'bytes, flags and dates of every folder');
  });
});
