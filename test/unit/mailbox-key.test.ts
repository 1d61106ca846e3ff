/**
 * Mailbox identities (src/state/mailbox-key.ts) and the machine-wide lock files
 * (src/state/mailbox-lock.ts): spellings of one mailbox share an identity, other mailboxes do not;
 * a lock file is refused while its holder lives and taken over once it is dead.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { mailboxIdentities, normalAddress, parseMailboxName } from '../../src/state/mailbox-key.js';
import { lockMailboxFiles } from '../../src/state/mailbox-lock.js';

const shares = (a: string[], b: string[]) => a.some((x) => b.includes(x));

test('a ledger name is read back: host, effective port, user, authzid', () => {
  assert.deepEqual(parseMailboxName('imap://alice%40x@Mail.Example.org:1143 (as bob)'), { host: 'Mail.Example.org', port: 1143, user: 'alice@x', authzid: 'bob' });
  assert.deepEqual(parseMailboxName('imaps://a@[::1]'), { host: '::1', port: 993, user: 'a', authzid: undefined });
  assert.equal(parseMailboxName('not a url'), undefined);
});

test('addresses have one spelling', () => {
  assert.equal(normalAddress('0:0:0:0:0:0:0:1'), '::1');
  assert.equal(normalAddress('::FFFF:127.0.0.1'), '127.0.0.1');
  assert.equal(normalAddress('FE80::1%eth0'), 'fe80::1');
});

test('spellings of one mailbox share an identity; other mailboxes do not', async () => {
  const base = await mailboxIdentities('imap://alice@127.0.0.1:143', 'imap://bob@127.0.0.1:143');
  for (const [s, d] of [
    ['imap://alice@localhost:143', 'imap://bob@localhost:143'],
    ['imap://ALICE@LOCALHOST.:143', 'imap://Bob@127.0.0.1:143'],
    ['imaps://alice@127.0.0.1:143', 'imap://bob@[::ffff:127.0.0.1]:143'],
  ] as const) {
    assert.ok(shares(base, await mailboxIdentities(s, d)), `${s} -> ${d}`);
  }
  for (const [s, d] of [
    ['imap://alice@127.0.0.1:144', 'imap://bob@127.0.0.1:143'],
    ['imap://carol@127.0.0.1:143', 'imap://bob@127.0.0.1:143'],
    ['imap://alice@127.0.0.1:143 (as carol)', 'imap://bob@127.0.0.1:143'],
    ['imap://alice@127.0.0.2:143', 'imap://bob@127.0.0.1:143'],
  ] as const) {
    assert.ok(!shares(base, await mailboxIdentities(s, d)), `${s} -> ${d}`);
  }
  // The default port is the port: imap://h and imap://h:143 are one.
  assert.ok(shares(base, await mailboxIdentities('imap://alice@127.0.0.1', 'imap://bob@127.0.0.1')));
});

test('a lock file: refused while its holder lives (in this process too), taken over when it is dead, given back on release', () => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'mm-lock-unit-'));
  const env = { XDG_STATE_HOME: home };
  try {
    const held = lockMailboxFiles(['one'], 'm', env);
    assert.throws(() => lockMailboxFiles(['one', 'two'], 'm', env), (e: Error & { code?: string }) => e.code === 'MM-STATE-LOCKED' && /pid \d+/.test(e.message));
    // The refused attempt took nothing: 'two' is free.
    lockMailboxFiles(['two'], 'm', env).release();
    const [file] = held.files;
    assert.equal(statSync(file!).mode & 0o777, 0o600);
    held.release();
    assert.deepEqual(readdirSync(path.dirname(file!)), []);
    // A holder that no longer runs (a finished child's pid) leaves a stale file: taken over.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    writeFileSync(file!, JSON.stringify({ pid: Number(dead), host: os.hostname(), at: 'then', mailbox: 'm' }));
    lockMailboxFiles(['one'], 'm', env).release();
    // A live holder (pid 1 always runs) is respected.
    writeFileSync(file!, JSON.stringify({ pid: 1, host: os.hostname(), at: 'now', mailbox: 'm' }));
    assert.throws(() => lockMailboxFiles(['one'], 'm', env), /pid 1 on/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
