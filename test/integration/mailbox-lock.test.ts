/**
 * One run per mailbox, whatever the spelling: two `mailmover migrate` processes started together
 * on one mailbox, spelled differently (127.0.0.1 vs localhost, upper-case users) and with different
 * --state files, against a real Dovecot. One is refused with MM-STATE-LOCKED (exit 2) and the
 * destination ends with exactly the source's messages (never twice).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox, type FixtureFolder, type FixtureMessage } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';

const msg = (i: number): FixtureMessage => ({
  raw: Buffer.from(`From: s@example.org\r\nSubject: lock ${i}\r\nMessage-ID: <lock-${i}@lock.test>\r\n\r\n${'x'.repeat(300 + (i % 40))}\r\n`),
  flags: i % 2 ? ['\\Seen'] : [],
  internalDate: new Date(Date.UTC(2023, i % 12, 1 + (i % 28))),
});

describe('one run per mailbox, whatever the spelling', () => {
  let server: PlainDovecotServer;
  let dir: string;
  const folders: FixtureFolder[] = [
    { path: ['INBOX'], subscribed: true, messages: Array.from({ length: 500 }, (_, i) => msg(i)) },
    { path: ['Archive'], subscribed: true, messages: Array.from({ length: 300 }, (_, i) => msg(1000 + i)) },
  ];
  const sourceCount = 800;

  before(async () => {
    server = await startDovecot({ tls: false });
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-lock-test-'));
    await server.addUser('src', 'src-pw');
    await seedMailbox(server, 'src', 'src-pw', folders);
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const cases = [
    { name: '127.0.0.1 vs localhost', dest: 'dst1', a: (p: number) => [`imap://src@127.0.0.1:${p}`, `imap://dst1@127.0.0.1:${p}`], b: (p: number) => [`imap://src@localhost:${p}`, `imap://dst1@localhost:${p}`] },
    { name: 'upper-case users and host', dest: 'dst2', a: (p: number) => [`imap://src@127.0.0.1:${p}`, `imap://dst2@127.0.0.1:${p}`], b: (p: number) => [`imap://SRC@LocalHost:${p}`, `imap://Dst2@127.0.0.1:${p}`] },
    { name: 'no ledger at all (--no-state)', dest: 'dst3', noState: true, a: (p: number) => [`imap://src@127.0.0.1:${p}`, `imap://dst3@127.0.0.1:${p}`], b: (p: number) => [`imap://src@localhost:${p}`, `imap://dst3@localhost:${p}`] },
  ];
  for (const c of cases) {
    test(`${c.name}${c.noState ? '' : ', two state files'}: one run is refused, every message arrives once`, async () => {
      await server.addUser(c.dest, 'dst-pw');
      const home = path.join(dir, c.dest);
      const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw', XDG_STATE_HOME: home };
      const run = (urls: string[], state: string, extra: string[] = []) =>
        runCli(['migrate', '--from', urls[0]!, '--to', urls[1]!, ...(c.noState ? ['--no-state'] : ['--state', path.join(dir, `${c.dest}-${state}.db`)]), '--connections', '1', ...extra], env);
      // 800 messages at 200 a second: the first run holds the mailbox for about 3.5 s (the rate is
      // a leaky bucket, so the first batch of 100 goes at once), whatever the machine's speed.
      const first = run(c.a(server.port), 'a', ['--max-messages-per-second', '200']);
      // The second starts once the first holds the mailbox (its lock file exists), or after
      // 400 ms at the latest: the two overlap either way.
      const locks = path.join(home, 'mailmover', 'locks');
      for (let waited = 0; waited < 400; waited += 10) {
        if (existsSync(locks) && readdirSync(locks).some((f) => f.endsWith('.lock'))) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      const second = run(c.b(server.port), 'b');
      const results = await Promise.all([first, second]);
      const codes = results.map((r) => r.code).sort();
      assert.deepEqual(codes, [0, 2], results.map((r) => r.stderr).join('\n'));
      const refused = results.find((r) => r.code === 2)!;
      assert.match(refused.stderr, /MM-STATE-LOCKED/);
      const got = await readMailbox(server, c.dest, 'dst-pw');
      const count = got.reduce((n, f) => n + f.messages.length, 0);
      assert.equal(count, sourceCount, 'every message exactly once');
      assert.deepEqual(got, await readMailbox(server, 'src', 'src-pw'));
      // The lock is given back: a rerun under the other spelling finds nothing to do.
      const again = await run(c.b(server.port), 'b');
      assert.equal(again.code, 0, again.stderr);
      assert.equal((await readMailbox(server, c.dest, 'dst-pw')).reduce((n, f) => n + f.messages.length, 0), sourceCount);
    });
  }
});
